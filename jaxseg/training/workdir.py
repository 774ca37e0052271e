"""The run's workdir: created and proven writable before anything compiles; every output stays inside.

``safe_path(wd, name)`` refuses a path that resolves outside the workdir (a
symlink planted to redirect checkpoints or logs elsewhere).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from jaxseg.errors import JaxsegError


class WorkdirError(JaxsegError):
    """A workdir that is missing, cannot be written, or is redirected out of itself."""


def prepare_workdir(workdir: str | Path) -> Path:
    if not workdir:
        raise WorkdirError("--workdir is required")
    wd = Path(workdir)
    try:
        wd.mkdir(parents=True, exist_ok=True)
        probe = wd / f".write_test.{socket.gethostname()}.{os.getpid()}"  # several processes probe at once
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise WorkdirError(f"workdir {str(wd)!r} cannot be written: {e}") from None
    return wd


def safe_path(workdir: Path, name: str) -> Path:
    """``workdir / name``, refusing symlinks that point out of the workdir."""
    root = workdir.resolve()
    path = workdir / name
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise WorkdirError(f"{path} resolves to {resolved}, outside the workdir {root}; "
                         "refusing to write through a symlink out of the workdir")
    return path
