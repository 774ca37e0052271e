"""Training: state, jit-ed train/eval steps, and ``train_and_evaluate(config, workdir)``.

The loop is data-parallel over one device mesh (``jaxseg.parallel``), evaluates
after every epoch, checkpoints with orbax (``jaxseg.checkpoint``), and logs to
``metrics.jsonl`` and TensorBoard (``jaxseg.summary``).

Resuming: running again on a workdir with a checkpoint continues from it. The
data order of epoch k depends only on (seed, k), augmentation seeds on
(seed, k, step-in-epoch) and dropout keys on the global step, and a checkpoint
records the step inside its epoch and the running loss sum — so an interrupted
and resumed run ends with the same numbers as an uninterrupted one.

Epochs are counted from 0 inside the loop (loss schedules see k = 0, 1, ...);
``metrics.jsonl``'s ``epoch`` is the number of completed epochs (1 after the first).
"""

from __future__ import annotations

import json
import sys
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
from jaxseg.progress import tqdm

from jaxseg import checkpoint as ckpt_lib
from jaxseg import losses, metrics, models, parallel
from jaxseg.config_check import validate_config
from jaxseg.guards import NonFiniteError, PreemptionGuard
from jaxseg.losses.regional import probabilities
from jaxseg.optim import build_optimizer
from jaxseg.summary import MetricsLog, TensorBoardWriter
from jaxseg.workdir import prepare_workdir, safe_path


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array  # dropout key of this run; step ``s`` uses fold_in(rng, s)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
                       image_shape: tuple[int, ...]) -> TrainState:
    """Initialises a run from ``rng`` on a one-image batch of ``image_shape`` (H, W, C).

    ``rng`` splits into the parameter-init key and the dropout key; a stack of keys
    (shape (T, 2)) gives T stacked states (vectorised trials). Compiled as one XLA
    program at backend optimisation level 0: initialisation runs once, and the
    unrolled threefry hashes of every parameter tensor otherwise cost ~10 s of LLVM
    optimisation on a CPU (level 0: under 2 s; same values).
    """

    def init(key):
        init_key, dropout_key = jax.random.split(key)
        variables = model.init({"params": init_key}, jnp.zeros((1,) + tuple(image_shape), jnp.float32),
                               train=False)
        params = variables["params"]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                          rng=dropout_key)

    fn = jax.vmap(init) if jnp.ndim(rng) == 2 else init
    compiled = jax.jit(fn).lower(rng).compile(compiler_options={"xla_backend_optimization_level": 0})
    return compiled(rng)


def trial_key(seed: int, trial: int) -> jax.Array:
    """The key of trial ``trial``: trials differ in initialisation and dropout, not in data order."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), trial)


def _variables(state: TrainState) -> dict:
    v = {"params": state.params}
    if state.batch_stats:
        v["batch_stats"] = state.batch_stats
    return v


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, loss_fn: Callable,
                    augment: Callable | None = None) -> Callable:
    """``step(state, batch, epoch) -> (state, {'loss', 'finite', 'step', **aux})``, pure (jit it).

    A step whose loss or gradients are not finite leaves params, batch_stats and the
    optimizer state unchanged (``finite`` is False); the step counter still advances.
    ``augment(batch, step) -> batch`` (``jaxseg.data.device_augment``) runs first, on device.
    """

    def step(state: TrainState, batch: dict, epoch: jax.Array):
        rng = jax.random.fold_in(state.rng, state.step)
        if augment is not None:
            batch = augment(batch, state.step)

        def objective(params):
            logits, updates = model.apply(
                _variables(state.replace(params=params)), batch["image"], train=True,
                mutable=["batch_stats"], rngs={"dropout": rng})
            loss, aux = loss_fn(logits, batch, epoch)
            return loss, (updates, aux)

        (loss, (updates, aux)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        finite = jnp.isfinite(loss) & _all_finite(grads)
        opt_updates, opt_state = tx.update(grads, state.opt_state, state.params)
        candidate = (optax.apply_updates(state.params, opt_updates),
                     updates.get("batch_stats", state.batch_stats), opt_state)
        kept = jax.tree_util.tree_map(lambda new, old: jnp.where(finite, new, old), candidate,
                                      (state.params, state.batch_stats, state.opt_state))
        new_state = state.replace(step=state.step + 1, params=kept[0], batch_stats=kept[1],
                                  opt_state=kept[2])
        return new_state, {"loss": loss, "finite": finite, "step": state.step, **aux}

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
            "loss_sum": acc["loss_sum"] + jnp.sum(jnp.where(valid, losses_, 0.0)),
            "count": acc["count"] + jnp.sum(w),
            "metrics": collection.update(acc["metrics"], probabilities(logits), batch["mask"], valid),
        }

    return eval_step


def evaluate(eval_step, state, source, collection, mesh, epoch: int, trials: int | None) -> list[dict]:
    """Runs ``eval_step`` over the validation set; one host transfer at the end.

    Returns one ``{'val/<name>': value}`` dict per trial (a list of one for a plain run).
    """
    sharding = parallel.batch_sharding(mesh)
    acc = {"loss_sum": jnp.zeros(()), "count": jnp.zeros(()), "metrics": collection.init()}
    if trials is not None:
        acc = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (trials,) + x.shape), acc)
    acc = parallel.put_replicated(acc, mesh)
    k = jnp.asarray(epoch, jnp.int32)
    for batch in source.eval_batches():
        acc = eval_step(state, parallel.put_batch(batch, sharding), acc, k)
    acc = jax.device_get(acc)
    out = []
    for t in range(trials or 1):
        a = acc if trials is None else jax.tree_util.tree_map(lambda x, t=t: x[t], acc)
        vals = {"val/loss": float(a["loss_sum"] / max(float(a["count"]), 1.0))}
        vals.update({f"val/{name}": v for name, v in collection.compute(a["metrics"]).items()})
        out.append(vals)
    return out


def _host_float(x) -> float:
    return float(np.asarray(jax.device_get(x)).reshape(-1)[0])


class _EpochAccumulator:
    """Device-side running sums of one epoch, per trial: loss over finite steps, their count, first bad step."""

    def __init__(self, trials: int | None, loss_sum=0.0, finite_steps=0, first_bad=-1):
        shape = () if trials is None else (trials,)
        self.loss_sum = jnp.broadcast_to(jnp.asarray(loss_sum, jnp.float32), shape)
        self.finite_steps = jnp.broadcast_to(jnp.asarray(finite_steps, jnp.int32), shape)
        self.first_bad = jnp.broadcast_to(jnp.asarray(first_bad, jnp.int32), shape)

    def add(self, out: dict) -> None:
        f = out["finite"]
        self.loss_sum = self.loss_sum + jnp.where(f, out["loss"], 0.0)
        self.finite_steps = self.finite_steps + f.astype(jnp.int32)
        self.first_bad = jnp.where((self.first_bad < 0) & ~f, out["step"], self.first_bad)

    def host(self) -> dict:
        """Plain Python numbers (lists of them for vectorised trials), JSON-ready."""
        return {k: np.asarray(v).tolist() for k, v in jax.device_get(
            {"loss_sum": self.loss_sum, "finite_steps": self.finite_steps,
             "first_bad": self.first_bad}).items()}


def _per_trial(value, t: int):
    return value[t] if isinstance(value, list) else value


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


def _restore(checkpointer, state):
    """Newest usable checkpoint, or a fresh start: ``(state, meta)``."""
    restored = checkpointer.restore_newest_good(ckpt_lib.abstract_like(state))
    if restored is None:
        return state, {"epoch": 0, "epoch_step": 0, "loss_sum": 0.0, "finite_steps": 0, "best": None}
    return restored


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path,
                       vectorized_trials: int | None = None) -> dict | list[dict]:
    """Trains ``config`` in ``workdir`` (resuming if it holds a checkpoint); returns the last record.

    ``vectorized_trials=T`` trains trials ``0..T-1`` (keys ``trial_key(seed, t)``) as one
    compiled program over stacked parameters and optimizer states — the same numbers as
    T sequential runs. They share one checkpoint in ``workdir/checkpoints`` (the "best"
    one by the mean metric over trials) and log to ``workdir/trial_<t>/``; a list of
    records, one per trial, is returned. A record has ``preempted=True`` when a
    SIGTERM/SIGINT stopped the run after saving a checkpoint.
    """
    validate_config(config)
    wd = prepare_workdir(workdir)
    parallel.maybe_initialize_distributed()
    mesh = parallel.make_mesh()
    parallel.check_batch_divisible(config.train.batch_size, mesh)
    is_main = jax.process_index() == 0
    T = vectorized_trials

    from jaxseg import data  # imported here: the data layer brings TensorFlow
    from jaxseg.data.device_augment import make_device_augment

    source = data.get_source(config, jax.process_index(), jax.process_count())
    augment = make_device_augment(source.augment_config, config.seed)
    model = models.get_model(config.model, config.train.dtype)
    loss_fn = models.deep_supervision_loss(losses.build_loss(config.loss))  # identity for one head
    collection = metrics.MetricCollection(config.eval.metrics, config.eval.threshold,
                                          num_classes=config.model.num_classes)
    tx = build_optimizer(config.optimizer, total_steps=config.train.epochs * source.steps_per_epoch)

    if T is None:
        state = create_train_state(model, tx, trial_key(config.seed, config.train.trial), source.image_shape)
        train_step = make_train_step(model, tx, loss_fn, augment)
        eval_step = make_eval_step(model, loss_fn, collection)
        log_dirs = [wd]
    else:
        keys = jnp.stack([trial_key(config.seed, t) for t in range(T)])
        state = create_train_state(model, tx, keys, source.image_shape)
        trials_step = jax.vmap(make_train_step(model, tx, loss_fn), in_axes=(0, None, None))

        def train_step(state, batch, epoch):  # trials share the step counter: augment the batch once, not T times
            if augment is not None:
                batch = augment(batch, state.step[0])
            return trials_step(state, batch, epoch)
        eval_step = jax.vmap(make_eval_step(model, loss_fn, collection), in_axes=(0, None, 0, None))
        log_dirs = [prepare_workdir(safe_path(wd, f"trial_{t}")) for t in range(T)]
    state = parallel.put_replicated(state, mesh)
    train_step = jax.jit(train_step, donate_argnums=(0,))
    eval_step = jax.jit(eval_step, donate_argnums=(2,))

    checkpointer = ckpt_lib.Checkpointer(safe_path(wd, "checkpoints"))
    state, meta = _restore(checkpointer, state)
    start_epoch, skip, best = int(meta["epoch"]), int(meta["epoch_step"]), meta.get("best")
    if is_main and int(_host_float(state.step)):
        print(f"Resuming from {wd / 'checkpoints'} at step {int(_host_float(state.step))} "
              f"(epoch {start_epoch + 1}, step {skip} of {source.steps_per_epoch})", file=sys.stderr)
    logs, writers = [], []
    if is_main:
        for t, d in enumerate(log_dirs):
            trial_config = config.to_dict()
            if T is not None:
                trial_config["train"]["trial"] = t
            safe_path(d, "config.json").write_text(json.dumps(trial_config, indent=2, default=str))
            logs.append(MetricsLog(safe_path(d, "metrics.jsonl"), keep_through_epoch=start_epoch))
            writers.append(TensorBoardWriter(d))

    sharding = parallel.batch_sharding(mesh)
    metric_key = f"val/{config.eval.checkpoint_metric}"
    mode = checkpoint_mode(config)
    policy = config.train.nonfinite
    records: list[dict] = [{} for _ in log_dirs]

    def save(epoch_done: int, epoch_step: int, acc: _EpochAccumulator, improved: bool, recs: list[dict]):
        h = acc.host()
        checkpointer.save(int(_host_float(state.step)), state, {
            "epoch": epoch_done, "epoch_step": epoch_step, "loss_sum": h["loss_sum"],
            "finite_steps": h["finite_steps"], "best": best, "best_metric": metric_key,
            "metrics": recs[0] if T is None else recs}, best=improved)

    def check_finite(acc: _EpochAccumulator):
        bad = [b for b in np.atleast_1d(acc.host()["first_bad"]) if b >= 0]
        if bad and policy == "stop":
            checkpointer.wait()
            last = checkpointer.latest_step()
            where = f"the last good checkpoint is step {last} in {wd / 'checkpoints'}" if last is not None \
                else "no checkpoint was saved yet"
            raise NonFiniteError(
                f"non-finite loss or gradient at step {min(bad)} (the update was not applied); {where}. "
                "Lower the learning rate, check the data, or set --config.train.nonfinite=skip")

    def result(preempted_by=None):
        recs = [dict(r, preempted=True, signal=preempted_by) for r in records] if preempted_by else records
        return recs[0] if T is None else recs

    with PreemptionGuard() as guard:
        for epoch in range(start_epoch, config.train.epochs):
            k = jnp.asarray(epoch, jnp.int32)
            t0, wait = time.perf_counter(), 0.0
            acc = _EpochAccumulator(T, meta["loss_sum"], meta["finite_steps"]) if skip else _EpochAccumulator(T)
            bar = tqdm(total=source.steps_per_epoch, initial=skip, leave=False, dynamic_ncols=True,
                       desc=f"epoch {epoch + 1}/{config.train.epochs}",
                       disable=not is_main or not config.train.progress)
            batches = source.train_batches(epoch)
            for _ in range(skip):  # resumed mid-epoch: the same batches, already trained on
                next(batches)
            last_loss, out = None, {}
            for i in range(skip, source.steps_per_epoch):
                tw = time.perf_counter()
                batch = parallel.put_batch(next(batches), sharding)
                wait += time.perf_counter() - tw
                state, out = train_step(state, batch, k)
                acc.add(out)
                if last_loss is not None and i % config.train.log_every == 0:
                    loss_now = np.asarray(jax.device_get(last_loss))  # previous step: done already
                    bar.set_postfix(loss=f"{float(loss_now.mean()):.4f}")
                    check_finite(acc)
                last_loss = out["loss"]
                bar.update(1)
                if guard.requested and i + 1 < source.steps_per_epoch:  # at the epoch's end: finish it first
                    save(epoch, i + 1, acc, False, records)
                    checkpointer.wait()
                    bar.close()
                    print(f"saved step {int(_host_float(state.step))} to {wd / 'checkpoints'}; "
                          "run the same command to resume", file=sys.stderr)
                    return result(guard.signum)
            bar.close()
            skip = 0
            check_finite(acc)
            h = acc.host()
            train_time = time.perf_counter() - t0
            vals = evaluate(eval_step, state, source, collection, mesh, epoch, T)
            aux = {n: np.atleast_1d(np.asarray(jax.device_get(v))) for n, v in out.items()
                   if n not in ("loss", "finite", "step")}
            eval_time = time.perf_counter() - t0 - train_time
            for t, val in enumerate(vals):
                finite_steps = _per_trial(h["finite_steps"], t)
                records[t] = {"epoch": epoch + 1, "step": int(_host_float(state.step)),
                              "train/loss": _per_trial(h["loss_sum"], t) / max(finite_steps, 1),
                              **{f"train/{n}": float(v[min(t, v.size - 1)]) for n, v in aux.items()},
                              "train/nonfinite_steps": source.steps_per_epoch - finite_steps,
                              **val, "time/train_s": train_time,
                              "time/data_wait_fraction": wait / max(train_time, 1e-9),
                              "time/eval_s": eval_time}
            score = float(np.mean([r.get(metric_key, np.nan) for r in records]))
            improved = ckpt_lib.is_better(score, best, mode)
            if improved:
                best = score
            save(epoch + 1, 0, _EpochAccumulator(T), improved, records)
            if is_main:
                for log, tb, rec in zip(logs, writers, records):
                    log.write(rec)
                    tb.scalars(rec["step"], rec)
                for t, rec in enumerate(records):
                    prefix = "" if T is None else f"trial {t} "
                    tqdm.write(f"{prefix}epoch {epoch + 1}: train/loss={rec['train/loss']:.4f} " +
                               " ".join(f"{n}={v:.4f}" for n, v in vals[t].items()) +
                               f" ({train_time:.1f}s train, data wait "
                               f"{100 * rec['time/data_wait_fraction']:.1f}%)", file=sys.stderr)
            if guard.requested:
                checkpointer.wait()
                return result(guard.signum)
    checkpointer.wait()
    checkpointer.close()
    for tb in writers:
        tb.close()
    return result()
