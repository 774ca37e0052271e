"""Evaluation over the validation set, and which way the checkpoint metric improves.

``evaluate`` streams ``eval_step`` over ``source.eval_batches()`` with the metric
statistics on device and transfers to the host once, at the end.

With several processes each feeds only its rows of every validation batch (the
padding of the last one marked ``valid=False``); ``put_batch`` makes them one global
batch, so the jitted ``eval_step`` sums the statistics over all processes' devices and
every process reads the same totals — the metrics of the whole validation set.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxseg import metrics
from jaxseg.training import parallel


def evaluate(eval_step, state, source, collection, mesh, epoch: int,
             trials: int | None) -> tuple[list[dict], list]:
    """Runs ``eval_step`` over the validation set; one host transfer at the end.

    Returns one ``{'val/<name>': value}`` dict per trial (a list of one for a plain run), and per
    trial the metric statistics (host arrays) they were computed from — additive over disjoint sets,
    which is how cross-validation's out-of-fold metrics pool the folds (``crossval``).
    """
    sharding = parallel.batch_sharding(mesh)
    acc = {"loss_sum": jnp.zeros(()), "count": jnp.zeros(()), "metrics": collection.init()}
    if trials is not None:
        acc = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (trials,) + x.shape), acc)
    acc = parallel.put_replicated(acc, mesh)
    k = jnp.asarray(epoch, jnp.int32)
    for batch in source.eval_batches():
        acc = eval_step(state, parallel.put_batch(batch, sharding), acc, k)
    acc = parallel.to_host(acc)  # replicated totals over every process's rows
    out, states = [], []
    for t in range(trials or 1):
        a = acc if trials is None else jax.tree_util.tree_map(lambda x, t=t: x[t], acc)
        vals = {"val/loss": float(a["loss_sum"] / max(float(a["count"]), 1.0))}
        vals.update({f"val/{name}": v for name, v in collection.compute(a["metrics"]).items()})
        out.append(vals)
        states.append(a)
    return out, states


def checkpoint_mode(config) -> str:
    """'max' or 'min' for ``config.eval.checkpoint_metric`` ('auto': by the metric — distances and loss min)."""
    mode = config.eval.checkpoint_mode
    if mode != "auto":
        return mode
    metric = config.eval.checkpoint_metric
    if metric == "loss":
        return "min"
    spec = next((m for m in config.eval.metrics
                 if metrics.MetricCollection([m], num_classes=config.model.num_classes).names[0] == metric), metric)
    return "max" if metrics.higher_is_better(spec) else "min"
