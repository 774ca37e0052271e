"""radix_argsort against NumPy's stable argsort: random keys, many ties, every pass count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxseg.ops.radix_argsort import radix_argsort, radix_passes


def _check(keys):
    perm = np.asarray(jax.jit(radix_argsort)(jnp.asarray(keys)))
    expected = np.argsort(keys, axis=-1, kind="stable")
    np.testing.assert_array_equal(perm, expected)


def test_passes_cover_31_bits():
    assert radix_passes(65536) == (16, 2)  # one 256² image: two passes
    assert radix_passes(8 * 65536) == (19, 3)  # a batch of eight pooled
    assert radix_passes(2) == (1, 1)
    for n in [3, 100, 4096, 10**6, 2**27]:
        b, passes = radix_passes(n)
        assert 2 ** b >= n and passes * (32 - b) >= 31


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


def test_leading_dims_and_chunks(monkeypatch):
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 50, size=(2, 3, 257), dtype=np.int32)  # heavy ties
    for chunks in ["1", "2", "5"]:
        monkeypatch.setenv("JAXSEG_SORT_CHUNKS", chunks)
        _check(keys)


def test_rejects_non_int32():
    with pytest.raises(TypeError, match="int32"):
        radix_argsort(jnp.zeros((2, 3), jnp.float32))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=64))
def test_property_sorted_and_stable(values):
    _check(np.asarray(values, np.int32)[None])
