"""radix_argsort / sort_by_key against NumPy's stable argsort: random keys, many ties, the full key range.

Both implementations are checked on every input: the XLA uint64 sort and the host
radix sort (NumPy counting sorts through ``jax.pure_callback``), plus the dispatch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxseg.ops import radix_argsort as R
from jaxseg.ops.radix_argsort import radix_argsort, sort_by_key


def _check(keys):
    expected = np.argsort(keys, axis=-1, kind="stable")
    np.testing.assert_array_equal(np.asarray(jax.jit(radix_argsort)(jnp.asarray(keys))), expected)
    iota = np.broadcast_to(np.arange(keys.shape[-1], dtype=np.int32), keys.shape)
    for sort in (sort_by_key, R.sort_by_key_xla, R._host_sort):
        sorted_keys, order = jax.jit(sort)(jnp.asarray(keys), jnp.asarray(iota))
        np.testing.assert_array_equal(np.asarray(order), expected)
        np.testing.assert_array_equal(np.asarray(sorted_keys), np.take_along_axis(keys, expected, axis=-1))


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 70000])
def test_float_bit_keys_match_numpy(n):
    rng = np.random.default_rng(n)
    values = np.abs(rng.normal(size=(3, n))).astype(np.float32) * 10
    values[:, ::5] = 0.0  # a block of ties
    keys = values.view(np.int32)
    _check(keys)


def test_full_int32_range_and_duplicates():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 2**31 - 1, size=(4, 5000), dtype=np.int64).astype(np.int32)
    keys[:, :100] = 2**31 - 1
    keys[:, 100:200] = 0
    keys[:, 200:2000] = keys[:, 2000:3800]  # many duplicates
    _check(keys)


def test_leading_dims_and_heavy_ties():
    rng = np.random.default_rng(2)
    _check(rng.integers(0, 50, size=(2, 3, 257), dtype=np.int32))


@pytest.mark.parametrize("sort", [R.sort_by_key_xla, R._host_sort])
def test_positions_travel_with_keys(sort):
    """Positions (e.g. indices before a compaction, increasing) come back in key order, ties in input order."""
    keys = np.asarray([[5, 3, 5, 3, 0]], np.int32)
    positions = np.asarray([[2, 7, 10, 42, 2**31 - 1]], np.int32)
    sorted_keys, order = jax.jit(sort)(jnp.asarray(keys), jnp.asarray(positions))
    np.testing.assert_array_equal(np.asarray(sorted_keys), [[0, 3, 3, 5, 5]])
    np.testing.assert_array_equal(np.asarray(order), [[2**31 - 1, 7, 42, 2, 10]])


def test_dispatch_and_switch(monkeypatch):
    """Long CPU rows go to the host radix sort unless JAXSEG_CPU_SORT=xla; short rows to XLA."""
    long_row = jnp.zeros((1, R.HOST_MIN), jnp.int32)
    # lowered for the CPU whatever the default backend (a fresh trace each time: the variable is read then)
    text = lambda x: jax.jit(lambda k: radix_argsort(k)).trace(x).lower(lowering_platforms=("cpu",)).as_text()
    assert "callback" in text(long_row) and "callback" not in text(long_row[:, :100])
    monkeypatch.setenv("JAXSEG_CPU_SORT", "xla")
    assert "callback" not in text(long_row)
    _check(np.random.default_rng(3).integers(0, 2**31 - 1, size=(2, R.HOST_MIN + 5), dtype=np.int64).astype(np.int32))


def test_vmap_and_empty():
    keys = np.random.default_rng(4).integers(0, 9, size=(3, 2, 40), dtype=np.int32)
    for sort in (R.sort_by_key_xla, R._host_sort):
        iota = jnp.broadcast_to(jnp.arange(40, dtype=jnp.int32), keys.shape)
        order = jax.jit(jax.vmap(sort))(jnp.asarray(keys), iota)[1]
        np.testing.assert_array_equal(np.asarray(order), np.argsort(keys, axis=-1, kind="stable"))
    assert radix_argsort(jnp.zeros((2, 0), jnp.int32)).shape == (2, 0)


def test_works_without_and_with_global_x64():
    keys = np.asarray([[3, 1, 2, 1]], np.int32)
    assert not jax.config.jax_enable_x64
    out = radix_argsort(jnp.asarray(keys))  # eager, 32-bit mode: int32 in, int32 out
    assert out.dtype == jnp.int32 and not jax.config.jax_enable_x64
    with jax.enable_x64(True):
        np.testing.assert_array_equal(np.asarray(jax.jit(radix_argsort)(jnp.asarray(keys))), [[1, 3, 2, 0]])
    np.testing.assert_array_equal(np.asarray(out), [[1, 3, 2, 0]])


def test_rejects_non_int32():
    with pytest.raises(TypeError, match="int32"):
        radix_argsort(jnp.zeros((2, 3), jnp.float32))
    with pytest.raises(TypeError, match="positions"):
        sort_by_key(jnp.zeros((2, 3), jnp.int32), jnp.zeros((2, 4), jnp.int32))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=64))
def test_property_sorted_and_stable(values):
    _check(np.asarray(values, np.int32)[None])
