"""Orbax checkpoints of a run: ``checkpoints/latest`` and ``checkpoints/best``.

A checkpoint is saved after every epoch under the number of completed epochs:
the train state (step, params, batch_stats, opt_state) plus a JSON ``meta``
record (epoch, best metric so far, the validation metrics). ``best`` holds one
checkpoint, replaced whenever ``config.eval.checkpoint_metric`` improves.
Orbax writes each checkpoint to a temporary folder and renames it when complete,
so a crash mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


def _manager(directory: Path, max_to_keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    return ocp.CheckpointManager(directory.absolute(), options=options)


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

    def latest_epoch(self) -> int | None:
        return self.latest.latest_step()

    def restore(self, abstract_state: Any, epoch: int | None = None, which: str = "latest"):
        """Returns ``(state, meta)`` of checkpoint ``epoch`` (default: newest), or None."""
        mngr = self.latest if which == "latest" else self.best
        epoch = mngr.latest_step() if epoch is None else epoch
        if epoch is None:
            return None
        restored = mngr.restore(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["meta"])

    def wait(self) -> None:
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) describing ``tree``, for restoring into it."""
    return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)
