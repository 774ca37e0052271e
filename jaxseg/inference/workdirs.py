"""What kind of workdir a path is, without loading anything: a run, a trial, or a folder of trials.

* a run: ``config.json`` + ``checkpoints/``;
* a multi-trial workdir: ``trial_<t>/`` folders (each with ``config.json``) and
  no ``config.json`` of its own; sequential trials each have ``checkpoints/``,
  vectorised ones (``config.train.vectorize_trials``) share the stacked
  ``WORKDIR/checkpoints`` (leading axis = trial) and only log in ``trial_<t>/``.
"""

from __future__ import annotations

import re
from pathlib import Path

_TRIAL = re.compile(r"trial_(\d+)")


def trial_workdirs(workdir: str | Path) -> list[tuple[int, Path]]:
    """``[(t, WORKDIR/trial_<t>)]`` for every trial folder holding a ``config.json``, by t."""
    wd = Path(workdir)
    if not wd.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in wd.iterdir()
             if p.is_dir() and (m := _TRIAL.fullmatch(p.name)) and (p / "config.json").exists()]
    return sorted(found)


def is_multi_trial(workdir: str | Path) -> bool:
    """A folder of trials (``trial_<t>/config.json``) and no run of its own (``config.json``)."""
    wd = Path(workdir)
    return not (wd / "config.json").exists() and bool(trial_workdirs(wd))


def checkpoint_root(workdir: Path, config: dict) -> tuple[Path, int | None]:
    """(folder holding ``checkpoints/``, trial index when it is a stacked, vectorised checkpoint)."""
    train_cfg = config.get("train", {})
    stacked = not (workdir / "checkpoints").is_dir() and (workdir.parent / "checkpoints").is_dir() \
        and train_cfg.get("vectorize_trials", False)
    return (workdir.parent, int(train_cfg.get("trial", 0))) if stacked else (workdir, None)
