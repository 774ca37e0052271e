"""Checkpoint inspection without loading data (or, by default, any array).

  python -m jaxseg.inspect PATH                 # a workdir, its checkpoints/ or checkpoints/latest|best
  python -m jaxseg.inspect PATH --step 120      # one step instead of the newest
  python -m jaxseg.inspect PATH --diff OTHER    # compare two checkpoints' parameters
  python -m jaxseg.inspect PATH --json          # machine-readable summary

Prints the saved steps (latest and best), the best metric, the run's config
(``config.json`` of the workdir), the parameter tree with shapes, dtypes and
counts, and a summary of the optimizer state (from orbax metadata alone).
``--diff`` loads both checkpoints' parameters and reports, per array, shape
changes or the max |a − b| and the relative L2 change ‖a − b‖/‖a‖.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import jax
import numpy as np

from jaxseg.errors import JaxsegError
from jaxseg.training import checkpoint as ckpt_lib


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
    if any(c.is_dir() and c.name.isdigit() for c in p.iterdir()):
        return p, None
    raise JaxsegError(f"no orbax checkpoints found under {p} "
                     "(expected a workdir, its checkpoints/ folder, or checkpoints/latest|best)")


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
        config = json.loads((workdir / "config.json").read_text())
    return {
        "directory": str(manager_dir), "steps": steps, "step": step, "best_steps": best_steps,
        "epoch": meta.get("epoch"), "epoch_step": meta.get("epoch_step"),
        "best_metric": meta.get("best_metric"), "best": meta.get("best"),
        "last_metrics": meta.get("metrics", {}), "config": config,
        "params": sections["params"], "batch_stats": sections["batch_stats"],
        "opt_state": sections["opt_state"],
    }


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def render(s: dict) -> str:
    out = [f"checkpoints: {s['directory']}",
           f"  steps: {s['steps']}   best: {s['best_steps']}",
           f"  step {s['step']}: epoch {s['epoch']}" + (f" (+{s['epoch_step']} steps)" if s["epoch_step"] else ""),
           f"  best {s['best_metric']} = {s['best']}"]
    if s["last_metrics"]:
        shown = {k: v for k, v in s["last_metrics"].items() if k.startswith(("val/", "train/loss"))}
        out.append("  last evaluation: " + " ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    if s["config"]:
        c = s["config"]
        out.append(f"config: model={c.get('model', {}).get('name')} loss={c.get('loss', {})} "
                   f"data={c.get('data', {}).get('name')}/{c.get('data', {}).get('task')} "
                   f"epochs={c.get('train', {}).get('epochs')} batch={c.get('train', {}).get('batch_size')}")
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
