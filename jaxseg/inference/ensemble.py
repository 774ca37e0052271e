"""The trials of a multi-trial workdir as one model: the mean of their probabilities.

A multi-trial run (``config.train.num_trials > 1``) leaves ``WORKDIR/trial_<t>/``
folders: each a run with its own ``checkpoints/`` (sequential trials), or only
logs beside one stacked checkpoint in ``WORKDIR/checkpoints`` whose leading axis
is the trial (``config.train.vectorize_trials``). ``load(WORKDIR)`` gives

* a ``Predictor`` for a single run (``WORKDIR/config.json``), or for one trial
  (``trial=N``);
* an ``Ensemble`` of every trial otherwise: p(x) = (1/T) Σ_t p_t(x), the mean
  of the members' probabilities (sigmoid or softmax outputs), thresholded or
  arg-maxed afterwards like one model's (nnU-Net's rule for combining folds).
  A stacked checkpoint is read once and sliced per trial.

The members must agree on what they take and give — image size, input
channels, classes — and, unless a threshold is given, on the threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import jax
import numpy as np

from jaxseg.errors import JaxsegError
from jaxseg.inference.predict import Predictor, restore_state
from jaxseg.inference.workdirs import checkpoint_root, is_multi_trial, trial_workdirs  # noqa: F401


class Ensemble:
    """Several predictors as one: ``ensemble(batch) = mean of member(batch)``, the members' interface."""

    def __init__(self, members: Sequence[Predictor], threshold: float | None = None, name: str = "ensemble"):
        if not members:
            raise JaxsegError(f"{name}: an ensemble needs at least one member")
        self.members = list(members)
        self.name = name
        for attr, what in (("size", "image size (config.data.image_size)"),
                           ("channels", "input channels"), ("num_classes", "classes (config.model.num_classes)"),
                           ("mode", "mode (config.model.mode)")):
            values = {getattr(m, attr) for m in self.members}
            if len(values) > 1:
                listing = ", ".join(f"{m.workdir}: {getattr(m, attr)}" for m in self.members)
                raise JaxsegError(f"{name}: the members disagree on {what} ({listing}); "
                                  "ensemble only runs of one task, or pick one with --trial")
        thresholds = {m.threshold for m in self.members}
        if threshold is None and len(thresholds) > 1:
            raise JaxsegError(f"{name}: the members' thresholds (config.eval.threshold) differ "
                              f"({sorted(thresholds)}); pass --threshold")
        first = self.members[0]
        self.size, self.channels, self.num_classes, self.mode = first.size, first.channels, first.num_classes, first.mode
        self.threshold = float(first.threshold if threshold is None else threshold)
        self.config = first.config

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        total = None
        for member in self.members:
            p = member(batch).astype(np.float64)
            total = p if total is None else total + p
        return (total / len(self.members)).astype(np.float32)

    def describe(self) -> str:
        steps = sorted({m.step for m in self.members})
        kinds = sorted({m.checkpoint_dir.name for m in self.members})
        return (f"{self.name}: mean probability of {len(self.members)} trials "
                f"({'/'.join(kinds)} checkpoints, step{'s' if len(steps) > 1 else ''} "
                f"{', '.join(map(str, steps))})")


def _members(trials: list[tuple[int, Path]], which: str) -> list[Predictor]:
    """One predictor per trial; a stacked checkpoint shared by trials is read once."""
    shared: dict[Path, tuple] = {}
    members = []
    for t, d in trials:
        config = json.loads((d / "config.json").read_text())
        root, stacked_trial = checkpoint_root(d, config)
        if stacked_trial is None:
            if not (d / "checkpoints").is_dir():
                raise JaxsegError(f"{d} has no checkpoints/ (did training reach trial {t}?); "
                                  f"resume the run, or pass --trial with a finished trial")
            members.append(Predictor(d, which))
            continue
        if root not in shared:
            shared[root] = restore_state(root, which)
        state, step, mngr_dir = shared[root]
        n = len(jax.tree_util.tree_leaves(state["params"])[0])
        if stacked_trial >= n:
            raise JaxsegError(f"{d}: trial {stacked_trial} is not in the stacked checkpoint {mngr_dir} "
                              f"({n} trials)")
        sliced = jax.tree_util.tree_map(lambda x: np.asarray(x)[stacked_trial], state)
        members.append(Predictor(d, which, restored=(sliced, step, mngr_dir)))
    return members


def load(workdir: str | Path, which: str = "best", trial: int | None = None,
         threshold: float | None = None) -> Predictor | Ensemble:
    """The model of ``workdir``: a run's ``Predictor``, one trial's, or the ``Ensemble`` of all trials."""
    wd = Path(workdir)
    trials = trial_workdirs(wd)
    if (wd / "config.json").exists() or not trials:
        if trial is not None:
            raise JaxsegError(f"--trial={trial}: {wd} is a single run, not a multi-trial workdir "
                              "(trial_<t>/ folders); leave out --trial")
        model = Predictor(wd, which)
    elif trial is not None:
        chosen = [(t, d) for t, d in trials if t == trial]
        if not chosen:
            raise JaxsegError(f"--trial={trial}: {wd} has no trial_{trial}/; its trials are "
                              f"{', '.join(str(t) for t, _ in trials)}")
        model = _members(chosen, which)[0]
    else:
        return Ensemble(_members(trials, which), threshold, name=str(wd))
    if threshold is not None:
        model.threshold = float(threshold)
    return model
