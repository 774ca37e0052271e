"""Exact stable argsort of non-negative int32 keys along the last axis, from single-operand sorts.

Why: on XLA:CPU a sort of one int32 operand is fast (a plain integer sort, about
35 ms for 8×65,536 keys on 2 cores), while a key+index sort (``lax.sort`` with two
operands, which is what ``argsort`` is) takes the generic comparator path and is
about 6× slower (213 ms). The Lovász losses need exactly that argsort.

How: least-significant-digit radix sort in which every pass is one
single-operand sort. With ``b = ⌈log₂ n⌉`` bits for a position, each pass packs

    packed_i = digit(key_{π_i}) · 2^b + i        (as uint32)

where π is the order after the previous passes and ``digit`` takes the next
``d = 32 − b`` bits of the key. Sorting ``packed`` orders by the digit and, on
equal digits, by the previous position — so every pass is stable, and after
``⌈31 / d⌉`` passes (31 bits cover a non-negative int32) π sorts the keys
ascending, ties in the original order (Knuth, TAOCP vol. 3, §5.2.5). For rows
of 256² = 65,536 pixels that is two passes.

Rows are split into at most ``JAXSEG_SORT_CHUNKS`` (default: the CPU count)
independent sorts, which XLA:CPU's thunk runtime runs on different cores.
"""

from __future__ import annotations

import math
import os

import jax.numpy as jnp
from jax import lax

__all__ = ["radix_argsort", "radix_passes"]

_KEY_BITS = 31  # a non-negative int32


def radix_passes(n: int) -> tuple[int, int]:
    """(position bits b, passes) for rows of n keys; passes = 0 means too long to pack."""
    b = max(1, math.ceil(math.log2(max(n, 2))))
    d = 32 - b
    if d < 1:
        return b, 0
    return b, math.ceil(_KEY_BITS / d)


def _row_chunks(rows: int) -> int:
    wanted = int(os.environ.get("JAXSEG_SORT_CHUNKS", os.cpu_count() or 1))
    return max(1, min(rows, wanted))


def _sort_rows(packed):
    """Single-operand ascending sort of (R, n) uint32, split into independent row blocks."""
    chunks = _row_chunks(packed.shape[0])
    if chunks == 1:
        return lax.sort(packed, dimension=1)
    bounds = [round(i * packed.shape[0] / chunks) for i in range(chunks + 1)]
    return jnp.concatenate([lax.sort(packed[lo:hi], dimension=1)
                            for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo], axis=0)


def radix_argsort(keys):
    """Indices that sort ``keys`` (…, n) ascending along the last axis, stably.

    ``keys`` must be int32 and ≥ 0 (for example the bit patterns of non-negative
    float32, which order like the floats). Equal keys keep their original order.
    Returns int32 indices of the same shape.
    """
    if keys.dtype != jnp.int32:
        raise TypeError(f"radix_argsort needs int32 keys, got {keys.dtype}")
    shape = keys.shape
    n = shape[-1]
    b, passes = radix_passes(n)
    rows = keys.reshape(-1, n)
    iota = lax.broadcasted_iota(jnp.int32, rows.shape, 1)
    if passes == 0:  # 2^31 keys or more per row: fall back to the key+index sort
        _, perm = lax.sort((rows, iota), dimension=1, num_keys=1, is_stable=True)
        return perm.reshape(shape)
    d = 32 - b
    position = iota.astype(jnp.uint32)
    low_mask = jnp.uint32((1 << b) - 1)
    digit_mask = jnp.uint32((1 << d) - 1)
    perm = iota
    ukeys = rows.astype(jnp.uint32)
    for p in range(passes):
        current = ukeys if p == 0 else jnp.take_along_axis(ukeys, perm, axis=1)
        digit = (current >> jnp.uint32(p * d)) & digit_mask
        packed = (digit << jnp.uint32(b)) | position
        order = (_sort_rows(packed) & low_mask).astype(jnp.int32)
        perm = order if p == 0 else jnp.take_along_axis(perm, order, axis=1)
    return perm.reshape(shape)
