"""Exact EDT (jaxseg.ops.edt) against scipy.ndimage.distance_transform_edt."""

import jax
import numpy as np
import pytest
from scipy import ndimage

from jaxseg.ops import euclidean_distance_transform as edt


def _scipy(mask, spacing=(1.0, 1.0)):
    flat = mask.reshape((-1,) + mask.shape[-2:])
    return np.stack([ndimage.distance_transform_edt(m, sampling=spacing) for m in flat]).reshape(mask.shape)


@pytest.mark.parametrize("shape,spacing,p", [
    ((2, 16, 16), (1.0, 1.0), 0.7),   # random
    ((3, 7, 13), (0.5, 2.0), 0.8),    # wide, anisotropic
    ((2, 13, 7), (1.5, 0.7), 0.9),    # tall, anisotropic
    ((2, 3, 5, 9), (1.0, 1.0), 0.95),  # two batch axes, sparse background
])
def test_matches_scipy_random(shape, spacing, p):
    mask = np.random.default_rng(0).random(shape) < p
    np.testing.assert_allclose(edt(mask, spacing), _scipy(mask, spacing), rtol=1e-6, atol=1e-5)


def test_one_pixel_and_empty_and_full():
    one = np.ones((2, 9, 12), bool)
    one[0, 4, 7] = False   # one background pixel: distance to it everywhere
    one[1] = False         # empty foreground: zeros
    out = np.asarray(edt(one))
    np.testing.assert_allclose(out, _scipy(one), rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == one.shape
    full = np.ones((1, 9, 12), bool)
    np.testing.assert_allclose(edt(full, spacing=(2.0, 1.0)), np.full(full.shape, np.hypot(18.0, 12.0)), rtol=1e-6)
    np.testing.assert_allclose(edt(full, fill=-1.0), -np.ones(full.shape))


def test_jit_vmap_chunked_agree():
    mask = np.random.default_rng(1).random((3, 11, 10)) < 0.8
    ref = _scipy(mask)
    np.testing.assert_allclose(jax.jit(edt)(mask.astype(np.float32)), ref, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(jax.vmap(lambda m: edt(m, chunk_elems=7))(mask), ref, rtol=1e-6, atol=1e-5)


# --- the linear-time row pass (Felzenszwalb–Huttenlocher envelope) -------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxseg.ops import edt as edt_module  # noqa: E402

ROW_PASSES = ("envelope", "brute")


def _scipy_filled(mask, spacing):
    """scipy's EDT, with the image diagonal (jaxseg's default fill) on images that have no background pixel."""
    ref = _scipy(mask, spacing)
    h, w = mask.shape[-2:]
    full = mask.reshape((-1, h * w)).all(axis=1).reshape(mask.shape[:-2])
    ref[full] = np.hypot(h * spacing[0], w * spacing[1])
    return ref


@pytest.mark.parametrize("row_pass", ROW_PASSES)
@pytest.mark.parametrize("shape,spacing,p", [
    ((2, 16, 16), (1.0, 1.0), 0.7),
    ((3, 7, 13), (0.5, 2.0), 0.8),
    ((2, 13, 7), (1.5, 0.7), 0.9),
    ((2, 3, 5, 9), (1.0, 1.0), 0.95),
    ((1, 40, 33), (0.3, 1.7), 0.97),   # long gaps between background pixels: many pops per step
])
def test_each_row_pass_matches_scipy(shape, spacing, p, row_pass):
    mask = np.random.default_rng(3).random(shape) < p
    out = jax.jit(lambda m: edt(m, spacing, row_pass=row_pass))(mask)
    np.testing.assert_allclose(out, _scipy_filled(mask, spacing), rtol=1e-6, atol=1e-5)


@settings(max_examples=12, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), p=st.floats(0.0, 1.0),
       sh=st.sampled_from([1.0, 0.5, 1.7]), sw=st.sampled_from([1.0, 0.3, 2.5]),
       row_pass=st.sampled_from(ROW_PASSES), jit=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_property_random_masks_of_odd_shapes(h, w, p, sh, sw, row_pass, jit, seed):
    """1×1, 1×W, H×1, non-square, anisotropic; jitted and not; images without background get the fill."""
    mask = np.random.default_rng(seed).random((2, h, w)) < p
    fn = lambda m: edt(m, (sh, sw), row_pass=row_pass)  # noqa: E731
    out = np.asarray(jax.jit(fn)(mask) if jit else fn(mask))
    assert out.dtype == np.float32 and out.shape == mask.shape
    np.testing.assert_allclose(out, _scipy_filled(mask, (sh, sw)), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("row_pass", ("auto",) + ROW_PASSES)
def test_all_foreground_and_all_background(row_pass):
    full = np.ones((2, 5, 8), bool)
    np.testing.assert_allclose(edt(full, (1.0, 2.0), row_pass=row_pass), np.full(full.shape, np.hypot(5.0, 16.0)),
                               rtol=1e-6)
    np.testing.assert_allclose(edt(full, fill=-3.0, row_pass=row_pass), np.full(full.shape, -3.0))
    np.testing.assert_array_equal(edt(np.zeros((2, 5, 8), bool), row_pass=row_pass), np.zeros((2, 5, 8)))


@settings(max_examples=15, deadline=None)
@given(b=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 40), spacing=st.sampled_from([1.0, 0.7, 3.0]),
       p_sentinel=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_envelope_equals_brute_force_on_random_g2(b, h, w, spacing, p_sentinel, seed):
    """The linear-time row pass against the O(W²) one on arbitrary g² ≥ 0, sentinel (no background) included."""
    rng = np.random.default_rng(seed)
    sentinel = 4.0 * (w * spacing) ** 2 + 1.0
    g2 = rng.integers(0, 30, (b, h, w)).astype(np.float32) ** 2 * np.float32(rng.choice([1.0, 0.49]))
    g2[rng.random(g2.shape) < p_sentinel] = sentinel
    g2[0, 0] = sentinel  # a row with no background at all
    g2 = jnp.asarray(g2)
    fast = np.asarray(jax.jit(edt_module._row_envelope_fh, static_argnums=1)(g2, spacing))
    slow = np.asarray(edt_module._row_envelope_brute(g2, spacing, 1 << 20))
    np.testing.assert_allclose(fast, slow, rtol=1e-6)
    assert np.all(fast[0, 0] >= sentinel)


def test_row_pass_is_checked():
    with pytest.raises(ValueError, match="row_pass"):
        edt(np.ones((3, 3), bool), row_pass="fast")


def test_envelope_under_vmap():
    mask = np.random.default_rng(4).random((3, 11, 10)) < 0.8
    out = jax.vmap(lambda m: edt(m, (1.0, 0.5), row_pass="envelope"))(mask)
    np.testing.assert_allclose(out, _scipy(mask, (1.0, 0.5)), rtol=1e-6, atol=1e-5)
