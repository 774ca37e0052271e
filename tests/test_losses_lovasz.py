"""Lovász losses and the Lovász extension (Berman et al. 2018; thesis §5.2.1)."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxseg.losses import lovasz as L
from jaxseg.analysis import submodular as S

RNG = np.random.default_rng(0)


# --- NumPy port of Berman's reference (github.com/bermanmaxim/LovaszSoftmax, lovasz_losses.py) ---
def np_lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum()
    union = gts + (1 - gt_sorted).cumsum()
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def np_hinge_flat(logits, labels):
    if len(labels) == 0:
        return 0.0
    errors = 1.0 - logits * (2.0 * labels - 1.0)
    perm = np.argsort(-errors, kind="stable")
    return float(np.dot(np.maximum(errors[perm], 0), np_lovasz_grad(labels[perm].astype(np.float64))))


def np_lovasz_hinge(logits, labels, per_image=True, ignore=None):
    def flat(z, y):
        z, y = z.reshape(-1).astype(np.float64), y.reshape(-1)
        keep = np.ones_like(y, bool) if ignore is None else y != ignore
        return z[keep], y[keep]
    if per_image:
        return np.mean([np_hinge_flat(*flat(z, y)) for z, y in zip(logits, labels)])
    return np_hinge_flat(*flat(logits, labels))


def np_softmax_flat(probas, labels, classes="present"):
    if probas.size == 0:
        return 0.0
    losses = []
    for c in (range(probas.shape[1]) if classes in ("all", "present") else classes):
        fg = (labels == c).astype(np.float64)
        if classes == "present" and fg.sum() == 0:
            continue
        errors = np.abs(fg - probas[:, c])
        perm = np.argsort(-errors, kind="stable")
        losses.append(np.dot(errors[perm], np_lovasz_grad(fg[perm])))
    return float(np.mean(losses)) if losses else 0.0


def np_lovasz_softmax(probas, labels, classes="present", per_image=False, ignore=None):
    def flat(p, y):
        p, y = p.reshape(-1, p.shape[-1]).astype(np.float64), y.reshape(-1)
        keep = np.ones_like(y, bool) if ignore is None else y != ignore
        return p[keep], y[keep]
    if per_image:
        return np.mean([np_softmax_flat(*flat(p, y), classes) for p, y in zip(probas, labels)])
    return np_softmax_flat(*flat(probas, labels), classes)


LOGITS = RNG.normal(size=(3, 6, 7)).astype(np.float32)
LABELS = (RNG.random((3, 6, 7)) < 0.4).astype(np.int32)
LABELS[1] = 0  # an image without foreground
PROBS = np.asarray(jax.nn.softmax(RNG.normal(size=(2, 5, 6, 4)).astype(np.float32) * 2, axis=-1))
CLASSMAP = RNG.integers(0, 3, size=(2, 5, 6)).astype(np.int32)  # class 3 never present


@pytest.mark.parametrize("per_image", [True, False])
def test_hinge_matches_berman(per_image):
    chex.assert_trees_all_close(L.lovasz_hinge(LOGITS, LABELS, per_image=per_image),
                                np_lovasz_hinge(LOGITS, LABELS, per_image), rtol=1e-5)
    ignored = np.where(RNG.random(LABELS.shape) < 0.3, 255, LABELS)
    chex.assert_trees_all_close(L.lovasz_hinge(LOGITS, ignored, per_image=per_image, ignore=255),
                                np_lovasz_hinge(LOGITS, ignored, per_image, ignore=255), rtol=1e-5)


@pytest.mark.parametrize("classes,per_image", [("present", False), ("present", True), ("all", False), ([1, 3], True)])
def test_softmax_matches_berman(classes, per_image):
    got = L.lovasz_softmax(PROBS, CLASSMAP, classes=classes, per_image=per_image)
    chex.assert_trees_all_close(got, np_lovasz_softmax(PROBS, CLASSMAP, classes, per_image), rtol=1e-5)
    onehot = np.eye(4, dtype=np.float32)[CLASSMAP]
    chex.assert_trees_all_close(L.lovasz_softmax(PROBS, onehot, classes=classes, per_image=per_image), got,
                                rtol=1e-6)
    ignored = np.where(RNG.random(CLASSMAP.shape) < 0.3, 255, CLASSMAP)
    chex.assert_trees_all_close(L.lovasz_softmax(PROBS, ignored, classes=classes, per_image=per_image, ignore=255),
                                np_lovasz_softmax(PROBS, ignored, classes, per_image, ignore=255), rtol=1e-5)


def test_degenerate_inputs_are_finite():
    z = jnp.asarray(LOGITS)
    cases = {
        "no foreground": lambda a: L.lovasz_hinge(a, np.zeros_like(LABELS)),
        "all ignored": lambda a: L.lovasz_hinge(a, np.full_like(LABELS, 255), ignore=255),
        "softmax all ignored": lambda a: L.lovasz_softmax(jax.nn.softmax(a[..., None] * np.arange(3.0)),
                                                          np.full(LABELS.shape, 255), ignore=255),
        "dice-like, no foreground": lambda a: L.lovasz_hinge(a, np.zeros_like(LABELS), alpha=0.5, beta=0.5),
    }
    for name, fn in cases.items():
        loss, g = jax.jit(jax.value_and_grad(fn))(z)
        assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(g))), name
    assert float(cases["all ignored"](z)) == 0.0
    # no foreground: the loss is the largest hinge error (the first Jaccard increment is 1)
    chex.assert_trees_all_close(cases["no foreground"](z), np.mean(np.maximum(1 + LOGITS, 0).max(axis=(1, 2))),
                                rtol=1e-6)


def test_gradients_jit_vmap_bf16():
    z, y = jnp.asarray(LOGITS[:2, :3, :4]), LABELS[:2, :3, :4]
    check_grads(jax.jit(lambda a: L.lovasz_hinge(a, y)), (z,), order=1, modes=("rev",), atol=1e-2, rtol=1e-2)
    p = jnp.asarray(PROBS[:1, :3, :3])
    check_grads(jax.jit(lambda a: L.lovasz_softmax(a, CLASSMAP[:1, :3, :3], classes="all")), (p,), order=1,
                modes=("rev",), atol=1e-2, rtol=1e-2)
    per_image = jax.jit(jax.vmap(lambda a, b: L.lovasz_hinge(a[None], b[None])))(LOGITS, LABELS)
    chex.assert_trees_all_close(per_image.mean(), np_lovasz_hinge(LOGITS, LABELS), rtol=1e-5)
    loss, g = jax.jit(jax.value_and_grad(lambda a: L.lovasz_hinge(a, LABELS)))(jnp.asarray(LOGITS, jnp.bfloat16))
    assert loss.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(g, np.float32)))


def test_lovasz_grad_is_the_tversky_set_increment():
    gt = (RNG.random(9) < 0.5).astype(np.float32)
    chex.assert_trees_all_close(L.lovasz_grad(gt), np_lovasz_grad(gt.astype(np.float64)), rtol=1e-6)
    for a, b in [(1.0, 1.0), (0.5, 0.5), (0.7, 0.3)]:
        F = S.tversky_set_loss(gt, a, b)
        nested = np.tril(np.ones((10, 9), np.float32), -1)  # S_0 = ∅, S_r = first r pixels
        values = np.asarray([F(s) for s in nested])
        chex.assert_trees_all_close(L.lovasz_grad(gt, a, b), np.diff(values), rtol=1e-5, atol=1e-7)


def test_hinge_is_the_lovasz_extension_of_the_tversky_set_loss():
    z, y = LOGITS[0].ravel(), LABELS[0].ravel().astype(np.float32)
    errors = np.maximum(1 - z * (2 * y - 1), 0)
    for a, b in [(1.0, 1.0), (0.5, 0.5), (0.7, 0.3)]:
        chex.assert_trees_all_close(L.lovasz_hinge(z[None], y[None], alpha=a, beta=b),
                                    S.lovasz_extension(S.tversky_set_loss(y, a, b), errors), rtol=1e-5)


def test_lovasz_extension_interpolates_on_the_cube():
    """f = F on {0,1}^p, and f is linear between consecutive vertices along the sorted order."""
    p = 5
    weights = RNG.normal(size=(p, p)).astype(np.float32)
    F = lambda s: jnp.tanh(s @ weights @ s)  # arbitrary, F(∅) = 0
    for bits in itertools.product([0.0, 1.0], repeat=p):
        s = np.asarray(bits, np.float32)
        chex.assert_trees_all_close(S.lovasz_extension(F, s), F(s), rtol=1e-5, atol=1e-6)
    x = np.asarray([0.9, -0.2, 0.4, 0.1, 0.7], np.float32)  # one ordering: x = Σ λ_i 1_{S_i}
    order = np.argsort(-x)
    chains = [np.isin(np.arange(p), order[:i]).astype(np.float32) for i in range(p + 1)]
    lam = np.append(-np.diff(x[order]), x[order][-1])   # coefficients of 1_{S_1} .. 1_{S_p}
    expected = sum(l * F(c) for l, c in zip(lam, chains[1:]))
    chex.assert_trees_all_close(S.lovasz_extension(F, x), expected, rtol=1e-5)
    for t in (0.25, 0.5):  # linear on the segment between two chain vertices
        pt = (1 - t) * chains[2] + t * chains[3]
        chex.assert_trees_all_close(S.lovasz_extension(F, pt), (1 - t) * F(chains[2]) + t * F(chains[3]), rtol=1e-5)


def test_submodularity_jaccard_yes_dice_no():
    """Theorem 2 numerically; the thesis's open question for Dice/Tversky: α < 1 breaks submodularity."""
    for gt in ([1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 0, 1, 0]):
        assert S.is_submodular(S.tversky_set_loss(np.asarray(gt), 1.0, 1.0), len(gt))
        assert S.is_submodular(S.tversky_set_loss(np.asarray(gt), 1.5, 0.3), len(gt))
    # Dice with P = {0, 1}: F({0}) = F({1}) = 1/3 but F({0, 1}) = 1 > 2/3, so F(A)+F(B) < F(A∪B)+F(A∩B)
    violation = S.submodularity_violation(S.tversky_set_loss(np.asarray([1, 1, 0]), 0.5, 0.5), 3)
    assert violation is not None and violation[3] == pytest.approx(1 / 3, rel=1e-5)
    assert not S.is_submodular(S.tversky_set_loss(np.asarray([1, 1, 0, 0]), 0.7, 0.3), 4)
    supermodular_cut = lambda s: -(jnp.sum(s) ** 2) / 4.0  # concave in |S| iff submodular: this one is
    assert S.is_submodular(supermodular_cut, 4) and not S.is_submodular(lambda s: jnp.sum(s) ** 2, 4)
