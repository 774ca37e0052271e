"""The epoch loop: ``train_and_evaluate(config, workdir)``.

The loop is data-parallel over one device mesh (``parallel``), evaluates after
every epoch (``evaluation``), checkpoints with orbax (``checkpoint``), and logs to
``metrics.jsonl`` and TensorBoard (``run_log``). ``train_and_evaluate`` reads as
its table of contents: set up, resume, then per epoch train, evaluate,
checkpoint, log.

Resuming: running again on a workdir with a checkpoint continues from it. The
data order of epoch k depends only on (seed, k), augmentation seeds on
(seed, k, step-in-epoch) and dropout keys on the global step, and a checkpoint
records the step inside its epoch and the running loss sum — so an interrupted
and resumed run ends with the same numbers as an uninterrupted one.

Epochs are counted from 0 inside the loop (loss schedules see k = 0, 1, ...);
``metrics.jsonl``'s ``epoch`` is the number of completed epochs (1 after the first).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxseg import losses, metrics, models
from jaxseg.errors import ConfigError
from jaxseg.training import checkpoint as ckpt_lib
from jaxseg.training import crossval, parallel
from jaxseg.training.config_check import check_resumable, validate_config
from jaxseg.training.evaluation import checkpoint_mode, evaluate
from jaxseg.training.guards import NonFiniteError, PreemptionGuard
from jaxseg.training.optim import build_optimizer, freeze_encoder
from jaxseg.training.run_log import MetricsLog, TensorBoardWriter, tqdm
from jaxseg.training.steps import (create_train_state, make_eval_step, make_train_step, trial_key,
                                   with_pretrained_encoder)
from jaxseg.training.workdir import prepare_workdir, safe_path

FRESH_META = {"epoch": 0, "epoch_step": 0, "loss_sum": 0.0, "finite_steps": 0, "best": None}


def _host_float(x) -> float:
    return float(parallel.to_host(x).reshape(-1)[0])


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
        return {k: v.tolist() for k, v in parallel.to_host(
            {"loss_sum": self.loss_sum, "finite_steps": self.finite_steps,
             "first_bad": self.first_bad}).items()}


def _per_trial(value, t: int):
    return value[t] if isinstance(value, list) else value


@dataclasses.dataclass
class Run:
    """What one training run holds from set-up to its last epoch."""

    config: ml_collections.ConfigDict
    workdir: Path
    trials: int | None  # T for vectorised trials, None for one run
    mesh: Any
    source: Any
    collection: metrics.MetricCollection
    state: Any
    train_step: Callable
    eval_step: Callable
    loss_fn: Callable  # loss_fn(logits, batch, epoch) -> (loss, aux), in the model's mode
    checkpointer: ckpt_lib.Checkpointer
    log_dirs: list[Path]
    is_main: bool
    best: float | None = None
    records: list[dict] = dataclasses.field(default_factory=list)
    logs: list[MetricsLog] = dataclasses.field(default_factory=list)
    writers: list[TensorBoardWriter] = dataclasses.field(default_factory=list)

    @property
    def metric_key(self) -> str:
        return f"val/{self.config.eval.checkpoint_metric}"

    @property
    def step(self) -> int:
        return int(_host_float(self.state.step))

    def result(self, preempted: bool = False, signum: int | None = None) -> dict | list[dict]:
        """The last record(s); ``preempted`` marks a run stopped by a signal (``signum``: the one this
        process received — None on the processes of a multi-process run that received none)."""
        recs = [dict(r, preempted=True, signal=signum) for r in self.records] if preempted else self.records
        return recs[0] if self.trials is None else recs


def _compiled_steps(model, tx, loss_fn, collection, augment, trials: int | None, mode: str):
    """The jitted ``train_step(state, batch, epoch, stop_flags)`` and ``eval_step(state, batch, acc, epoch)``.

    ``stop_flags`` (``parallel.process_flags``: each process's "a signal arrived" on its devices) comes
    back as ``out['stop']``, their OR — the same on every process, so all stop at the same step.
    """
    if trials is None:
        train_step = make_train_step(model, tx, loss_fn, augment)
        eval_step = make_eval_step(model, loss_fn, collection, mode)
    else:
        trials_step = jax.vmap(make_train_step(model, tx, loss_fn), in_axes=(0, None, None))

        def train_step(state, batch, epoch):  # trials share the step counter: augment the batch once, not T times
            if augment is not None:
                batch = augment(batch, state.step[0])
            return trials_step(state, batch, epoch)
        eval_step = jax.vmap(make_eval_step(model, loss_fn, collection, mode), in_axes=(0, None, 0, None))

    def train_step_agreeing(state, batch, epoch, stop_flags):
        state, out = train_step(state, batch, epoch)
        return state, dict(out, stop=jnp.any(stop_flags))
    return jax.jit(train_step_agreeing, donate_argnums=(0,)), jax.jit(eval_step, donate_argnums=(2,))


def set_up(config: ml_collections.ConfigDict, workdir: str | Path, trials: int | None) -> Run:
    """Validates the config, prepares the workdir and mesh, builds data, model, steps and initial state."""
    validate_config(config)
    wd = prepare_workdir(workdir)
    parallel.maybe_initialize_distributed()
    mesh = parallel.make_mesh()
    parallel.check_batch_divisible(config.train.batch_size, mesh)

    log_dirs = [wd] if trials is None else [wd / f"trial_{t}" for t in range(trials)]
    if (wd / "checkpoints").is_dir():  # a changed config is refused before any data is read
        check_resumable(log_dirs[0] / "config.json", _logged_config(config, trials, 0))

    from jaxseg import data  # imported here: the data layer brings TensorFlow, kept off the GPUs
    from jaxseg.data.augment.device import make_device_augment
    from jaxseg.data.tf_devices import hide_accelerators_from_tensorflow

    hide_accelerators_from_tensorflow()  # after the config checks: a mistake is reported without TF's 4 s

    source = data.get_source(config, jax.process_index(), jax.process_count())
    if source.mask_channels != config.model.num_classes:  # before anything compiles
        raise ConfigError(f"the {config.data.name} data label {source.mask_channels} class channel(s) but "
                          f"config.model.num_classes={config.model.num_classes}; set num_classes (and "
                          "config.model.mode) to match the data")
    augment = make_device_augment(source.augment_config, config.seed)
    model = models.get_model(config.model, config.train.dtype)
    mode = models.output_mode(config.model)
    loss_fn = models.deep_supervision_loss(losses.build_loss(config.loss, mode))  # identity for one head
    collection = metrics.MetricCollection(config.eval.metrics, config.eval.threshold,
                                          num_classes=config.model.num_classes, mode=mode)
    tx = build_optimizer(config.optimizer, total_steps=config.train.epochs * source.steps_per_epoch)
    tx = freeze_encoder(tx, int(config.model.get("freeze_encoder_epochs") or 0) * source.steps_per_epoch)
    if trials is None:
        keys = trial_key(config.seed, config.train.trial)
    else:
        keys = jnp.stack([trial_key(config.seed, t) for t in range(trials)])
        log_dirs = [prepare_workdir(safe_path(wd, d.name)) for d in log_dirs]
    try:  # the model checks its options against the input when it first sees one
        state = create_train_state(model, tx, keys, source.image_shape)
    except ValueError as e:
        raise ConfigError(f"config.model: {e}") from None
    if config.model.get("encoder_weights"):
        state = with_pretrained_encoder(state, config.model.encoder, config.model.encoder_weights, trials)
    state = parallel.put_replicated(state, mesh)
    train_step, eval_step = _compiled_steps(model, tx, loss_fn, collection, augment, trials, mode)
    return Run(config=config, workdir=wd, trials=trials, mesh=mesh, source=source, collection=collection,
               state=state, train_step=train_step, eval_step=eval_step, loss_fn=loss_fn,
               checkpointer=ckpt_lib.Checkpointer(safe_path(wd, "checkpoints")), log_dirs=log_dirs,
               is_main=parallel.is_main_process(), records=[{} for _ in log_dirs])


def resume(run: Run) -> dict:
    """Restores the newest usable checkpoint into ``run`` (or keeps the fresh state); returns its meta."""
    restored = run.checkpointer.restore_newest_good(ckpt_lib.abstract_like(run.state))
    meta = dict(FRESH_META) if restored is None else restored[1]
    if restored is not None:
        run.state = restored[0]
    run.best = meta.get("best")
    if run.is_main and run.step:
        print(f"Resuming from {run.workdir / 'checkpoints'} at step {run.step} "
              f"(epoch {int(meta['epoch']) + 1}, step {int(meta['epoch_step'])} of "
              f"{run.source.steps_per_epoch})", file=sys.stderr)
    return meta


def _logged_config(config: ml_collections.ConfigDict, trials: int | None, t: int) -> dict:
    """The config written to log dir ``t`` (a vectorised trial records its own trial index)."""
    logged = config.to_dict()
    if trials is not None:
        logged["train"]["trial"] = t
    return logged


def open_logs(run: Run, start_epoch: int) -> None:
    """Writes each log dir's ``config.json``; opens ``metrics.jsonl`` and the TensorBoard events, both cut
    to the restored checkpoint (records of epochs a crash lost are dropped, so curves never double)."""
    if not run.is_main:
        return
    for t, d in enumerate(run.log_dirs):
        logged = _logged_config(run.config, run.trials, t)
        safe_path(d, "config.json").write_text(json.dumps(logged, indent=2, default=str))
        run.logs.append(MetricsLog(safe_path(d, "metrics.jsonl"), keep_through_epoch=start_epoch))
        run.writers.append(TensorBoardWriter(d, keep_through_step=run.step))


def save(run: Run, epoch_done: int, epoch_step: int, acc: _EpochAccumulator, improved: bool) -> None:
    h = acc.host()
    run.checkpointer.save(run.step, run.state, {
        "epoch": epoch_done, "epoch_step": epoch_step, "loss_sum": h["loss_sum"],
        "finite_steps": h["finite_steps"], "best": run.best, "best_metric": run.metric_key,
        "metrics": run.records[0] if run.trials is None else run.records}, best=improved)


def check_finite(run: Run, acc: _EpochAccumulator) -> None:
    """Raises ``NonFiniteError`` (policy 'stop') if a step of this epoch had a non-finite loss or gradient."""
    bad = [b for b in np.atleast_1d(acc.host()["first_bad"]) if b >= 0]
    if bad and run.config.train.nonfinite == "stop":
        run.checkpointer.wait()
        last = run.checkpointer.latest_step()
        where = f"the last good checkpoint is step {last} in {run.workdir / 'checkpoints'}" if last is not None \
            else "no checkpoint was saved yet"
        raise NonFiniteError(
            f"non-finite loss or gradient at step {min(bad)} (the update was not applied); {where}. "
            "Lower the learning rate, check the data, or set --config.train.nonfinite=skip")


def train_epoch(run: Run, epoch: int, skip: int, acc: _EpochAccumulator, guard: PreemptionGuard) -> dict | None:
    """Trains epoch ``epoch`` from its step ``skip``; returns timing and the last step's outputs, or
    None when a signal stopped the run mid-epoch (after saving a checkpoint at that step).

    One process stops after the step during which the signal arrived. With several, a signal
    received by any of them rides into the next step as its flag (``parallel.process_flags``); each
    process reads that step's ``out['stop']`` (the OR over processes) one step later, so all of them
    save the same step and exit — no extra collective, no host sync beyond one step behind.
    """
    several = jax.process_count() > 1
    cfg, steps = run.config, run.source.steps_per_epoch
    k = jnp.asarray(epoch, jnp.int32)
    sharding = parallel.batch_sharding(run.mesh)
    t0, wait = time.perf_counter(), 0.0
    bar = tqdm(total=steps, initial=skip, leave=False, dynamic_ncols=True, desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
               disable=not run.is_main or not cfg.train.progress)
    batches = run.source.train_batches(epoch, start_step=skip)  # resumed mid-epoch: from step `skip` on
    last_loss, out, agreed = None, {}, None
    for i in range(skip, steps):
        tw = time.perf_counter()
        batch = parallel.put_batch(next(batches), sharding)
        wait += time.perf_counter() - tw
        run.state, out = run.train_step(run.state, batch, k, parallel.process_flags(guard.requested, run.mesh))
        stop_previous, agreed = agreed, out.pop("stop")
        acc.add(out)
        if last_loss is not None and i % cfg.train.log_every == 0:
            loss_now = np.asarray(jax.device_get(last_loss))  # previous step: done already
            bar.set_postfix(loss=f"{float(loss_now.mean()):.4f}")
            check_finite(run, acc)
        last_loss = out["loss"]
        bar.update(1)
        stop = bool(stop_previous) if several and stop_previous is not None else guard.requested and not several
        if stop and i + 1 < steps:  # at the epoch's end: finish it first
            save(run, epoch, i + 1, acc, False)
            run.checkpointer.wait()
            bar.close()
            if run.is_main:
                print(f"saved step {run.step} to {run.workdir / 'checkpoints'}; run the same command to resume",
                      file=sys.stderr)
            return None
    bar.close()
    check_finite(run, acc)
    return {"train_time": time.perf_counter() - t0, "wait": wait, "out": out}


def epoch_records(run: Run, epoch: int, acc: _EpochAccumulator, trained: dict, vals: list[dict],
                  eval_time: float) -> list[dict]:
    """One ``metrics.jsonl`` record per trial for a finished, evaluated epoch."""
    h = acc.host()
    train_time = trained["train_time"]
    aux = {n: np.atleast_1d(v) for n, v in parallel.to_host(trained["out"]).items()
           if n not in ("loss", "finite", "step")}
    records = []
    for t, val in enumerate(vals):
        finite_steps = _per_trial(h["finite_steps"], t)
        records.append({"epoch": epoch + 1, "step": run.step,
                        "train/loss": _per_trial(h["loss_sum"], t) / max(finite_steps, 1),
                        **{f"train/{n}": float(v[min(t, v.size - 1)]) for n, v in aux.items()},
                        "train/nonfinite_steps": run.source.steps_per_epoch - finite_steps,
                        **val, "time/train_s": train_time,
                        "time/data_wait_fraction": trained["wait"] / max(train_time, 1e-9),
                        "time/eval_s": eval_time})
    return records


def checkpoint_epoch(run: Run, epoch: int) -> None:
    """Saves the finished epoch; also as ``best`` when the (trial-mean) checkpoint metric improved."""
    score = float(np.mean([r.get(run.metric_key, np.nan) for r in run.records]))
    improved = ckpt_lib.is_better(score, run.best, checkpoint_mode(run.config))
    if improved:
        run.best = score
    save(run, epoch + 1, 0, _EpochAccumulator(run.trials), improved)


def log_epoch(run: Run, epoch: int, vals: list[dict]) -> None:
    if not run.is_main:
        return
    for log, tb, rec in zip(run.logs, run.writers, run.records):
        log.write(rec)
        tb.scalars(rec["step"], rec)
    for t, rec in enumerate(run.records):
        prefix = "" if run.trials is None else f"trial {t} "
        tqdm.write(f"{prefix}epoch {epoch + 1}: train/loss={rec['train/loss']:.4f} " +
                   " ".join(f"{n}={v:.4f}" for n, v in vals[t].items()) +
                   f" ({rec['time/train_s']:.1f}s train, data wait "
                   f"{100 * rec['time/data_wait_fraction']:.1f}%)", file=sys.stderr)


def close(run: Run) -> None:
    run.checkpointer.wait()
    run.checkpointer.close()
    for tb in run.writers:
        tb.close()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path,
                       vectorized_trials: int | None = None) -> dict | list[dict]:
    """Trains ``config`` in ``workdir`` (resuming if it holds a checkpoint); returns the last record.

    ``vectorized_trials=T`` trains trials ``0..T-1`` (keys ``trial_key(seed, t)``) as one
    compiled program over stacked parameters and optimizer states — the same numbers as
    T sequential runs. They share one checkpoint in ``workdir/checkpoints`` (the "best"
    one by the mean metric over trials) and log to ``workdir/trial_<t>/``; a list of
    records, one per trial, is returned. A record has ``preempted=True`` when a
    SIGTERM/SIGINT stopped the run after saving a checkpoint — in a multi-process run a
    signal to any process stops all of them at the same step (``train_epoch``).
    Every process returns the same records; only process 0 writes logs.
    """
    run = set_up(config, workdir, vectorized_trials)
    meta = resume(run)
    start_epoch, skip = int(meta["epoch"]), int(meta["epoch_step"])
    open_logs(run, start_epoch)
    with PreemptionGuard() as guard:
        for epoch in range(start_epoch, config.train.epochs):
            acc = _EpochAccumulator(run.trials, meta["loss_sum"], meta["finite_steps"]) if skip \
                else _EpochAccumulator(run.trials)
            trained = train_epoch(run, epoch, skip, acc, guard)
            if trained is None:
                close(run)
                return run.result(True, guard.signum)
            skip = 0
            t_eval = time.perf_counter()
            vals, stats = evaluate(run.eval_step, run.state, run.source, run.collection, run.mesh, epoch,
                                   run.trials)
            if epoch + 1 == config.train.epochs and run.is_main:  # the final model's validation statistics
                for d, st in zip(run.log_dirs, stats):
                    crossval.save_statistics(d, st)
            run.records = epoch_records(run, epoch, acc, trained, vals, time.perf_counter() - t_eval)
            checkpoint_epoch(run, epoch)
            log_epoch(run, epoch, vals)
            if parallel.any_process(guard.requested, run.mesh):  # every process stops after this epoch
                close(run)
                return run.result(True, guard.signum)
    close(run)
    return run.result()
