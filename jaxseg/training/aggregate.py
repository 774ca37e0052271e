"""The thesis's aggregation rule, in one place: per run over its last epochs, then over runs.

Thesis appendix: "Median of the validation results from the last 5 epochs are
taken in every run. The final result is the mean of these medians over 5 runs"
(Experiment 1); "the validation results of the last epoch, average (mean) over
5 runs" (Experiment 2); "the mean of validation scores in the last 3 epochs"
(Experiment 3). In general, for a metric m:

  run value   r_i = reduce{ m(e) : e among the last k evaluated epochs of run i }
  result      mean_i r_i  and  std_i r_i  (sample std, ddof = 1; 0 for a single run)

``reduce`` is 'median' (default) or 'mean'; k = 1 is the last epoch. Records
come from each run's ``metrics.jsonl`` (one JSON object per evaluation with
``epoch`` and ``val/<metric>``); a later record of the same epoch replaces an
earlier one.

Command line: ``jaxseg.cli.aggregate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from jaxseg.errors import JaxsegError
from jaxseg.training.run_log import MetricsLog

PRESETS: dict[str, dict] = {
    "experiment1": {"last": 5, "reduce": "median"},  # thesis Table 1-2
    "experiment2": {"last": 1, "reduce": "median"},  # last epoch
    "experiment3": {"last": 3, "reduce": "mean"},
}


def read_records(run: str | Path | Sequence[Mapping]) -> list[Mapping]:
    """A run's records: a list already, a ``metrics.jsonl`` path, or a run directory."""
    if isinstance(run, (str, Path)):
        path = Path(run)
        log = path / "metrics.jsonl" if path.is_dir() else path
        records = MetricsLog.read(log)
        if not records:
            why = "does not exist" if not path.exists() else "holds no metrics.jsonl records"
            raise JaxsegError(f"{path} {why} (expected a run directory or its metrics.jsonl)")
        return records
    return list(run)


def run_value(records: Iterable[Mapping], key: str, last: int = 5, reduce: str = "median") -> float:
    """reduce{ record[key] : the last ``last`` epochs that have ``key`` } for one run.

    ValueError when the run has no record with ``key``.
    """
    if last < 1:
        raise ValueError(f"last must be >= 1; got {last}")
    by_epoch = {r.get("epoch"): float(r[key]) for r in records if key in r}
    if not by_epoch:
        raise ValueError(f"no record has {key!r}")
    values = [by_epoch[e] for e in sorted(by_epoch, key=lambda e: (e is None, e))][-last:]
    if reduce == "median":
        return float(np.median(values))
    if reduce == "mean":
        return float(np.mean(values))
    raise ValueError(f"reduce must be 'median' or 'mean'; got {reduce!r}")


def aggregate(runs: Sequence, keys: Sequence[str] | None = None, last: int = 5,
              reduce: str = "median", ddof: int = 1) -> dict[str, dict]:
    """{key: {'mean', 'std', 'runs', 'per_run'}} over runs, per the thesis's rule.

    ``runs``: run directories, ``metrics.jsonl`` paths or lists of records.
    ``keys`` default: every ``val/…`` key that all runs report.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    records = [read_records(r) for r in runs]
    if keys is None:
        common = set.intersection(*({k for r in rec for k in r} for rec in records))
        keys = sorted(k for k in common if k.startswith("val/"))
    out = {}
    for key in keys:
        per_run = np.array([run_value(rec, key, last, reduce) for rec in records])
        std = float(np.std(per_run, ddof=ddof)) if len(per_run) > ddof else 0.0
        out[key] = {"mean": float(np.mean(per_run)), "std": std, "runs": len(per_run),
                    "per_run": per_run.tolist()}
    return out
