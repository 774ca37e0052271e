"""The NHWC contract of every public metric, jitted and not (chex variants).

(a) a correct (N, H, W, C) call agrees with a brute-force NumPy / scipy /
scikit-learn reference on tiny arrays; (b) a wrong shape — no channel axis,
NCHW, (N, 1) against (N,) — raises ValueError naming the function and both shapes.
"""

import functools
import math
import re

import chex
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized
from scipy import ndimage
from scipy.spatial.distance import cdist, directed_hausdorff
from sklearn.metrics import average_precision_score, roc_auc_score

from jaxseg import metrics
from tests.helpers import assert_shape_error
from jaxseg.metrics import confusion, percentile_distance as PD, ranking, surface

N, H, W, C = 3, 6, 7, 2
SMALL = ranking.Quantizer(mantissa_bits=8, octaves=25)  # exact on k/64 score grids


def _masks(seed=0):
    rng = np.random.default_rng(seed)
    pred = rng.random((N, H, W, C)) < 0.3
    lab = rng.random((N, H, W, C)) < 0.3
    pred[0, ..., 1] = False            # exactly one empty: the diagonal
    pred[1, ..., 1] = lab[1, ..., 1] = False  # both empty: 0
    lab[2, 0, 0, 0] = pred[2, 5, 6, 0] = True
    return pred, lab


def _scores(seed=1):
    rng = np.random.default_rng(seed)
    y = (rng.random((N, H, W, C)) < 0.4).astype(np.float32)
    s = np.clip(np.round((0.3 * y + 0.7 * rng.random(y.shape)) * 64) / 64, 0, 1).astype(np.float32)
    return s, y


def _ref_distance(name, pred, lab):
    """(N, C) values from scipy EDTs / pairwise distances, the empty rule of docs/architecture.md."""
    diag = math.hypot(H, W)
    out = np.zeros(pred.shape[::3])
    for n in range(pred.shape[0]):
        for c in range(pred.shape[-1]):
            p, y = pred[n, ..., c], lab[n, ..., c]
            if not p.any() or not y.any():
                out[n, c] = 0.0 if p.any() == y.any() else diag
                continue
            xs, ys = np.argwhere(p), np.argwhere(y)
            d_xy = ndimage.distance_transform_edt(~y)[p]  # d(x, Y) for x ∈ X
            d_yx = ndimage.distance_transform_edt(~p)[y]
            d = cdist(xs, ys)
            out[n, c] = {
                "hausdorff": lambda: max(directed_hausdorff(xs, ys)[0], directed_hausdorff(ys, xs)[0]),
                "hausdorff95": lambda: max(np.percentile(d_xy, 95), np.percentile(d_yx, 95)),
                "average_hausdorff": lambda: 0.5 * (d_xy.mean() + d_yx.mean()),
                "balanced_average_hausdorff": lambda: 0.5 * (d_xy.sum() + d_yx.sum()) / len(ys),
                "modified_average_hausdorff": lambda: 0.5 * (np.percentile(d, 5, axis=1).mean()
                                                             + np.percentile(d, 5, axis=0).mean()),
            }[name]()
    return out.astype(np.float32)


def _boundary_ref(m):
    cross = ndimage.generate_binary_structure(2, 1)
    return np.stack([np.stack([m[n, ..., c] & ~ndimage.binary_erosion(m[n, ..., c], cross, border_value=0)
                               for c in range(m.shape[-1])], -1) for n in range(m.shape[0])])


def _np_counts(p, y, t=0.5):
    pred, lab = p > t, y > 0.5
    return [np.sum(a & b, axis=(1, 2)) for a, b in ((pred, lab), (pred, ~lab), (~pred, lab), (~pred, ~lab))]


DISTANCES = ("hausdorff", "hausdorff95", "average_hausdorff", "balanced_average_hausdorff",
             "modified_average_hausdorff")
NHWC = np.zeros((N, H, W, C), np.float32)
# (description, first array, second array): shapes every pairwise metric must refuse
WRONG_PAIRS = [
    ("no_channel_axis", np.zeros((N, H, W), np.float32), np.zeros((N, H, W), np.float32)),
    ("nchw_labels", NHWC, np.zeros((N, C, H, W), np.float32)),
    ("n1_vs_n", np.zeros((4, 1), np.float32), np.zeros((4,), np.float32)),
]


class ShapeAssertions(chex.TestCase):

    def assert_shape_error(self, fn, name, *arrays):
        return assert_shape_error(self, fn, name, *arrays)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(n, n) for n in DISTANCES])
    def test_matches_scipy_reference(self, name):
        pred, lab = _masks()
        got = np.asarray(self.variant(getattr(surface, name))(pred, lab))
        self.assertEqual(got.shape, (N, C))
        chex.assert_trees_all_close(got, _ref_distance(name, pred, lab), rtol=1e-5, atol=1e-5)
        # {0, 1} floats (thresholded probabilities) are the same masks
        as_float = self.variant(getattr(surface, name))(pred.astype(np.float32), lab.astype(np.float32))
        chex.assert_trees_all_close(np.asarray(as_float), got)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"{n}_{w[0]}", n, w[1], w[2]) for n in DISTANCES for w in WRONG_PAIRS])
    def test_wrong_shapes_raise(self, name, a, b):
        self.assert_shape_error(self.variant(getattr(surface, name)), name, a > 0, b > 0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_boundary_and_point_sets(self):
        pred, lab = _masks()
        np.testing.assert_array_equal(np.asarray(self.variant(surface.boundary)(pred)), _boundary_ref(pred))
        x, y = self.variant(functools.partial(surface.point_sets, on="boundary"))(pred, lab)
        np.testing.assert_array_equal(np.asarray(x), _boundary_ref(pred))
        np.testing.assert_array_equal(np.asarray(y), _boundary_ref(lab))
        self.assert_shape_error(self.variant(surface.boundary), "boundary", pred[..., 0])
        for _, a, b in WRONG_PAIRS:
            self.assert_shape_error(self.variant(surface.point_sets), "point_sets", a > 0, b > 0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_percentile_distance(self):
        _, lab = _masks()
        got = np.asarray(self.variant(functools.partial(PD.percentile_distance, q=5))(lab))
        grid = np.argwhere(np.ones((H, W), bool))
        for n, c in ((0, 0), (2, 1)):
            d = cdist(grid, np.argwhere(lab[n, ..., c]))
            chex.assert_trees_all_close(got[n, ..., c], np.percentile(d, 5, axis=1).reshape(H, W)
                                        .astype(np.float32), rtol=1e-5, atol=1e-6)
        self.assert_shape_error(self.variant(functools.partial(PD.percentile_distance, q=5)),
                                "percentile_distance", lab[..., 0])
        mean = self.variant(functools.partial(PD.mean_percentile_distance, q=5))
        self.assertEqual(mean(lab, lab).shape, (N, C))
        self.assert_shape_error(mean, "mean_percentile_distance", lab, np.moveaxis(lab, -1, 1))


class ConfusionTest(ShapeAssertions):

    @chex.variants(with_jit=True, without_jit=True)
    def test_counts_match_numpy(self):
        p, y = _scores()
        valid = np.array([True, False, True])
        got = self.variant(functools.partial(confusion.confusion_counts, threshold=0.4, mode="multilabel"))(
            p, y, valid=valid)
        for g, r in zip(got, _np_counts(p, y, 0.4)):
            self.assertEqual(g.shape, (N, C))
            np.testing.assert_array_equal(np.asarray(g), r * valid[:, None])

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(w[0], w[1], w[2]) for w in WRONG_PAIRS])
    def test_counts_wrong_shapes_raise(self, a, b):
        self.assert_shape_error(self.variant(confusion.confusion_counts), "confusion_counts", a, b)

    @chex.variants(with_jit=True, without_jit=True)
    def test_valid_must_be_n(self):
        msg = self.assert_shape_error(self.variant(lambda p, y, v: confusion.confusion_counts(p, y, 0.5, v)),
                                      "confusion_counts", NHWC, NHWC, np.ones((N, 1), bool))
        self.assertIn("valid", msg)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(n, n) for n in confusion.SCORES])
    def test_scores_match_formulas_and_refuse_broadcasting(self, name):
        tp, fp, fn, tn = (v.astype(np.float64) + 1 for v in _np_counts(*_scores()))
        formulas = {"dice": 2 * tp / (2 * tp + fp + fn), "jaccard": tp / (tp + fp + fn),
                    "precision": tp / (tp + fp), "recall": tp / (tp + fn), "specificity": tn / (tn + fp),
                    "balanced_accuracy": 0.5 * (tp / (tp + fn) + tn / (tn + fp))}
        fn_ = self.variant(confusion.SCORES[name])
        chex.assert_trees_all_close(np.asarray(fn_(tp, fp, fn, tn)), formulas[name].astype(np.float32),
                                    rtol=1e-6)
        self.assert_shape_error(fn_, f"{name}_score", tp, fp[:, :1], fn, tn)

    @chex.variants(with_jit=True, without_jit=True)
    def test_average_scores_needs_four_counts(self):
        fn = self.variant(lambda c: confusion.average_scores(confusion.dice_score, c))
        counts = np.stack(_np_counts(*_scores()), -1)  # (N, C, 4)
        self.assertEqual(fn(counts).shape, (N,))
        self.assert_shape_error(fn, "average_scores", counts[..., :3])


class RankingTest(ShapeAssertions):

    def test_roc_auc_and_ap_match_sklearn(self):
        s, y = _scores()
        ys, ss = y.reshape(-1, C), s.reshape(-1, C)
        for avg in ("macro", "micro"):
            self.assertAlmostEqual(ranking.roc_auc(s, y, average=avg, quantizer=SMALL),
                                   roc_auc_score(ys, ss, average=avg), places=9)
            self.assertAlmostEqual(ranking.average_precision(s, y, average=avg, quantizer=SMALL),
                                   average_precision_score(ys, ss, average=avg), places=9)

    @chex.variants(with_jit=True, without_jit=True)
    def test_histograms_match_sklearn(self):
        s, y = _scores()
        valid = np.array([True, True, False])
        hist = self.variant(functools.partial(ranking.score_histogram, quantizer=SMALL))(s, y, valid)
        self.assertEqual(hist.shape, (C, SMALL.num_bins, 2))
        auc = ranking.roc_auc_from_histogram(np.asarray(hist))
        ref = roc_auc_score(y[:2].reshape(-1, C), s[:2].reshape(-1, C), average=None)
        np.testing.assert_allclose(auc, ref, atol=1e-9)
        acc = self.variant(functools.partial(ranking.accumulate_histogram, quantizer=SMALL))
        streamed = acc(acc(jnp.zeros_like(hist), s[:1], y[:1]), s[1:2], y[1:2])
        np.testing.assert_array_equal(np.asarray(streamed), np.asarray(hist))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"{f}_{w[0]}", f, w[1], w[2]) for w in WRONG_PAIRS
                                      for f in ("roc_auc", "average_precision", "score_histogram")])
    def test_wrong_shapes_raise(self, name, a, b):
        fn = functools.partial(getattr(ranking, name), quantizer=SMALL)
        self.assert_shape_error(self.variant(fn), name, a, b)

    @chex.variants(with_jit=True, without_jit=True)
    def test_accumulate_checks_scores_labels_and_hist(self):
        acc = self.variant(functools.partial(ranking.accumulate_histogram, quantizer=SMALL))
        hist = np.zeros((C, SMALL.num_bins, 2), np.int32)
        for _, a, b in WRONG_PAIRS:
            with self.assertRaisesRegex(ValueError, re.escape(f"{np.shape(a)} and labels {np.shape(b)}")):
                acc(hist, a, b)
        self.assert_shape_error(lambda h, s: acc(h, s, s), "accumulate_histogram", hist[:1], NHWC)


class CollectionTest(ShapeAssertions):

    @chex.variants(with_jit=True, without_jit=True)
    def test_update_checks_shapes(self):
        col = metrics.MetricCollection(["dice", "hausdorff"], num_classes=C, mode="multilabel")  # multi-hot masks
        update = self.variant(col.update)
        pred, lab = _masks()
        p, y = pred.astype(np.float32), lab.astype(np.float32)
        out = col.compute(update(col.init(), p, y, np.ones(N, bool)))
        chex.assert_trees_all_close(out["hausdorff"], float(_ref_distance("hausdorff", pred, lab).mean()),
                                    rtol=1e-5)
        for _, a, b in WRONG_PAIRS:
            self.assert_shape_error(lambda a, b: update(col.init(), a, b, np.ones(N, bool)),
                                    "MetricCollection.update", a, b)
