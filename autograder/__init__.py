"""The nnopt course kit's autograder: nbgrader configuration and the instructor's pipeline.

Run its commands as modules from the repository root (or with it on ``PYTHONPATH``)::

    python -m autograder.pipeline release
    python -m autograder.pipeline grade SUBMISSIONS [--workers 2]
    python -m autograder.make_samples

Importing any module of this package has no side effects (no changes to ``sys.path``,
``sys.modules`` or the environment); nbgrader loads ``nbgrader_config.py`` from this folder.
"""
