"""Helpers of the unit tests: a copy of a script that the `nobody` user can run. (Bounded
waits: tests/support.py.)"""

import shutil
from pathlib import Path


def readable_by_anyone(script: Path, directory: Path) -> Path:
    """A copy of `script` that `nobody` can run wherever the clone is (a CI clone under
    /root, mode 0700, cannot be entered by nobody)."""
    copy = directory / script.name
    shutil.copy2(script, copy)
    copy.chmod(0o755)
    return copy
