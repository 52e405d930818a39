"""Helpers of the unit tests: a bounded wait on the event loop, and a copy of a script that
the `nobody` user can run."""

import asyncio
import shutil
from pathlib import Path


async def until(condition, timeout_s: float = 5.0) -> None:
    """Yield to the event loop until `condition()` holds; fail after `timeout_s` (a bound)."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


def readable_by_anyone(script: Path, directory: Path) -> Path:
    """A copy of `script` that `nobody` can run wherever the clone is (a CI clone under
    /root, mode 0700, cannot be entered by nobody)."""
    copy = directory / script.name
    shutil.copy2(script, copy)
    copy.chmod(0o755)
    return copy
