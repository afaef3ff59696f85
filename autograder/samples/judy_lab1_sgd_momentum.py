# exported as a script
import numpy as np
