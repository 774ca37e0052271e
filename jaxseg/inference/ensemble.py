"""The trials of a multi-trial workdir, or the folds of a cross-validation root, as one model: the mean
of their probabilities.

A multi-trial run (``config.train.num_trials > 1``) leaves ``WORKDIR/trial_<t>/``
folders: each a run with its own ``checkpoints/`` (sequential trials), or only
logs beside one stacked checkpoint in ``WORKDIR/checkpoints`` whose leading axis
is the trial (``config.train.vectorize_trials``). ``load(WORKDIR)`` gives

* a ``Predictor`` for a single run (``WORKDIR/config.json``), or for one trial
  (``trial=N``);
* an ``Ensemble`` of every trial otherwise: p(x) = (1/T) Σ_t p_t(x), the mean
  of the members' probabilities (sigmoid or softmax outputs), thresholded or
  arg-maxed afterwards like one model's (nnU-Net's rule for combining folds).
  A stacked checkpoint is read once and sliced per trial;
* for a cross-validation root (``fold_<k>/`` workdirs, ``launch/cv.sh``) the
  ``Ensemble`` of every fold's runs (a fold's trials all count), nnU-Net's
  ensemble of the folds.

``members="0,2"`` keeps some trials (or folds) by number (``select_members``).

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

    def __init__(self, members: Sequence[Predictor], threshold: float | None = None, name: str = "ensemble",
                 unit: str = "trials"):
        self.unit = unit  # what the members are, for describe(): 'trials' or 'fold runs'
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
                                  "ensemble only runs of one task, or pick some with --members")
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
        return (f"{self.name}: mean probability of {len(self.members)} {self.unit} "
                f"({'/'.join(kinds)} checkpoints, step{'s' if len(steps) > 1 else ''} "
                f"{', '.join(map(str, steps))})")


def select_members(trials: Sequence[tuple[int, Path]], members: str | Sequence[int] | None,
                   workdir: str | Path = "", kind: str = "trial") -> list[tuple[int, Path]]:
    """The trials (or folds: ``kind='fold'``) ``members`` names, by number: ``None`` = all of ``trials``;
    ``"0,2"`` or ``[0, 2]`` = ``trial_0`` and ``trial_2`` (in order, each once).

    ``trials`` is ``workdirs.trial_workdirs(workdir)`` (or the fold folders; empty for a single run). A
    number that is not there, a number given twice, an empty list, or ``members`` on a single run raise
    ``JaxsegError`` naming the ones there are; ``workdir`` only names the folder in messages.
    """
    if members is None:
        return list(trials)
    shown = members if isinstance(members, str) else ",".join(str(m) for m in members)
    if not trials:
        raise JaxsegError(f"--members={shown}: {workdir} is a single run, not a multi-trial workdir "
                          "(trial_<t>/ folders) nor a cross-validation root (fold_<k>/); leave out --members")
    if isinstance(members, str):
        try:
            wanted = [int(m) for m in members.split(",") if m.strip()]
        except ValueError:
            raise JaxsegError(f"--members={shown}: give {kind} numbers separated by commas, "
                              "e.g. --members=0,2") from None
    else:
        wanted = [int(m) for m in members]
    available = ", ".join(str(t) for t, _ in trials)
    if not wanted:
        raise JaxsegError(f"--members={shown}: name at least one {kind}; the {kind}s of {workdir} are {available}")
    twice = sorted({m for m in wanted if wanted.count(m) > 1})
    if twice:
        raise JaxsegError(f"--members={shown}: {kind} {twice[0]} is named twice")
    known = {t for t, _ in trials}
    missing = [m for m in wanted if m not in known]
    if missing:
        raise JaxsegError(f"--members={shown}: {workdir} has no {kind}_{missing[0]}/; its {kind}s are {available}")
    return [(t, d) for t, d in trials if t in wanted]


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


def _units(wd: Path) -> tuple[str, list[tuple[int, Path]]]:
    """('run', []), ('trial', trial folders) or ('fold', fold folders) — what ``wd`` is made of."""
    from jaxseg.training.crossval import fold_dirs

    if (wd / "config.json").exists():
        return "run", []
    trials = trial_workdirs(wd)
    if trials:
        return "trial", trials
    folds = fold_dirs(wd)
    return ("fold", folds) if folds else ("run", [])


def _runs(kind: str, chosen: list[tuple[int, Path]]) -> list[tuple[int, Path]]:
    """The runs behind the chosen trials, or behind the chosen folds (each a run or its trials)."""
    if kind == "trial":
        return chosen
    return [run for k, d in chosen for run in (trial_workdirs(d) if is_multi_trial(d) else [(k, d)])]


def load(workdir: str | Path, which: str = "best", trial: int | None = None,
         threshold: float | None = None, members: str | Sequence[int] | None = None) -> Predictor | Ensemble:
    """The model of ``workdir``: a run's ``Predictor``, one trial's, or the ``Ensemble`` of all trials, all
    folds (a cross-validation root), or the ``members`` picked."""
    wd = Path(workdir)
    kind, units = _units(wd)
    if trial is not None and members is not None:
        raise JaxsegError("--trial and --members both choose trials; give one of them")
    if trial is not None and kind != "trial":
        raise JaxsegError(f"--trial={trial}: {wd} is a single run, not a multi-trial workdir (trial_<t>/ folders); "
                          "leave out --trial" if kind == "run" else
                          f"--trial={trial}: {wd} is a cross-validation root (fold_<k>/); pick folds with --members")
    if kind == "run":
        select_members([], members, wd)  # raises when members were given
        model = Predictor(wd, which)
    elif trial is not None:
        chosen = [(t, d) for t, d in units if t == trial]
        if not chosen:
            raise JaxsegError(f"--trial={trial}: {wd} has no trial_{trial}/; its trials are "
                              f"{', '.join(str(t) for t, _ in units)}")
        model = _members(chosen, which)[0]
    else:
        chosen = select_members(units, members, wd, kind)
        picked = "" if members is None else f" ({kind}s {', '.join(str(k) for k, _ in chosen)})"
        return Ensemble(_members(_runs(kind, chosen), which), threshold, name=f"{wd}{picked}",
                        unit="trials" if kind == "trial" else f"runs of {len(chosen)} fold(s)")
    if threshold is not None:
        model.threshold = float(threshold)
    return model
