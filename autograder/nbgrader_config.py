"""nbgrader configuration of the nnopt course kit.

Run nbgrader from this folder (``autograder/``); ``pipeline.py`` does. Layout::

    solutions/<lab>/<lab>.ipynb           source (solutions + hidden tests)   -> ../solutions
    labs/<lab>/<lab>.ipynb                release given to students            -> ../labs
    autograder/submitted/<student>/<lab>/ collected submissions (git-ignored)
    autograder/autograded/...             executed copies, WITH hidden tests (instructors only)
    autograder/feedback/...               HTML (+ notebook) for students, hidden tests stripped
    autograder/gradebook.db               the gradebook (git-ignored)
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:          # this config imports the `autograder` package below
    sys.path.insert(0, REPO)

c = get_config()  # noqa: F821 -- provided by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "nnopt"
c.CourseDirectory.root = HERE
c.CourseDirectory.source_directory = "../solutions"
c.CourseDirectory.release_directory = "../labs"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")

# What students see where a solution was removed.
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\n"
              "raise NotImplementedError(\"write your code here (and delete this line)\")"
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Per-cell limit (seconds); a cell that runs longer is interrupted and scores 0. The
# pipeline adds a wall-clock limit per submission on top (--wall-limit).
c.ExecutePreprocessor.timeout = 60
# A test cell the student deleted is put back and graded (instead of "needs manual grade").
c.OverwriteCells.add_missing_cells = True
c.Autograde.autograde_preprocessors = ["autograder.withheld.WithheldExecute", "nbgrader.preprocessors.IgnorePattern", "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput", "autograder.verdicts.TrustedVerdicts", "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties", "nbgrader.preprocessors.CheckCellMetadata"]

# Feedback for students: nbgrader's HTML, minus the hidden tests (source and tracebacks).
from autograder.feedback import StripHiddenTests  # noqa: E402
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, StripHiddenTests, CSSHTMLHeaderPreprocessor]

# ...with its formulas typeset when it is written (the kit's MathJax, inline SVG): it shows them
# offline and without running script, instead of loading MathJax 2.7.7 from a CDN.
from autograder.offline_math import TypesetHTMLExporter  # noqa: E402

c.GenerateFeedback.exporter_class = TypesetHTMLExporter
