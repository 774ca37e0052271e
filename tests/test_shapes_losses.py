"""The NHWC contract of every public loss, jitted and not (chex variants).

(a) a correct (N, H, W, C) call agrees with a brute-force NumPy / scipy
reference on tiny arrays; (b) a wrong shape — no channel axis, NCHW labels,
(N, 1) against (N,) — raises ValueError naming the function and both shapes.
"""

import functools
import re

import chex
import numpy as np
from absl.testing import parameterized
from scipy import ndimage

from jaxseg import losses
from tests.helpers import assert_shape_error
from jaxseg.losses import boundary as B
from jaxseg.losses import lovasz as L
from jaxseg.losses import regional as R

N, H, W = 2, 5, 6
RNG = np.random.default_rng(0)
Z1 = RNG.normal(size=(N, H, W, 1)).astype(np.float32)
Y1 = (RNG.random((N, H, W, 1)) < 0.4).astype(np.float32)
Z3 = RNG.normal(size=(N, H, W, 3)).astype(np.float32)
Y3 = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, size=(N, H, W))]


# --- brute-force references (float64), written from the formulas of docs/architecture.md ---
def _probs(z):
    z = z.astype(np.float64)
    if z.shape[-1] == 1:
        return 1 / (1 + np.exp(-z))
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _two(p, y):
    return (np.concatenate([1 - p, p], -1), np.concatenate([1 - y, y], -1)) if p.shape[-1] == 1 else (p, y)


def _focal(z, y, gamma=2.0, w=None):
    p, y = _two(_probs(z), y)
    w = np.ones(p.shape[-1]) if w is None else np.asarray(w)
    return -np.mean(np.sum(w * (1 - p) ** gamma * y * np.log(p), -1))


def _tversky(z, y, a, b, eps, gamma=1.0):
    p = _probs(z)
    tp, fp, fn = (p * y).sum((1, 2)), (p * (1 - y)).sum((1, 2)), ((1 - p) * y).sum((1, 2))
    return np.mean((1 - (tp + eps) / (tp + a * fn + b * fp + eps)) ** gamma)


def _lovasz_ext(errors, fg):
    """Lovász extension of F(A) = |A| / |A ∪ P| (P = fg) at ``errors``, by its definition."""
    order = np.argsort(-errors, kind="stable")
    f = lambda k: (lambda a: a.sum() / max((a | (fg > 0)).sum(), 1))(np.isin(np.arange(errors.size), order[:k]))
    return sum(max(errors[order[k - 1]], 0) * (f(k) - f(k - 1)) for k in range(1, errors.size + 1))


def _lovasz_hinge(z, y):
    return np.mean([_lovasz_ext((1 - z[i] * (2 * y[i] - 1)).ravel(), y[i].ravel()) for i in range(len(z))])


def _lovasz_softmax(z, y):
    p, y = _two(_probs(z), y)
    p, y = p.reshape(-1, p.shape[-1]), y.reshape(-1, y.shape[-1])
    present = [c for c in range(p.shape[-1]) if y[:, c].any()]
    return np.mean([_lovasz_ext(np.abs(y[:, c] - p[:, c]), y[:, c]) for c in present])


def _sdm(mask):
    out = np.zeros(mask.shape)
    for n in range(mask.shape[0]):
        for c in range(mask.shape[-1]):
            pos = mask[n, ..., c] > 0.5
            if pos.any():
                out[n, ..., c] = (ndimage.distance_transform_edt(~pos) * ~pos
                                  - (ndimage.distance_transform_edt(pos) - 1) * pos)
    return out


def _boundary(z, y):
    p, d = _probs(z), _sdm(y)
    return np.mean((p * d) if z.shape[-1] == 1 else (p * d)[..., 1:])


# name -> (loss(logits, labels), reference(logits, labels))
LOSSES = {
    "focal": (functools.partial(R.focal, gamma=2.0), _focal),
    "cross_entropy": (functools.partial(R.cross_entropy, class_weights=None), lambda z, y: _focal(z, y, 0.0)),
    "tversky": (functools.partial(R.tversky, alpha=0.7, beta=0.3, smooth=0.5),
                lambda z, y: _tversky(z, y, 0.7, 0.3, 0.5)),
    "focal_tversky": (functools.partial(R.focal_tversky, gamma=2.0), lambda z, y: _tversky(z, y, .5, .5, 1., 2.)),
    "dice": (R.dice, lambda z, y: _tversky(z, y, 0.5, 0.5, 0.5)),
    "jaccard": (R.jaccard, lambda z, y: _tversky(z, y, 1.0, 1.0, 1.0)),
    "lovasz_softmax": (losses.get_loss("lovasz_softmax"), _lovasz_softmax),
    "boundary": (B.boundary, _boundary),
}
BINARY = {  # C = 1 only
    "bce": (R.bce, lambda z, y: _focal(z, y, 0.0)),
    "weighted_bce": (functools.partial(R.weighted_bce, pos_weight=0.7),
                     lambda z, y: _focal(z, y, 0.0, (0.3, 0.7))),
    "lovasz_hinge": (losses.get_loss("lovasz_hinge"), lambda z, y: _lovasz_hinge(z[..., 0], y[..., 0])),
}
WRONG_PAIRS = [
    ("no_channel_axis", Z3[..., 0], Y3[..., 0]),
    ("nchw_labels", Z3, np.moveaxis(Y3, -1, 1)),
    ("labels_without_channel", Z1, Y1[..., 0]),
    ("n1_vs_n", np.zeros((4, 1), np.float32), np.zeros((4,), np.float32)),
]


class LossShapeTest(chex.TestCase):

    def assert_shape_error(self, fn, name, *arrays):
        return assert_shape_error(self, fn, name, *arrays)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"{n}_c{c}", n, c) for n in LOSSES for c in (1, 3)]
                                    + [(f"{n}_c1", n, 1) for n in BINARY])
    def test_matches_numpy_reference(self, name, c):
        fn, ref = {**LOSSES, **BINARY}[name]
        z, y = (Z1, Y1) if c == 1 else (Z3, Y3)
        chex.assert_trees_all_close(self.variant(fn)(z, y), np.float32(ref(z, y)), rtol=2e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"{n}_{w[0]}", n, w[1], w[2]) for n in {**LOSSES, **BINARY}
                                      for w in WRONG_PAIRS])
    def test_wrong_shapes_raise(self, name, z, y):
        fn, _ = {**LOSSES, **BINARY}[name]
        self.assert_shape_error(self.variant(fn), name, z, y)

    @chex.variants(with_jit=True, without_jit=True)
    def test_registered_losses_all_refuse_nchw(self):
        for name in losses.available():
            self.assert_shape_error(self.variant(losses.get_loss(name)), name, Z1, np.moveaxis(Y1, -1, 1))

    @chex.variants(with_jit=True, without_jit=True)
    def test_helpers(self):
        p = self.variant(R.probabilities)(Z3)
        chex.assert_trees_all_close(p, _probs(Z3).astype(np.float32), rtol=1e-6)
        self.assert_shape_error(self.variant(R.probabilities), "probabilities", Z3[..., 0])
        tp, fp, fn = self.variant(functools.partial(R.soft_confusion, batchwise=False))(p, Y3)
        chex.assert_trees_all_close(tp, (_probs(Z3) * Y3).sum((1, 2)).astype(np.float32), rtol=1e-5)
        self.assert_shape_error(self.variant(functools.partial(R.soft_confusion, batchwise=True)),
                                "soft_confusion", p, Y3[..., 0])
        sdm = self.variant(B.signed_distance_map)(Y3)
        chex.assert_trees_all_close(sdm, _sdm(Y3).astype(np.float32), rtol=1e-6, atol=1e-5)
        self.assert_shape_error(self.variant(B.signed_distance_map), "signed_distance_map", Y3[0])
        self.assert_shape_error(self.variant(B.boundary_loss), "boundary_loss", p, sdm[..., :1])
        self.assert_shape_error(self.variant(B.boundary), "boundary", Z3, Y3, sdm[..., :1])  # dist too

    @chex.variants(with_jit=True, without_jit=True)
    def test_lower_level_lovasz_forms(self):
        hinge = self.variant(L.lovasz_hinge)
        chex.assert_trees_all_close(hinge(Z1[..., 0], Y1[..., 0]), np.float32(_lovasz_hinge(Z1[..., 0], Y1[..., 0])),
                                    rtol=1e-5)
        self.assert_shape_error(hinge, "lovasz_hinge", Z1[..., 0], Y1)  # (N, H, W) vs (N, H, W, 1)
        soft = self.variant(L.lovasz_softmax)
        p = _probs(Z3).astype(np.float32)
        classmap = Y3.argmax(-1)  # the documented integer class map (N, H, W)
        chex.assert_trees_all_close(soft(p, classmap), soft(p, Y3), rtol=1e-6)
        self.assert_shape_error(soft, "lovasz_softmax", p, np.moveaxis(Y3, -1, 1))
        self.assert_shape_error(soft, "lovasz_softmax", p, classmap[:, :, :-1])
