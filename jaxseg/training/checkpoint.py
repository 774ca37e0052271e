"""Orbax checkpoints of a run: ``checkpoints/latest`` and ``checkpoints/best``.

A checkpoint is saved after every epoch (and when a run is preempted) under its
global step: the train state (step, params, batch_stats, opt_state) plus a JSON
``meta`` record (completed epochs, step inside the current epoch, running loss
sum, best metric so far, the last validation metrics). ``best`` holds one
checkpoint, replaced whenever ``config.eval.checkpoint_metric`` improves.
Orbax writes each checkpoint to a temporary folder and renames it when complete,
so a crash mid-save leaves the previous checkpoint intact.

Several processes: saving and restoring are collective — every process calls
``save``/``restore`` for the same step; orbax writes each array shard from the
process that holds it (a replicated array once, from process 0), process 0 writes
the metadata and ``meta`` and commits the folder after a barrier. The folder must
therefore be one every process sees (a shared filesystem across hosts).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxseg.errors import JaxsegError


class CheckpointError(JaxsegError, RuntimeError):
    """No checkpoint of a workdir can be restored."""


def _manager(directory: Path, max_to_keep: int | None = None, create: bool = True) -> ocp.CheckpointManager:
    """A manager of ``state`` (a pytree of arrays) + ``meta`` (JSON) items.

    Its multi-process barriers are named after the folder: ``latest`` and ``best`` save the same
    step at the same time, and orbax's barrier names (e.g. ``_async_write_complete.<step>``) would
    otherwise collide between the two managers' background threads.
    """
    multiprocessing = ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=f"jaxseg_{directory.name}")
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create, read_only=not create,
                                           multiprocessing_options=multiprocessing)
    return ocp.CheckpointManager(directory.absolute(), options=options, item_handlers={
        "state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()})


def open_read_only(directory: str | Path) -> ocp.CheckpointManager:
    """Opens ``checkpoints/latest`` or ``checkpoints/best`` for reading, writing nothing."""
    return _manager(Path(directory), create=False)


def state_metadata(mngr: ocp.CheckpointManager, step: int):
    """The state's tree of ``ArrayMetadata`` (shape, dtype) — no array is read."""
    md = mngr.item_metadata(step)["state"]
    return md.tree if hasattr(md, "tree") else md


def read_meta(mngr: ocp.CheckpointManager, step: int) -> dict:
    return dict(mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])


def read_state(mngr: ocp.CheckpointManager, step: int):
    """The state as nested dicts of arrays, without knowing the model — on this process's first device,
    whatever devices saved it (a run on several devices or processes is read by a 1-device predict)."""
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(fallback_sharding=here)))["state"]


def is_better(value: float, best: float | None, mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best


class Checkpointer:
    def __init__(self, directory: str | Path, keep: int = 2):
        self.directory = Path(directory)
        self.latest = _manager(self.directory / "latest", keep)
        self.best = _manager(self.directory / "best", 1)

    def save(self, epoch: int, state: Any, meta: dict, *, best: bool) -> None:
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self.latest.save(epoch, args=args)
        if best:
            self.best.save(epoch, args=args)

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def restore(self, abstract_state: Any, step: int | None = None, which: str = "latest"):
        """Returns ``(state, meta)`` of checkpoint ``step`` (default: newest), or None."""
        mngr = self.latest if which == "latest" else self.best
        step = mngr.latest_step() if step is None else step
        if step is None:
            return None
        restored = mngr.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["meta"])

    def restore_newest_good(self, abstract_state: Any):
        """The newest checkpoint that restores; a corrupt one is reported and skipped.

        Tries every step of ``latest`` from the newest down, then ``best``; returns
        ``(state, meta)`` or None when there is no checkpoint at all. Raises when
        checkpoints exist but none can be read.
        """
        candidates = [("latest", s) for s in sorted(self.latest.all_steps(), reverse=True)]
        candidates += [("best", s) for s in sorted(self.best.all_steps(), reverse=True)]
        errors = []
        for which, step in candidates:
            try:
                return self.restore(abstract_state, step, which)
            except Exception as e:  # noqa: BLE001 - any failure to read means unusable
                msg = f"checkpoint {self.directory / which / str(step)} is unreadable ({type(e).__name__}: {e})"
                errors.append(msg)
                print(f"warning: {msg}; trying an older one", file=sys.stderr)
        if errors:
            raise CheckpointError(f"no usable checkpoint in {self.directory}: every one failed to restore "
                                  f"(first: {errors[0]}); move the folder aside to start afresh, or use "
                                  "a new --workdir")
        return None

    def wait(self) -> None:
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) describing ``tree``, for restoring into it."""
    return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)
