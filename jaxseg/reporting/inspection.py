"""Checkpoint inspection without loading data (or, by default, any array).

  python -m jaxseg.inspect PATH                 # a workdir, its checkpoints/ or checkpoints/latest|best
  python -m jaxseg.inspect PATH --step 120      # one step instead of the newest
  python -m jaxseg.inspect PATH --diff OTHER    # compare two checkpoints' parameters
  python -m jaxseg.inspect PATH --json          # machine-readable summary
  python -m jaxseg.inspect WORKDIR              # a multi-trial workdir: every trial + summary.json
  python -m jaxseg.inspect WORKDIR --trial 2    # one trial in full

Prints the saved steps (latest and best), the best metric, the run's config
(``config.json`` of the workdir), the parameter tree with shapes, dtypes and
counts, and a summary of the optimizer state (from orbax metadata alone).
``--diff`` loads both checkpoints' parameters and reports, per array, shape
changes or the max |a − b| and the relative L2 change ‖a − b‖/‖a‖.

A multi-trial workdir (``trial_<t>/`` folders, ``summarize_trials``) is shown
as one line block per trial — its checkpoint steps, best metric and value, and
last evaluation (the last record of its ``metrics.jsonl``) — then the aggregate
of ``summary.json`` (mean ± std over trials per metric). Vectorised trials share
one stacked checkpoint (leading axis = trial): a trial's best value is its own
value at the shared best step, which was chosen by the mean over trials, and a
trial's full view shows its slice (shapes without the trial axis).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import jax
import numpy as np

from jaxseg.errors import JaxsegError
from jaxseg.inference.workdirs import checkpoint_root, is_multi_trial, trial_workdirs
from jaxseg.training import checkpoint as ckpt_lib
from jaxseg.training.run_log import MetricsLog


def locate(path: str | Path) -> tuple[Path, Path | None]:
    """``(manager_dir, workdir)`` for a workdir, its ``checkpoints/`` or a manager dir."""
    p = Path(path)
    if not p.exists():
        raise JaxsegError(f"{p} does not exist")
    if (p / "checkpoints" / "latest").is_dir():
        return p / "checkpoints" / "latest", p
    if (p / "latest").is_dir():
        return p / "latest", p.parent
    if p.name in ("latest", "best") and p.parent.name == "checkpoints":
        return p, p.parent.parent
    if (p / "config.json").exists():  # a vectorised trial: its slice of the parent's stacked checkpoint
        root, trial = checkpoint_root(p, _read_json(p / "config.json"))
        if trial is not None and (root / "checkpoints" / "latest").is_dir():
            return root / "checkpoints" / "latest", p
    if p.is_dir() and any(c.is_dir() and c.name.isdigit() for c in p.iterdir()):
        return p, None
    if is_multi_trial(p):
        raise JaxsegError(f"{p} is a multi-trial workdir: inspect it whole (python -m jaxseg.inspect {p}) "
                          "or one trial with --trial N")
    raise JaxsegError(f"no orbax checkpoints found under {p} "
                     "(expected a workdir, its checkpoints/ folder, or checkpoints/latest|best)")


def locate_trial(workdir: str | Path, trial: int) -> tuple[Path, Path]:
    """``(manager_dir, trial workdir)`` of trial ``trial`` of a multi-trial workdir."""
    wd = Path(workdir)
    if not wd.exists():
        raise JaxsegError(f"{wd} does not exist")
    trials = dict(trial_workdirs(wd))
    if not is_multi_trial(wd):
        raise JaxsegError(f"--trial {trial}: {wd} is not a multi-trial workdir (no trial_<t>/ folders "
                          "with config.json); leave out --trial")
    if trial not in trials:
        raise JaxsegError(f"--trial {trial}: {wd} has no trial_{trial}/; its trials are "
                          f"{', '.join(map(str, sorted(trials)))}")
    manager_dir, _ = locate(trials[trial])
    return manager_dir, trials[trial]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise JaxsegError(f"{path} is unreadable ({type(e).__name__}: {e}); restore or delete it") from None


def _stacked_trial(manager_dir: Path, workdir: Path | None) -> int | None:
    """The trial index when ``manager_dir`` is a stacked checkpoint shown for trial folder ``workdir``."""
    if workdir is None or not (workdir / "config.json").exists():
        return None
    root, trial = checkpoint_root(workdir, _read_json(workdir / "config.json"))
    return trial if trial is not None and manager_dir.parent == root / "checkpoints" else None


def _path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def tree_table(tree) -> list[tuple[str, tuple, str, int]]:
    """``(path, shape, dtype, count)`` for every array leaf."""
    rows = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        shape = tuple(getattr(leaf, "shape", ()) or ())
        rows.append((_path_str(path), shape, str(getattr(leaf, "dtype", "?")), int(np.prod(shape))))
    return rows


def _module_totals(rows, depth: int = 1) -> "OrderedDict[str, int]":
    totals: OrderedDict[str, int] = OrderedDict()
    for path, _, _, count in rows:
        key = "/".join(path.split("/")[:depth])
        totals[key] = totals.get(key, 0) + count
    return totals


def _unstacked(rows):
    """Rows of a stacked (vectorised-trials) tree as one trial's: without the leading trial axis."""
    return [(path, shape[1:], dtype, int(np.prod(shape[1:]))) for path, shape, dtype, _ in rows]


def _trial_best(best_dir: Path, trial: int | None) -> tuple[int | None, str | None, float | None]:
    """(step, metric, value) of the best checkpoint; for a stacked one, trial ``trial``'s own value there."""
    if not best_dir.is_dir():
        return None, None, None
    mngr = ckpt_lib.open_read_only(best_dir)
    steps = list(mngr.all_steps())
    if not steps:
        return None, None, None
    meta = ckpt_lib.read_meta(mngr, max(steps))
    metric, metrics = meta.get("best_metric"), meta.get("metrics")
    if trial is not None and isinstance(metrics, list) and trial < len(metrics):
        return max(steps), metric, metrics[trial].get(metric)
    return max(steps), metric, meta.get("best")


def summarize(manager_dir: Path, workdir: Path | None, step: int | None = None) -> dict:
    mngr = ckpt_lib.open_read_only(manager_dir)
    steps = list(mngr.all_steps())
    if not steps:
        raise JaxsegError(f"{manager_dir} holds no complete checkpoint")
    step = max(steps) if step is None else step
    if step not in steps:
        raise JaxsegError(f"step {step} not in {manager_dir}; steps: {steps}")
    meta = ckpt_lib.read_meta(mngr, step)
    tree = ckpt_lib.state_metadata(mngr, step)
    best_dir = manager_dir.parent / "best"
    best_steps = list(ckpt_lib.open_read_only(best_dir).all_steps()) if best_dir.is_dir() else []
    sections = {name: tree_table(tree.get(name, {})) for name in ("params", "batch_stats", "opt_state")}
    config = None
    if workdir is not None and (workdir / "config.json").exists():
        config = _read_json(workdir / "config.json")
    trial = _stacked_trial(manager_dir, workdir)
    last, best = meta.get("metrics", {}), meta.get("best")
    stacked = None
    if trial is not None:  # one trial's slice of a vectorised run's stacked checkpoint
        sections = {name: _unstacked(rows) for name, rows in sections.items()}
        stacked = {"trial": trial, "trials": len(last) if isinstance(last, list) else None,
                   "best_of_mean": best}
        last = last[trial] if isinstance(last, list) and trial < len(last) else {}
        best = _trial_best(best_dir, trial)[2]
    return {
        "directory": str(manager_dir), "steps": steps, "step": step, "best_steps": best_steps,
        "epoch": meta.get("epoch"), "epoch_step": meta.get("epoch_step"),
        "best_metric": meta.get("best_metric"), "best": best, "stacked_trial": stacked,
        "last_metrics": last, "config": config,
        "params": sections["params"], "batch_stats": sections["batch_stats"],
        "opt_state": sections["opt_state"],
    }


def _trial_row(t: int, d: Path) -> dict:
    """One trial of a multi-trial workdir: checkpoint steps, best metric and value, last evaluation."""
    root, stacked = checkpoint_root(d, _read_json(d / "config.json"))
    ckpts = root / "checkpoints"
    latest = ckpts / "latest"
    steps = sorted(ckpt_lib.open_read_only(latest).all_steps()) if latest.is_dir() else []
    best_step, metric, value = _trial_best(ckpts / "best", stacked)
    records = MetricsLog.read(d / "metrics.jsonl")
    last = records[-1] if records else None
    if last is None and steps:  # no log: the newest checkpoint's record
        metrics = ckpt_lib.read_meta(ckpt_lib.open_read_only(latest), steps[-1]).get("metrics") or None
        last = metrics[stacked] if isinstance(metrics, list) and stacked is not None else metrics
    return {"trial": t, "directory": str(d), "checkpoints": str(ckpts) if steps else None,
            "stacked": stacked is not None, "steps": steps, "best_step": best_step, "best_metric": metric,
            "best": value, "evaluations": len(records), "last_evaluation": last}


def summarize_trials(workdir: str | Path) -> dict:
    """Every trial of a multi-trial workdir (``_trial_row``) and the aggregate of its ``summary.json``."""
    wd = Path(workdir)
    trials = trial_workdirs(wd)
    if not trials:
        raise JaxsegError(f"{wd} holds no trial_<t>/ folders with config.json; is it a multi-trial workdir?")
    config = _read_json(trials[0][1] / "config.json")
    rows = [_trial_row(t, d) for t, d in trials]
    summary_path = wd / "summary.json"
    return {"directory": str(wd), "multi_trial": True,
            "vectorized": any(r["stacked"] for r in rows),
            "num_trials": config.get("train", {}).get("num_trials", len(trials)),
            "aggregate": config.get("eval", {}).get("aggregate", {"last": 5, "reduce": "median"}),
            "config": config, "trials": rows,
            "summary": _read_json(summary_path) if summary_path.exists() else None}


def _fmt_value(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _config_line(c: dict) -> str:
    return (f"config: model={c.get('model', {}).get('name')} loss={c.get('loss', {})} "
            f"data={c.get('data', {}).get('name')}/{c.get('data', {}).get('task')} "
            f"epochs={c.get('train', {}).get('epochs')} batch={c.get('train', {}).get('batch_size')}")


def _evaluation(record: dict) -> str:
    shown = {k: v for k, v in record.items() if k.startswith(("val/", "train/loss"))}
    return " ".join(f"{k}={_fmt_value(v)}" for k, v in shown.items())


def render_trials(s: dict) -> str:
    """The text of ``summarize_trials``."""
    n = len(s["trials"])
    kind = (f"vectorised: one stacked checkpoint in {Path(s['directory']) / 'checkpoints'}, best step chosen "
            "by the mean over trials" if s["vectorized"] else "sequential: a checkpoint per trial")
    out = [f"multi-trial workdir: {s['directory']}", f"  {n} of {s['num_trials']} trials, {kind}",
           _config_line(s["config"])]
    for r in s["trials"]:
        best = (f"best {r['best_metric']} = {_fmt_value(r['best'])} (step {r['best_step']})"
                if r["best_step"] is not None else "no best checkpoint")
        steps = f"steps {r['steps']}" if r["steps"] else "no checkpoint yet"
        out.append(f"trial {r['trial']}: {steps}  {best}")
        last = r["last_evaluation"]
        if last:
            out.append(f"  last evaluation (epoch {last.get('epoch')}, step {last.get('step')}): {_evaluation(last)}")
    if s["summary"] is None:
        out.append(f"summary.json: not written yet (written when all {s['num_trials']} trials have finished)")
    else:
        rule = s["aggregate"]
        runs = {v.get("runs") for v in s["summary"].values() if isinstance(v, dict)}
        out.append(f"summary.json: per trial the {rule.get('reduce', 'median')} of the last {rule.get('last', 5)} "
                   f"epochs, then mean ± std over {'/'.join(map(str, sorted(runs))) or '?'} trials")
        width = max((len(k) for k in s["summary"]), default=10)
        for key, v in sorted(s["summary"].items()):
            if isinstance(v, dict) and "mean" in v:
                out.append(f"  {key:<{width}}  {v['mean']:.4f} ± {v.get('std', float('nan')):.4f}")
    out.append(f"one trial in full: python -m jaxseg.inspect {s['directory']} --trial N")
    return "\n".join(out)


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def render(s: dict) -> str:
    out = [f"checkpoints: {s['directory']}"]
    stacked = s.get("stacked_trial")
    if stacked:
        out.append(f"  trial {stacked['trial']} of a vectorised run: its slice of the stacked checkpoint "
                   f"(best step chosen by the mean over trials, {_fmt_value(stacked['best_of_mean'])})")
    out += [f"  steps: {s['steps']}   best: {s['best_steps']}",
            f"  step {s['step']}: epoch {s['epoch']}" + (f" (+{s['epoch_step']} steps)" if s["epoch_step"] else ""),
            f"  best {s['best_metric']} = {s['best']}"]
    last = s["last_metrics"]
    if isinstance(last, list):  # a stacked checkpoint shown whole: one record per trial
        for t, record in enumerate(last):
            out.append(f"  last evaluation, trial {t}: {_evaluation(record)}")
    elif last:
        out.append("  last evaluation: " + _evaluation(last))
    if s["config"]:
        out.append(_config_line(s["config"]))
    n_params = sum(r[3] for r in s["params"])
    out.append(f"parameters: {_fmt_count(n_params)} in {len(s['params'])} arrays")
    width = max((len(r[0]) for r in s["params"]), default=10)
    for path, shape, dtype, count in s["params"]:
        out.append(f"  {path:<{width}}  {str(shape):<18} {dtype:<9} {_fmt_count(count):>12}")
    if s["batch_stats"]:
        out.append(f"batch_stats: {_fmt_count(sum(r[3] for r in s['batch_stats']))} values "
                   f"in {len(s['batch_stats'])} arrays")
    opt = s["opt_state"]
    out.append(f"optimizer state: {_fmt_count(sum(r[3] for r in opt))} values in {len(opt)} arrays")
    for key, count in _module_totals(opt, depth=2).items():
        out.append(f"  {key:<20} {_fmt_count(count):>12}")
    return "\n".join(out)


def diff(a_dir: Path, b_dir: Path) -> str:
    """Per-array comparison of two checkpoints' ``params``."""
    rows = []
    trees = []
    for d in (a_dir, b_dir):
        m = ckpt_lib.open_read_only(d)
        trees.append(ckpt_lib.read_state(m, max(m.all_steps()))["params"])
    flat = [dict((_path_str(p), np.asarray(v)) for p, v in jax.tree_util.tree_leaves_with_path(t))
            for t in trees]
    for key in sorted(set(flat[0]) | set(flat[1])):
        a, b = flat[0].get(key), flat[1].get(key)
        if a is None or b is None:
            rows.append(f"  {key}: only in {'B' if a is None else 'A'}")
        elif a.shape != b.shape:
            rows.append(f"  {key}: shape {a.shape} vs {b.shape}")
        else:
            d = np.abs(a.astype(np.float64) - b.astype(np.float64))
            rel = np.linalg.norm(d) / max(np.linalg.norm(a.astype(np.float64)), 1e-30)
            rows.append(f"  {key}: max|A-B|={d.max():.3e} rel-L2={rel:.3e}")
    same = all(k in flat[1] and flat[0][k].shape == flat[1][k].shape and np.array_equal(flat[0][k], flat[1][k])
               for k in flat[0]) and set(flat[0]) == set(flat[1])
    head = f"A: {a_dir}\nB: {b_dir}\n" + ("identical parameters" if same else "parameters differ:")
    return head + ("" if same else "\n" + "\n".join(rows))
