"""Shape checks of the public array functions (losses and metrics), at trace time.

Array shapes are static under ``jax.jit``, so these plain Python checks run once
per trace (no runtime cost) and behave the same jitted or not. A wrong shape
raises ``ValueError`` whose message names the function and every shape it got,
e.g. ``roc_auc: scores (4, 1) and labels (4,) must have the same shape (N, H, W, C)``,
instead of broadcasting silently into a plausible wrong value.

Usage (keyword names are the function's argument names, shown in the message; the
leading parameters are positional-only, so any keyword name is free)::

    check_nhwc("dice", logits=logits, labels=labels)           # same (N, H, W, C) shape
    check_same_shape("lovasz_hinge", "(N, H, W)", logits=z, labels=y)  # same shape, any rank
    check_batch("confusion_counts", valid, probs=probs)         # valid (N,) for probs (N, ...)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NHWC", "shape_of", "shape_error", "check_nhwc", "check_same_shape", "check_shape",
           "check_batch"]

NHWC = "(N, H, W, C)"


def shape_of(x: Any) -> tuple[int, ...]:
    """The static shape of an array, tracer, NumPy array, list or scalar."""
    return tuple(int(d) for d in np.shape(x))


def _describe(arrays: dict[str, Any]) -> str:
    parts = [f"{name} {shape_of(a)}" for name, a in arrays.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def shape_error(fn: str, requirement: str, /, **arrays) -> ValueError:
    """``ValueError("<fn>: <name> <shape> and <name> <shape> <requirement>")`` (to raise)."""
    return ValueError(f"{fn}: {_describe(arrays)} {requirement}")


def _given(arrays: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in arrays.items() if v is not None}


def check_same_shape(fn: str, layout: str, rank: int | None = None, /, **arrays) -> tuple[int, ...]:
    """The common shape of ``arrays`` (None entries skipped); ValueError unless all shapes are
    equal (and of ``rank`` dimensions when given). ``layout`` names the expected shape ('' for any)."""
    arrays = _given(arrays)
    shapes = [shape_of(a) for a in arrays.values()]
    if len(set(shapes)) > 1 or (rank is not None and len(shapes[0]) != rank):
        need = f"must have shape {layout}" if len(shapes) == 1 else f"must have the same shape {layout}".rstrip()
        raise shape_error(fn, need, **arrays)
    return shapes[0]


def check_nhwc(fn: str, /, **arrays) -> tuple[int, int, int, int]:
    """The common (N, H, W, C) shape of ``arrays``; ValueError naming every shape otherwise."""
    return check_same_shape(fn, NHWC, 4, **arrays)


def check_shape(fn: str, name: str, x, expected: tuple[int, ...], layout: str, /,
                **reference) -> None:
    """ValueError unless ``x`` has shape ``expected`` (``layout`` in words, e.g. '(N,)'),
    naming ``x``'s shape and the shapes of the ``reference`` arrays it was derived from."""
    if shape_of(x) != tuple(expected):
        ref = f" for {_describe(reference)}" if reference else ""
        raise ValueError(f"{fn}: {name} {shape_of(x)} must have shape {layout} = {tuple(expected)}{ref}")


def check_batch(fn: str, valid, /, **reference) -> None:
    """``valid`` (N,) marks real vs padded images of ``reference`` (N, ...); None passes."""
    if valid is None:
        return
    first = next(iter(reference.values()))
    check_shape(fn, "valid", valid, shape_of(first)[:1], "(N,)", **reference)
