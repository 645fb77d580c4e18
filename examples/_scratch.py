"""The output folder of examples 04-06: ``--run-dir``, or a new temporary folder.

In ``--fast`` mode (the tests' smoke runs) a temporary folder the script made for
itself is removed when it exits; a ``--run-dir`` given by the user is always kept.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

FAST_NOTE = (
    "--fast: a smoke run on tiny data in seconds; its accuracy is not "
    "meaningful, and its temporary folders are removed at exit"
)


def scratch_folder(run_dir: str | None, *, prefix: str, fast: bool) -> Path:
    """Return ``run_dir``, or a new temporary folder named ``prefix...``.

    With ``fast``, print what the fast mode is and remove the temporary folder
    (never ``run_dir``) when the script exits.
    """
    folder = Path(run_dir or tempfile.mkdtemp(prefix=prefix))
    if fast:
        print(FAST_NOTE)
        if not run_dir:
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
