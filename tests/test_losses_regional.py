"""Regional losses against NumPy written from the formulas of thesis §5.2 / docs/architecture.md."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxseg.losses import regional as R

RNG = np.random.default_rng(0)
LOGITS1 = RNG.normal(size=(2, 8, 8, 1)).astype(np.float32)
MASK1 = (RNG.random((2, 8, 8, 1)) < 0.3).astype(np.float32)
LOGITS3 = RNG.normal(size=(2, 8, 8, 3)).astype(np.float32)
MASK3 = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, size=(2, 8, 8))]


def _np_probs(z):
    if z.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_two_class(p, y):
    """C=1 as the classes (background, foreground)."""
    if p.shape[-1] == 1:
        return np.concatenate([1 - p, p], -1), np.concatenate([1 - y, y], -1)
    return p, y


def _np_focal(z, y, gamma, w):
    p, y = _np_two_class(_np_probs(z), y)
    return -np.mean(np.sum(np.asarray(w) * (1 - p) ** gamma * y * np.log(p), -1))


def _np_tversky(z, y, a, b, eps, batchwise, gamma=1.0, include_background=True):
    p = _np_probs(z)
    axes = (0, 1, 2) if batchwise else (1, 2)
    tp = (p * y).sum(axes)
    fp = (p * (1 - y)).sum(axes)
    fn = ((1 - p) * y).sum(axes)
    t = 1 - (tp + eps) / (tp + a * fn + b * fp + eps)
    if not include_background and z.shape[-1] > 1:
        t = t[..., 1:]
    return np.mean(t ** gamma)


@pytest.mark.parametrize("z,y", [(LOGITS1, MASK1), (LOGITS3, MASK3)])
def test_cross_entropy_family(z, y):
    n = 2 if z.shape[-1] == 1 else 3
    w = np.linspace(0.5, 2.0, n)
    chex.assert_trees_all_close(R.cross_entropy(z, y), _np_focal(z, y, 0.0, np.ones(n)), rtol=1e-5)
    chex.assert_trees_all_close(R.cross_entropy(z, y, class_weights=w), _np_focal(z, y, 0.0, w), rtol=1e-5)
    chex.assert_trees_all_close(R.focal(z, y, gamma=2.0), _np_focal(z, y, 2.0, np.ones(n)), rtol=1e-5)
    chex.assert_trees_all_close(R.focal(z, y, gamma=1.5, alpha=w), _np_focal(z, y, 1.5, w), rtol=1e-5)
    p = _np_probs(z).astype(np.float32)
    chex.assert_trees_all_close(R.focal(p, y, gamma=2.0, from_logits=False), _np_focal(z, y, 2.0, np.ones(n)),
                                rtol=1e-4)


def test_binary_cross_entropies():
    z, y = LOGITS1, MASK1
    p = _np_probs(z)
    ref = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    chex.assert_trees_all_close(R.bce(z, y), ref, rtol=1e-5)
    chex.assert_trees_all_close(R.bce(p.astype(np.float32), y, from_logits=False), ref, rtol=1e-4)
    wref = -np.mean(0.7 * y * np.log(p) + 0.3 * (1 - y) * np.log(1 - p))  # thesis Table 8
    chex.assert_trees_all_close(R.weighted_bce(z, y, pos_weight=0.7), wref, rtol=1e-5)
    tref = -np.mean(3.0 * y * np.log(p) + (1 - y) * np.log(1 - p))  # PyTorch pos_weight convention
    chex.assert_trees_all_close(R.weighted_bce(z, y, pos_weight=3.0, neg_weight=1.0), tref, rtol=1e-5)
    # Lin et al.'s scalar alpha: a on foreground, 1 − a on background
    chex.assert_trees_all_close(R.focal(z, y, gamma=2.0, alpha=0.25), _np_focal(z, y, 2.0, [0.75, 0.25]), rtol=1e-5)


@pytest.mark.parametrize("z,y", [(LOGITS1, MASK1), (LOGITS3, MASK3)])
@pytest.mark.parametrize("batchwise", [False, True])
def test_overlap_losses(z, y, batchwise):
    kw = dict(batchwise=batchwise)
    chex.assert_trees_all_close(R.tversky(z, y, alpha=0.7, beta=0.3, smooth=0.5, **kw),
                                _np_tversky(z, y, 0.7, 0.3, 0.5, batchwise), rtol=1e-5)
    chex.assert_trees_all_close(R.jaccard(z, y, smooth=1.0, **kw), _np_tversky(z, y, 1, 1, 1.0, batchwise),
                                rtol=1e-5)
    p = _np_probs(z)
    axes = (0, 1, 2) if batchwise else (1, 2)
    tp, fp, fn = (p * y).sum(axes), (p * (1 - y)).sum(axes), ((1 - p) * y).sum(axes)
    dice_ref = np.mean(1 - (2 * tp + 1.0) / (2 * tp + fp + fn + 1.0))
    chex.assert_trees_all_close(R.dice(z, y, smooth=1.0, **kw), dice_ref, rtol=1e-5)
    chex.assert_trees_all_close(R.focal_tversky(z, y, alpha=0.5, beta=0.5, gamma=2.0, **kw),
                                _np_tversky(z, y, 0.5, 0.5, 1.0, batchwise, gamma=2.0), rtol=1e-5)
    chex.assert_trees_all_close(R.dice(z, y, include_background=False, **kw),
                                _np_tversky(z, y, 0.5, 0.5, 0.5, batchwise, include_background=False), rtol=1e-5)


def test_tversky_special_cases():
    """α=β=1 is Jaccard; α=β=½ is Dice (exactly for ε=0; with ε, Dice's ε is halved)."""
    for z, y in [(LOGITS1, MASK1), (LOGITS3, MASK3)]:
        chex.assert_trees_all_close(R.tversky(z, y, 1.0, 1.0, smooth=0.3), R.jaccard(z, y, smooth=0.3), rtol=1e-6)
        chex.assert_trees_all_close(R.tversky(z, y, 0.5, 0.5, smooth=0.0), R.dice(z, y, smooth=0.0), rtol=1e-6)
        chex.assert_trees_all_close(R.tversky(z, y, 0.5, 0.5, smooth=0.5), R.dice(z, y, smooth=1.0), rtol=1e-6)


def test_perfect_prediction_and_empty_mask():
    y = MASK1
    z = np.where(y > 0, 30.0, -30.0).astype(np.float32)
    for fn in (R.dice, R.jaccard, R.tversky, R.focal_tversky):
        assert float(fn(z, y)) < 1e-6
    empty = np.zeros_like(y)
    assert float(R.dice(np.full_like(z, -30.0), empty)) < 1e-6  # ε makes an empty/empty image a perfect fit


def test_gradients():
    z, y = jnp.asarray(LOGITS1[:1, :4, :4]), jnp.asarray(MASK1[:1, :4, :4])
    for fn in (lambda a: R.tversky(a, y, 0.7, 0.3), lambda a: R.focal(a, y, gamma=2.0),
               lambda a: R.focal_tversky(a, y, gamma=1.5, batchwise=True)):
        check_grads(jax.jit(fn), (z,), order=1, modes=("rev",), atol=1e-2, rtol=1e-2)
    z3, y3 = jnp.asarray(LOGITS3[:1, :3, :3]), jnp.asarray(MASK3[:1, :3, :3])
    check_grads(jax.jit(lambda a: R.cross_entropy(a, y3, class_weights=(1.0, 2.0, 0.5))), (z3,), order=1,
                modes=("rev",), atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("name", ["bce", "weighted_bce", "focal", "dice", "jaccard", "tversky", "focal_tversky"])
def test_bf16_inputs_give_finite_float32_gradients(name):
    fn = getattr(R, name)
    z = jnp.asarray(LOGITS1 * 20, jnp.bfloat16)  # saturated sigmoids
    loss, g = jax.jit(jax.value_and_grad(lambda a: fn(a, MASK1)))(z)
    assert loss.dtype == jnp.float32 and g.dtype == jnp.bfloat16
    assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(g, np.float32)))
