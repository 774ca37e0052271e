"""K-fold cross-validation results: the cross-validated mean (std) and the out-of-fold metrics.

A cross-validation root holds one workdir per fold, ``ROOT/fold_<k>/`` (each a run
or a multi-trial workdir), trained with ``config.data.num_folds = K`` and
``config.data.fold = k`` (``launch/cv.sh`` runs them all). Two summaries:

* **cross-validated** value of a metric m: per fold f the thesis's aggregate over
  its trials (``aggregate``: per trial the reduce over the last epochs, then the
  mean over trials), v_f; reported as mean_f v_f and std_f v_f (ddof 1, 0 for one).
* **out of fold**: every training example is validated by exactly one fold's
  final model. The metric statistics of the final evaluation are additive over
  disjoint sets (``metrics.MetricCollection``: counts, histograms, per-image sums),
  so S_oof = Σ_f S_f is the statistic of the whole training set, and m(S_oof) is
  the metric over all of it — a global Dice over every pixel, not a mean of fold
  Dice values. With trials, the trials of the same index are pooled across folds
  and the result is the mean (std) over trial indices.

Each run writes its final statistics to ``eval_statistics.npz`` (``save_statistics``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxseg.errors import JaxsegError

STATISTICS = "eval_statistics.npz"
_FOLD = re.compile(r"fold_(\d+)")
_TRIAL = re.compile(r"trial_(\d+)")


def save_statistics(run_dir: str | Path, tree: Any) -> Path:
    """Writes a run's final metric statistics (a pytree of arrays) to ``run_dir/eval_statistics.npz``."""
    leaves = jax.tree_util.tree_leaves(jax.device_get(tree))
    path = Path(run_dir) / STATISTICS
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)})
    os.replace(tmp, path)
    return path


def load_statistics(run_dir: str | Path, template: Any) -> Any:
    """The statistics of ``run_dir`` in the structure of ``template`` (checked leaf by leaf)."""
    path = Path(run_dir) / STATISTICS
    if not path.exists():
        raise JaxsegError(f"{path} not found: the run has not finished its last epoch (resume it), or it was "
                          "trained before out-of-fold statistics existed")
    leaves, treedef = jax.tree_util.tree_flatten(template)
    with np.load(path) as f:
        stored = [f[f"leaf_{i}"] for i in range(len(f.files))]
    shapes = [np.shape(x) for x in leaves]
    if [s.shape for s in stored] != shapes:
        raise JaxsegError(f"{path}: statistics of shapes {[s.shape for s in stored]}, but this run's metrics "
                          f"need {shapes} (config.eval.metrics changed?)")
    return jax.tree_util.tree_unflatten(treedef, stored)


def numbered(root: str | Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    """``[(k, root/<prefix>_k)]`` for the subfolders matching ``pattern``, by k."""
    root = Path(root)
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := pattern.fullmatch(p.name))] \
        if root.is_dir() else []
    return sorted(found)


def fold_dirs(root: str | Path) -> list[tuple[int, Path]]:
    """The fold workdirs ``ROOT/fold_<k>/`` of a cross-validation root, by k."""
    return numbered(root, _FOLD)


def is_cv_root(root: str | Path) -> bool:
    return bool(fold_dirs(root))


def run_dirs(workdir: str | Path) -> list[Path]:
    """The runs of a workdir: its ``trial_<t>/`` folders with a metrics log, else the workdir itself."""
    trials = [d for _, d in numbered(workdir, _TRIAL) if (d / "metrics.jsonl").exists()]
    return trials or [Path(workdir)]


def _collection(run_dir: Path):
    from jaxseg import metrics, models

    path = run_dir / "config.json"
    if not path.exists():
        raise JaxsegError(f"{path} not found: is {run_dir.parent} a cross-validation root (fold_<k>/ runs)?")
    config = json.loads(path.read_text())
    model = config.get("model", {})
    collection = metrics.MetricCollection(config["eval"]["metrics"], config["eval"].get("threshold", 0.5),
                                          num_classes=model.get("num_classes", 1),
                                          mode=models.output_mode(model))
    return collection, config


def out_of_fold(root: str | Path) -> dict[str, dict]:
    """{'val/<metric>': {'mean', 'std', 'trials', 'per_trial'}} of the pooled out-of-fold statistics."""
    folds = fold_dirs(root)
    runs = [run_dirs(d) for _, d in folds]
    if len({len(r) for r in runs}) != 1:
        raise JaxsegError(f"{root}: the folds have different numbers of trials "
                          f"({', '.join(f'fold_{k}: {len(r)}' for (k, _), r in zip(folds, runs))})")
    collection, _ = _collection(runs[0][0])
    template = {"loss_sum": np.zeros(()), "count": np.zeros(()), "metrics": collection.init()}
    per_trial = []
    for t in range(len(runs[0])):
        states = [load_statistics(r[t], template) for r in runs]
        pooled = jax.tree_util.tree_map(lambda *xs: np.sum(xs, axis=0), *states)
        values = {"val/loss": float(pooled["loss_sum"] / max(float(pooled["count"]), 1.0))}
        values.update({f"val/{k}": v for k, v in collection.compute(pooled["metrics"]).items()})
        per_trial.append(values)
    return {k: _mean_std([p[k] for p in per_trial], "trials") for k in per_trial[0]}


def _mean_std(values: list[float], unit: str) -> dict:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, unit: len(v),
            f"per_{unit[:-1]}": v.tolist()}


def cross_validated(root: str | Path, last: int = 5, reduce: str = "median") -> dict[str, dict]:
    """{'val/<metric>': {'mean', 'std', 'folds', 'per_fold'}}: each fold's trial-mean aggregate, then
    the mean and std over folds."""
    from jaxseg.training import aggregate

    per_fold = [aggregate.aggregate(run_dirs(d), last=last, reduce=reduce) for _, d in fold_dirs(root)]
    keys = sorted(set.intersection(*(set(p) for p in per_fold)))
    return {k: _mean_std([p[k]["mean"] for p in per_fold], "folds") for k in keys}


def _check_complete(folds: list[tuple[int, Path]]) -> None:
    """Every fold 0..K−1 present, each trained as that fold of the same K."""
    expected = None
    for k, d in folds:
        data = _collection(run_dirs(d)[0])[1].get("data", {})
        if data.get("num_folds") is None or data.get("fold") != k:
            raise JaxsegError(f"{d} was not trained as fold {k} (its config.data.num_folds="
                              f"{data.get('num_folds')}, fold={data.get('fold')}); train it with launch/cv.sh")
        expected = expected or data["num_folds"]
        if data["num_folds"] != expected:
            raise JaxsegError(f"{d} has num_folds={data['num_folds']}, the other folds {expected}")
    missing = sorted(set(range(expected)) - {k for k, _ in folds})
    if missing:
        raise JaxsegError(f"{folds[0][1].parent}: fold(s) {missing} of {expected} missing; the out-of-fold "
                          "metrics need every fold (rerun launch/cv.sh: finished folds are skipped)")


def summarize(root: str | Path, last: int | None = None, reduce: str | None = None, write: bool = True) -> dict:
    """Both summaries of a cross-validation root; written to ``ROOT/cv_summary.json`` with ``write``.
    ``last``/``reduce`` default to the folds' ``config.eval.aggregate`` (else 5, 'median')."""
    folds = fold_dirs(root)
    if not folds:
        raise JaxsegError(f"{root} holds no fold_<k>/ workdirs (train them with launch/cv.sh)")
    _check_complete(folds)
    rule = _collection(run_dirs(folds[0][1])[0])[1].get("eval", {}).get("aggregate", {})
    last = last if last is not None else rule.get("last", 5)
    reduce = reduce if reduce is not None else rule.get("reduce", "median")
    summary = {"folds": [k for k, _ in folds], "rule": {"last": last, "reduce": reduce},
               "cross_validated": cross_validated(root, last, reduce), "out_of_fold": out_of_fold(root)}
    if write:
        (Path(root) / "cv_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
