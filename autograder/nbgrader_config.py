"""nbgrader configuration of the nnopt course kit.

Run nbgrader from this folder (``autograder/``); ``pipeline.py`` does. Layout::

    solutions/<lab>/<lab>.ipynb           source (solutions + hidden tests)   -> ../solutions
                                          (or $NNOPT_SOURCE_DIR, e.g. a private repository)
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
# The source (solutions + hidden tests) is a setting: instructors may keep it in a private
# repository of their own (DEPLOY.md); relative paths are relative to this folder.
c.CourseDirectory.source_directory = os.environ.get("NNOPT_SOURCE_DIR", "../solutions")
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

# Per-cell limit (seconds); a cell that runs longer is interrupted and scores 0.
c.ExecutePreprocessor.timeout = 60
# A test cell the student deleted is put back and graded (instead of "needs manual grade").
c.OverwriteCells.add_missing_cells = True

# --- Autograde: every notebook runs in the grading sandbox (autograder/sandbox.py) ---------
from autograder.preprocessors import LimitOutputBytes, SandboxedExecute  # noqa: E402
from autograder.verdicts import TrustedVerdicts  # noqa: E402
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,  # noqa: E402
                                    SaveAutoGrades)

c.Autograde.autograde_preprocessors = [
    SandboxedExecute,           # nbgrader's Execute, inside bubblewrap (same traits)
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutputBytes,           # nbgrader's LimitOutput + bytes per cell / per notebook
    TrustedVerdicts,            # points decided here, outside the kernel, from its records
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# The sandbox's limits, all in one place (pipeline flags override them per run). Set
# c.Sandbox.enabled = False only for a trusted classroom: student code then runs with the
# grader's rights (the pipeline reports it loudly and in the CSV).
c.Sandbox.enabled = True
c.Sandbox.user = "nobody"                      # the account submissions run as when grading as root
c.Sandbox.memory_limit = 2 * 1024**3           # bytes of address space per process
c.Sandbox.max_processes = 64                   # processes + threads of one submission
c.Sandbox.cpu_limit = 300                      # CPU seconds per process
c.Sandbox.file_size_limit = 64 * 1024**2       # bytes per file written
c.Sandbox.disk_limit = 256 * 1024**2           # bytes of each tmpfs: work folder + home, /tmp
c.Sandbox.wall_limit = 300                     # seconds per notebook
c.Sandbox.cell_output_limit = 1024**2          # bytes of output kept per cell
c.Sandbox.notebook_output_limit = 10 * 1024**2  # ... and per notebook

# --- Feedback for students and formgrader's views: no hidden tests, no script -------------
from autograder.feedback import FeedbackHTMLExporter, StripHiddenTests  # noqa: E402
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbconvert.preprocessors.sanitize import SanitizeHTML  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, StripHiddenTests, SanitizeHTML, CSSHTMLHeaderPreprocessor]
# Formulas typeset when the page is written (the kit's MathJax, inline SVG: offline, no CDN),
# then a Content-Security-Policy that allows no script at all (autograder/feedback.py).
c.GenerateFeedback.exporter_class = FeedbackHTMLExporter
c.HTMLExporter.sanitize_html = True          # HTML/JS outputs cleaned (also in formgrader)
c.HTMLExporter.preprocessors = [SanitizeHTML]  # markdown cells cleaned in formgrader's views
