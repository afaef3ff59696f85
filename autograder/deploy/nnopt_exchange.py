"""nbgrader's filesystem exchange, with each submission closed to other students.

nbgrader 0.9 leaves a submission in ``<exchange>/<course>/inbound/`` open to everyone: the
files are 0644 and the submission folder 0777 (so that instructors can delete it). Only the
inbound folder being unlistable (mode 2733) hides it: another student cannot *find* it, but
one who learns its name (``student+lab+timestamp+random``) can read it, including
``submission_secret.txt``, the key to that student's feedback.

:class:`PrivateExchangeSubmit` does exactly what nbgrader does, then sets the submission
folder to 0770. The inbound folder is setgid, so that folder belongs to the group of the
account that released the assignment (the grading account): graders enter, read and delete
it through the group, while no other student can enter it, whatever the modes of the files
inside. Selected with ``c.ExchangeFactory.submit`` in ``exchange/nbgrader_config.py``.
"""
from __future__ import annotations

import os
import stat

from nbgrader.exchange.default import ExchangeSubmit

#: The submission folder: rwx for the student and the graders' group, nothing for others.
SUBMISSION_DIR_MODE = stat.S_IRWXU | stat.S_IRWXG


class PrivateExchangeSubmit(ExchangeSubmit):
    """``nbgrader submit`` that leaves the submission readable by its student and the graders only."""

    def copy_files(self) -> None:
        """Submit as nbgrader does, then close the submission folder that nbgrader opened to 0777."""
        super().copy_files()
        os.chmod(os.path.join(self.inbound_path, self.assignment_filename), SUBMISSION_DIR_MODE)
