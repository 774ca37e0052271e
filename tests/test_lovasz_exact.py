"""The Lovász hinge equals Berman's reference, gradients included, on every sort path and bucket.

The reference is Berman's lovasz_hinge in float64 NumPy with a stable sort (torch's
CPU sort keeps ties in input order too), and its gradient is the one autograd
gives: d loss / d e_{π_r} = lovasz_grad_r where e_{π_r} > 0, then through
e = 1 − z·(2y − 1). Inputs with many ties (few distinct logits, equal errors of
both labels) check that ties are ordered as the stable reference orders them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxseg.losses import lovasz as L
from jaxseg.ops import radix_argsort as R


def np_lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    jaccard = 1.0 - (gts - gt_sorted.cumsum()) / (gts + (1.0 - gt_sorted).cumsum())
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def np_hinge_and_grad(logits, labels, per_image=True):
    """Berman's lovasz_hinge (mean over images, or the pooled batch) and d loss / d logits, float64."""
    z, y = logits.astype(np.float64), labels.astype(np.float64)
    groups = [(i,) for i in range(len(z))] if per_image else [slice(None)]
    loss, grad = 0.0, np.zeros_like(z)
    for g in groups:
        zf, yf = z[g].ravel(), y[g].ravel()
        signs = 2.0 * yf - 1.0
        errors = 1.0 - zf * signs
        perm = np.argsort(-errors, kind="stable")
        increments = np_lovasz_grad(yf[perm])
        loss += np.dot(np.maximum(errors[perm], 0.0), increments) / len(groups)
        d_errors = np.zeros_like(errors)
        d_errors[perm] = increments * (errors[perm] > 0)
        grad[g] = (-signs * d_errors).reshape(z[g].shape) / len(groups)
    return loss, grad


def check(logits, labels, per_image=True):
    loss, grad = jax.jit(jax.value_and_grad(lambda z: L.lovasz_hinge(z, labels, per_image=per_image)))(logits)
    ref_loss, ref_grad = np_hinge_and_grad(logits, labels, per_image)
    np.testing.assert_allclose(float(loss), ref_loss, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(grad), ref_grad, rtol=1e-4, atol=1e-6 * np.abs(ref_grad).max() + 1e-12)


@pytest.fixture
def small_buckets(monkeypatch):
    """Compaction on rows of any length (buckets of 1/32 … 1/2 of the row), so tiny inputs use every branch."""
    monkeypatch.setattr(L, "_COMPACT_MIN", 1)


def tied_logits(rng, shape, values=(-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)):
    """Few distinct logits: equal errors within a label and across labels (1 − a for y=1, z=a and y=0, z=−a)."""
    return rng.choice(np.asarray(values, np.float32), size=shape)


@pytest.mark.parametrize("per_image", [True, False])
def test_ties_match_the_stable_reference(per_image, small_buckets):
    rng = np.random.default_rng(0)
    for trial in range(4):
        labels = (rng.random((3, 9, 11)) < 0.4).astype(np.float32)
        check(tied_logits(rng, labels.shape), labels, per_image)


def test_every_bucket(small_buckets):
    """The most-positive row has 2, 6, 20 or 60 positive errors of 64 pixels: each bucket once."""
    rng = np.random.default_rng(1)
    labels = (rng.random((2, 8, 8)) < 0.5).astype(np.float32)
    signs = 2.0 * labels - 1.0
    assert L._bucket_sizes(64) == [2, 8, 32, 64]
    for count in (1, 2, 6, 20, 60):
        logits = 3.0 * signs  # all errors −2: none positive
        flat = logits.reshape(2, -1)
        flat[0, :count] = -signs.reshape(2, -1)[0, :count] * rng.uniform(0.1, 2.0, count)  # errors > 1
        flat[1, : count // 2] = 0.5 * signs.reshape(2, -1)[1, : count // 2]  # errors 0.5
        check(flat.reshape(labels.shape), labels)


@pytest.mark.parametrize("sort", ["host", "xla"])
def test_long_rows_on_each_cpu_sort(sort, monkeypatch):
    """Rows of 128² = HOST_MIN pixels: the host radix sort (default) or JAXSEG_CPU_SORT=xla."""
    assert 128 * 128 >= R.HOST_MIN
    if sort == "xla":
        monkeypatch.setenv("JAXSEG_CPU_SORT", "xla")
    rng = np.random.default_rng(2)
    labels = (rng.random((2, 128, 128)) < 0.3).astype(np.float32)
    check(rng.normal(size=labels.shape).astype(np.float32), labels)  # 84 % positive: the whole row is sorted
    check(tied_logits(rng, labels.shape), labels)
    trained = (4.0 * (2.0 * labels - 1.0) + rng.normal(size=labels.shape)).astype(np.float32)
    check(trained, labels)  # 0.1 % positive: the smallest bucket
    grad = jax.jit(lambda z: jax.grad(lambda a: L.lovasz_hinge(a, labels))(z))
    text = grad.trace(trained).lower(lowering_platforms=("cpu",)).as_text()
    assert ("callback" in text) == (sort == "host")


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 7), st.integers(1, 9), st.booleans(), st.booleans(), st.integers(0, 2**32 - 1))
def test_property_matches_reference(n, h, w, ties, per_image, seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, h, w)) < rng.uniform(0, 1)).astype(np.float32)
    logits = tied_logits(rng, labels.shape) if ties else (rng.normal(size=labels.shape) * 2).astype(np.float32)
    check(logits, labels, per_image)


def test_nan_propagates_and_inf_is_kept():
    z = np.zeros((1, 4, 4), np.float32)
    y = np.ones_like(z)
    with_nan = z.copy()
    with_nan[0, 0, 0] = np.nan
    assert np.isnan(float(L.lovasz_hinge(with_nan, y)))
    z[0, 1, 1] = -np.inf  # error +inf on a positive pixel
    assert float(L.lovasz_hinge(z, y)) == np.inf


def test_forward_mode_vmap_and_traced_tversky_weights():
    rng = np.random.default_rng(3)
    z = jnp.asarray(rng.normal(size=(2, 5, 6)).astype(np.float32))
    y = (rng.random((2, 5, 6)) < 0.5).astype(np.float32)
    t = jnp.asarray(rng.normal(size=z.shape).astype(np.float32))
    f = lambda a: L.lovasz_hinge(a, y, alpha=0.7, beta=0.3)
    _, tangent = jax.jvp(f, (z,), (t,))
    np.testing.assert_allclose(float(tangent), float(jnp.sum(jax.grad(f)(z) * t)), rtol=1e-5)
    traced = jax.jit(lambda a, b: L.lovasz_hinge(z, y, alpha=a, beta=b))(0.7, 0.3)
    np.testing.assert_allclose(float(traced), float(f(z)), rtol=1e-6)
    per_row = jax.vmap(lambda a, b: L.lovasz_hinge(a[None], b[None]))(z, y)
    np.testing.assert_allclose(float(per_row.mean()), float(L.lovasz_hinge(z, y)), rtol=1e-6)


def test_increments_have_no_cancellation():
    """Δ_r from counts, not as a difference of Jaccard values near 1: float32 equals float64 to ~1e-7 relative."""
    gt = (np.random.default_rng(4).random(200000) < 0.3).astype(np.float32)
    got = np.asarray(L.lovasz_grad(gt))
    ref = np_lovasz_grad(gt.astype(np.float64))
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=0)
    cancelling = np.diff(np.concatenate([[0.0], 1.0 - (gt.sum() - np.cumsum(gt)) / (gt.sum() + np.cumsum(1 - gt))])
                         .astype(np.float32))  # Berman's float32 form
    assert np.abs(cancelling - ref).max() > 10 * np.abs(got - ref).max()


def np_softmax_loss(probs, labels, ignore, per_image):
    """Berman's lovasz_softmax (classes='present') on the non-ignored pixels, float64."""
    def flat(p, y):
        p, y = p.reshape(-1, p.shape[-1]).astype(np.float64), y.reshape(-1)
        keep = y != ignore
        p, y = p[keep], y[keep]
        losses = []
        for c in range(p.shape[1]):
            fg = (y == c).astype(np.float64)
            if fg.sum() == 0:
                continue
            errors = np.abs(fg - p[:, c])
            perm = np.argsort(-errors, kind="stable")
            losses.append(np.dot(errors[perm], np_lovasz_grad(fg[perm])))
        return np.mean(losses) if losses else 0.0
    return np.mean([flat(p, y) for p, y in zip(probs, labels)]) if per_image else flat(probs, labels)


@pytest.mark.parametrize("per_image", [True, False])
def test_softmax_with_ignored_pixels_in_every_bucket(per_image, small_buckets):
    """Weighted rows (ignored pixels have weight 0) through the compaction buckets, probabilities with ties."""
    rng = np.random.default_rng(5)
    for sharpness in (0.5, 3.0, 30.0):  # soft to saturated: p = 1.0 exactly gives zero errors and ties
        logits = rng.normal(size=(2, 6, 7, 3)) * sharpness
        probs = np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1))
        labels = np.where(rng.random((2, 6, 7)) < 0.2, 255, rng.integers(0, 3, (2, 6, 7)))
        got = L.lovasz_softmax(probs, labels, per_image=per_image, ignore=255)
        np.testing.assert_allclose(float(got), np_softmax_loss(probs, labels, 255, per_image), rtol=1e-5, atol=1e-7)
