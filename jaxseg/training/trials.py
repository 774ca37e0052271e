"""Multi-trial runs: ``config.train.num_trials`` seeded trials, then the thesis's aggregation.

Trial ``t`` uses the key ``fold_in(PRNGKey(config.seed), t)`` for initialisation
and dropout; the data order is the same for every trial (the thesis compares
"different random initialization", §6.2.2). Trials run

* sequentially, each in ``WORKDIR/trial_<t>/`` with its own checkpoints; or
* vectorised (``config.train.vectorize_trials=True``): one compiled program over
  stacked parameters and optimizer states (``jax.vmap``), logging to the same
  ``trial_<t>/`` folders and sharing one checkpoint in ``WORKDIR/checkpoints`` —
  the same numbers as the sequential runs, at the cost of T× the memory.

Afterwards ``WORKDIR/summary.json`` holds the aggregate of ``jaxseg.training.aggregate``
(per run the median — or mean — of the last k epochs, then mean and std over runs).
A single trial trains directly in ``WORKDIR``.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import ml_collections

from jaxseg.training.run_log import MetricsLog
from jaxseg.training.loop import train_and_evaluate
from jaxseg.training.workdir import prepare_workdir, safe_path


def trial_dirs(workdir: str | Path, num_trials: int) -> list[Path]:
    wd = Path(workdir)
    return [wd] if num_trials == 1 else [wd / f"trial_{t}" for t in range(num_trials)]


def run(config: ml_collections.ConfigDict, workdir: str | Path):
    """Trains every trial of ``config`` in ``workdir``; returns the final record(s)."""
    n = int(config.train.num_trials)
    wd = prepare_workdir(workdir)
    if n == 1:
        return train_and_evaluate(config, wd)
    if config.train.vectorize_trials:
        records = train_and_evaluate(config, wd, vectorized_trials=n)
    else:
        records = []
        for t in range(n):
            trial_config = ml_collections.ConfigDict(config.to_dict())
            trial_config.train.trial = t
            records.append(train_and_evaluate(trial_config, safe_path(wd, f"trial_{t}")))
            if records[-1].get("preempted"):  # the same command resumes this trial, then the rest
                break
    if not any(r.get("preempted") for r in records) and jax.process_index() == 0:  # one writer of several
        write_summary(config, wd)
    return records


def write_summary(config: ml_collections.ConfigDict, workdir: Path) -> dict:
    """Aggregates the trials' ``metrics.jsonl`` into ``summary.json`` (thesis appendix rules)."""
    from jaxseg.training import aggregate

    runs = [MetricsLog.read(d / "metrics.jsonl") for d in trial_dirs(workdir, int(config.train.num_trials))]
    rule = config.eval.get("aggregate", {})
    keys = sorted({k for r in runs[0] for k in r if k.startswith("val/")} | {"train/loss"})
    summary = aggregate.aggregate(runs, keys=keys, last=rule.get("last", 5), reduce=rule.get("reduce", "median"))
    safe_path(workdir, "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
