"""Training: state, jit-ed train/eval steps, and ``train_and_evaluate(config, workdir)``.

The loop is data-parallel over one device mesh (``jaxseg.parallel``), evaluates
after every epoch, checkpoints with orbax (``jaxseg.checkpoint``), and logs to
``metrics.jsonl`` and TensorBoard (``jaxseg.summary``). Running it again on a
workdir with a checkpoint resumes after the last saved epoch; because the data
order of epoch k depends on (seed, k) and dropout keys on the step, the result
equals an uninterrupted run.

Epochs are counted from 0 inside the loop (loss schedules see k = 0, 1, ...);
``metrics.jsonl``'s ``epoch`` is the number of completed epochs (1 after the first).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxseg import checkpoint as ckpt_lib
from jaxseg import losses, metrics, models, parallel
from jaxseg.config_check import validate_config
from jaxseg.losses.regional import probabilities
from jaxseg.optim import build_optimizer
from jaxseg.summary import MetricsLog, TensorBoardWriter


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
                       image_shape: tuple[int, ...]) -> TrainState:
    """Initialises parameters on a one-image batch of ``image_shape`` (H, W, C)."""
    variables = model.init({"params": rng}, jnp.zeros((1,) + tuple(image_shape), jnp.float32),
                           train=False)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params))


def _variables(state: TrainState) -> dict:
    v = {"params": state.params}
    if state.batch_stats:
        v["batch_stats"] = state.batch_stats
    return v


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, loss_fn: Callable,
                    dropout_key: jax.Array) -> Callable:
    """``step(state, batch, epoch) -> (state, {'loss': ..., **aux})``, pure (jit it)."""

    def step(state: TrainState, batch: dict, epoch: jax.Array):
        rng = jax.random.fold_in(dropout_key, state.step)

        def objective(params):
            logits, updates = model.apply(
                _variables(state.replace(params=params)), batch["image"], train=True,
                mutable=["batch_stats"], rngs={"dropout": rng})
            loss, aux = loss_fn(logits, batch, epoch)
            return loss, (updates, aux)

        (loss, (updates, aux)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        opt_updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, opt_updates),
            batch_stats=updates.get("batch_stats", state.batch_stats),
            opt_state=opt_state)
        return new_state, {"loss": loss, **aux}

    return step


def make_eval_step(model: nn.Module, loss_fn: Callable,
                   collection: metrics.MetricCollection) -> Callable:
    """``eval_step(state, batch, acc, epoch) -> acc``: per-image loss sums + metric statistics."""

    def per_image_loss(logits, batch, epoch):
        one = jax.tree_util.tree_map(lambda x: x[None], batch)
        return loss_fn(logits[None], one, epoch)[0]

    def eval_step(state: TrainState, batch: dict, acc: dict, epoch: jax.Array):
        logits = model.apply(_variables(state), batch["image"], train=False)
        valid = batch["valid"]
        image_batch = {k: v for k, v in batch.items() if k != "valid"}
        losses_ = jax.vmap(per_image_loss, in_axes=(0, 0, None))(logits, image_batch, epoch)
        w = valid.astype(jnp.float32)
        return {
            "loss_sum": acc["loss_sum"] + jnp.sum(losses_ * w),
            "count": acc["count"] + jnp.sum(w),
            "metrics": collection.update(acc["metrics"], probabilities(logits), batch["mask"], valid),
        }

    return eval_step


def evaluate(eval_step, state, source, collection, mesh, epoch: int) -> dict[str, float]:
    sharding = parallel.batch_sharding(mesh)
    acc = parallel.put_replicated({"loss_sum": jnp.zeros(()), "count": jnp.zeros(()),
                                   "metrics": collection.init()}, mesh)
    k = jnp.asarray(epoch, jnp.int32)
    for batch in source.eval_batches():
        acc = eval_step(state, parallel.put_batch(batch, sharding), acc, k)
    acc = jax.device_get(acc)
    out = {"val/loss": float(acc["loss_sum"] / max(float(acc["count"]), 1.0))}
    out.update({f"val/{name}": v for name, v in collection.compute(acc["metrics"]).items()})
    return out


def _prepare_workdir(workdir: str | Path) -> Path:
    """Creates the workdir and proves it writable — before anything is compiled."""
    wd = Path(workdir)
    try:
        wd.mkdir(parents=True, exist_ok=True)
        probe = wd / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise SystemExit(f"error: workdir {str(wd)!r} cannot be written: {e}") from None
    return wd


def _host_float(x) -> float:
    return float(np.asarray(jax.device_get(x)))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Trains ``config`` in ``workdir`` (resuming if it holds a checkpoint); returns the last record."""
    validate_config(config)
    wd = _prepare_workdir(workdir)
    parallel.maybe_initialize_distributed()
    mesh = parallel.make_mesh()
    parallel.check_batch_divisible(config.train.batch_size, mesh)
    is_main = jax.process_index() == 0

    from jaxseg import data  # imported here: the data layer brings TensorFlow

    source = data.get_source(config, jax.process_index(), jax.process_count())
    model = models.get_model(config.model, config.train.dtype)
    loss_fn = losses.build_loss(config.loss)
    collection = metrics.MetricCollection(config.eval.metrics, config.eval.threshold)
    tx = build_optimizer(config.optimizer)

    init_key, dropout_key = jax.random.split(jax.random.PRNGKey(config.seed))
    state = parallel.put_replicated(create_train_state(model, tx, init_key, source.image_shape), mesh)

    checkpointer = ckpt_lib.Checkpointer(wd / "checkpoints")
    start_epoch, best = 0, None
    restored = checkpointer.restore(ckpt_lib.abstract_like(state))
    if restored is not None:
        state, meta = restored
        start_epoch, best = int(meta["epoch"]), meta.get("best")
        if is_main:
            print(f"Resuming from {wd / 'checkpoints'} after epoch {start_epoch}")

    if is_main:
        (wd / "config.json").write_text(json.dumps(config.to_dict(), indent=2, default=str))
    log = MetricsLog(wd / "metrics.jsonl", keep_through_epoch=start_epoch) if is_main else None
    tb = TensorBoardWriter(wd) if is_main else None

    train_step = jax.jit(make_train_step(model, tx, loss_fn, dropout_key), donate_argnums=(0,))
    eval_step = jax.jit(make_eval_step(model, loss_fn, collection), donate_argnums=(2,))
    sharding = parallel.batch_sharding(mesh)
    metric_name = config.eval.checkpoint_metric
    mode = config.eval.checkpoint_mode
    record: dict = {}

    for epoch in range(start_epoch, config.train.epochs):
        k = jnp.asarray(epoch, jnp.int32)
        t0 = time.perf_counter()
        wait = 0.0
        loss_sum, last = jnp.zeros(()), None
        bar = tqdm(total=source.steps_per_epoch, desc=f"epoch {epoch + 1}/{config.train.epochs}",
                   disable=not is_main or not config.train.progress, leave=False, dynamic_ncols=True)
        batches = source.train_batches(epoch)
        for i in range(source.steps_per_epoch):
            tw = time.perf_counter()
            batch = parallel.put_batch(next(batches), sharding)
            wait += time.perf_counter() - tw
            state, out = train_step(state, batch, k)
            loss_sum = loss_sum + out["loss"]
            if last is not None and i % config.train.log_every == 0:
                bar.set_postfix(loss=f"{_host_float(last):.4f}")  # previous step: already done
            last = out["loss"]
            bar.update(1)
        bar.close()
        train_loss = _host_float(loss_sum) / source.steps_per_epoch
        train_time = time.perf_counter() - t0
        val = evaluate(eval_step, state, source, collection, mesh, epoch)
        record = {"epoch": epoch + 1, "step": int(_host_float(state.step)), "train/loss": train_loss,
                  **{f"train/{k_}": _host_float(v) for k_, v in out.items() if k_ != "loss"},
                  **val, "time/train_s": train_time,
                  "time/data_wait_fraction": wait / max(train_time, 1e-9),
                  "time/eval_s": time.perf_counter() - t0 - train_time}
        improved = ckpt_lib.is_better(val.get(f"val/{metric_name}"), best, mode)
        if improved:
            best = val[f"val/{metric_name}"]
        checkpointer.save(epoch + 1, state, {"epoch": epoch + 1, "best": best,
                                             "best_metric": metric_name, "metrics": record},
                          best=improved)
        if is_main:
            log.write(record)
            tb.scalars(record["step"], record)
            print(f"epoch {epoch + 1}: train/loss={train_loss:.4f} " +
                  " ".join(f"{k_}={v:.4f}" for k_, v in val.items()) +
                  f" ({train_time:.1f}s train, data wait {100 * record['time/data_wait_fraction']:.1f}%)")
    checkpointer.wait()
    checkpointer.close()
    if tb is not None:
        tb.close()
    return record
