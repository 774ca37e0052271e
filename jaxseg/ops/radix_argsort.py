"""Exact stable sort of non-negative int32 keys along the last axis, carrying positions: the Lovász sort.

``sort_by_key(keys, positions)`` returns the keys sorted ascending and the
positions in that order; equal keys keep their input order. ``radix_argsort(keys)``
is the stable argsort (positions 0..n−1). Two implementations, both exact:

* XLA (every platform): a key k < 2³¹ and its position i < 2³¹ pack into one
  uint64, ``k·2³² + i``, and one single-operand sort orders by key and, on equal
  keys, by position. A single-operand integer sort is XLA:CPU's fast path (a
  key+index sort takes the generic comparator and is several times slower); the
  uint64 arithmetic is traced inside ``jax.enable_x64(True)``, inputs and outputs
  are int32, so callers need no 64-bit mode. Ties follow the position values, so
  positions must increase along the axis (the default 0..n−1 does; so do the
  indices of a stable compaction) for ties to keep their input order.
* Host radix sort (CPU, rows of at least ``HOST_MIN`` keys): a least-significant-
  digit radix sort with two 16-bit digits (Knuth, TAOCP vol. 3, §5.2.5), each
  pass NumPy's stable argsort of uint16 — itself a radix sort, O(n) — run row by
  row through ``jax.pure_callback`` (the callback takes the GIL while it runs).
  On the 2-core EPYC of bench/RESULTS.md it orders 8×65,536 keys in ~5 ms where
  XLA's comparison sort takes ~18–22 ms. Exact like the XLA path, ties in input
  order. ``JAXSEG_CPU_SORT=xla`` turns it off (e.g. for ``jax.export``, which
  cannot serialise a host callback); it is read when a function is traced, so set
  it before a jitted function's first call.

Sorting is not differentiable here (integer keys); the Lovász losses give their
own derivative.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["HOST_MIN", "radix_argsort", "sort_by_key", "sort_by_key_xla"]

HOST_MIN = 2048  # shorter rows: XLA's sort (there the callback's fixed ~0.1 ms is most of the time)


def _check(keys, positions, iota: bool = True):
    if keys.dtype != jnp.int32:
        raise TypeError(f"radix_argsort needs int32 keys, got {keys.dtype}")
    if positions is None:
        return lax.broadcasted_iota(jnp.int32, keys.shape, keys.ndim - 1) if iota else None
    if positions.dtype != jnp.int32 or positions.shape != keys.shape:
        raise TypeError(f"positions must be int32 of shape {keys.shape}, got {positions.dtype}{positions.shape}")
    return positions


def sort_by_key_xla(keys, positions=None):
    """``sort_by_key`` as one uint64 sort in XLA (any platform, any row length)."""
    positions = _check(keys, positions)
    axis = keys.ndim - 1
    with jax.enable_x64(True):
        u64 = np.dtype(np.uint64)
        packed = lax.shift_left(lax.convert_element_type(keys, u64), np.uint64(32)) | \
            lax.convert_element_type(lax.convert_element_type(positions, np.uint32), u64)
        # the packed values are unique, so is_stable changes no result; XLA:CPU's stable sort is the faster one
        packed = lax.sort(packed, dimension=axis, is_stable=True)
        sorted_keys = lax.convert_element_type(lax.shift_right_logical(packed, np.uint64(32)), np.int32)
        order = lax.convert_element_type(packed & np.uint64(0xFFFFFFFF), np.int32)
    return sorted_keys, order


def _host_radix_order(keys):
    """NumPy: the stable argsort (int32, per row) from two counting-sort passes over 16-bit digits.

    Row by row, so the temporaries stay small (whole-array temporaries of a few MB are
    fresh pages on every call, and page faults cost more than the sort on a VM).
    """
    keys = np.asarray(keys)
    shape = keys.shape
    k = np.ascontiguousarray(keys.reshape(-1, shape[-1]), dtype=np.int32)
    halves = k.view(np.uint16).reshape(k.shape + (2,))  # the low and high 16 bits of each key
    low, high = (0, 1) if np.little_endian else (1, 0)
    out = np.empty(k.shape, np.int32)
    for row, digits in zip(out, halves):
        order = np.argsort(digits[:, low], kind="stable")  # NumPy's radix sort for 16-bit keys
        row[:] = order.take(np.argsort(digits[:, high].take(order), kind="stable"))  # stable: ties keep the low order
    return out.reshape(shape)


def _host_sort(keys, positions=None):
    """``sort_by_key`` by the host radix sort (CPU only: a ``jax.pure_callback``)."""
    positions = _check(keys, positions, iota=False)
    order = jax.pure_callback(_host_radix_order, jax.ShapeDtypeStruct(keys.shape, jnp.int32), keys,
                              vmap_method="expand_dims")
    take = lambda a: jnp.take_along_axis(a, order, axis=-1, mode="promise_in_bounds")
    return take(keys), (order if positions is None else take(positions))


def _host_sort_enabled(n: int) -> bool:
    return n >= HOST_MIN and os.environ.get("JAXSEG_CPU_SORT", "").lower() != "xla"


def sort_by_key(keys, positions=None):
    """(sorted keys, positions in that order) along the last axis; ties keep their input order.

    ``keys``: int32 ≥ 0, shape (…, n). ``positions``: int32 ≥ 0 of the same shape,
    increasing along the axis, default 0..n−1 (then the second output is the
    stable argsort). Negative keys are not checked and give a wrong order.
    """
    positions = _check(keys, positions, iota=False)
    if keys.size == 0 or not _host_sort_enabled(keys.shape[-1]):
        return sort_by_key_xla(keys, positions)
    return lax.platform_dependent(keys, positions, cpu=_host_sort, default=sort_by_key_xla)


def radix_argsort(keys):
    """Indices that sort ``keys`` (…, n) ascending along the last axis, stably.

    ``keys`` must be int32 and ≥ 0 (for example the bit patterns of non-negative
    float32, which order like the floats). Equal keys keep their original order.
    Returns int32 indices of the same shape.
    """
    return sort_by_key(keys)[1]
