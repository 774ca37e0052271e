"""One prediction rule in every metric: modes, argmax vs threshold, ignored pixels, streaming.

'binary' / 'multilabel' predict probability > threshold per channel, 'multiclass' the
argmax; the collection's confusion and distance metrics score exactly the masks of
``jaxseg.metrics.predict_masks``. Pixels of ``pixel_weight`` 0 count in no metric.
The on-device update path runs jitted and not (chex variants).
"""

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from sklearn.metrics import f1_score, roc_auc_score

from jaxseg import metrics
from jaxseg.metrics import surface

Q = "mantissa_bits=8,octaves=25"  # exact on the k/64 score grid below
SPECS = ["dice", "dice(average=none)", "dice(average=samples)", "jaccard(average=weighted)",
         "balanced_accuracy", f"roc_auc({Q})", f"roc_auc({Q},average=samples)",
         f"average_precision({Q},average=weighted)", "hausdorff", "average_hausdorff(average=none)"]
N, H, W = 4, 8, 8


def _data(mode, seed, n=N):
    """k/64-grid probabilities (softmax-like for multiclass), masks (one-hot / multi-hot) and a
    pixel_weight with ~20% ignored pixels and image 1 wholly ignored."""
    rng = np.random.default_rng(seed)
    c = 1 if mode == "binary" else 3
    if mode == "multiclass":
        y = np.eye(c)[rng.integers(0, c, (n, H, W))]
        b = rng.integers(0, 8, (n, H, W, c)) + 6 * y
        a = np.floor(64 * b / b.sum(-1, keepdims=True))
        np.put_along_axis(a, a.argmin(-1)[..., None], np.take_along_axis(a, a.argmin(-1)[..., None], -1)
                          + 64 - a.sum(-1, keepdims=True), -1)
        s = a / 64  # sums exactly to 1; some pixels tie for the argmax
    else:
        y = (rng.random((n, H, W, c)) < 0.4).astype(float)
        s = np.clip(np.round((0.35 * y + 0.65 * rng.random(y.shape)) * 64) / 64, 0, 1)
    weight = (rng.random((n, H, W, 1)) > 0.2).astype(np.float32)
    weight[1] = 0.0
    return s.astype(np.float32), y.astype(np.float32), weight


def _junk_where_ignored(s, y, weight, seed):
    """The same batch with other values at the ignored pixels."""
    rng = np.random.default_rng(seed)
    keep = weight > 0
    return (np.where(keep, s, rng.random(s.shape)).astype(np.float32),
            np.where(keep, y, rng.random(y.shape) < 0.5).astype(np.float32))


def _close(a, b, rtol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=1e-6, err_msg=k)


class PredictionRuleTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_predict_masks(self):
        # pixels: below 0.5 everywhere; class 2 highest; a tie (lowest index wins); one confident
        p = np.array([[0.4, 0.35, 0.25], [0.3, 0.3, 0.4], [0.45, 0.45, 0.1], [0.1, 0.8, 0.1]],
                     np.float32).reshape(1, 1, 4, 3)
        multiclass = self.variant(lambda x: metrics.predict_masks(x, "multiclass"))(p)
        np.testing.assert_array_equal(np.asarray(multiclass)[0, 0], np.eye(3, dtype=bool)[[0, 2, 0, 1]])
        self.assertEqual(multiclass.dtype, jnp.bool_)
        multilabel = self.variant(lambda x: metrics.predict_masks(x, "multilabel", 0.4))(p)
        np.testing.assert_array_equal(np.asarray(multilabel), p > 0.4)
        binary = self.variant(lambda x: metrics.predict_masks(x, "binary", 0.3))(p[..., :1])
        np.testing.assert_array_equal(np.asarray(binary), p[..., :1] > 0.3)
        np.testing.assert_array_equal(np.asarray(self.variant(lambda x: metrics.predict_masks(x, None))(p)),
                                      np.asarray(multiclass))  # C > 1 defaults to multiclass

    def test_mode_must_match_num_classes(self):
        self.assertEqual(metrics.MetricCollection(["dice"]).mode, "binary")
        self.assertEqual(metrics.MetricCollection(["dice"], num_classes=3).mode, "multiclass")
        for c, mode in ((3, "binary"), (1, "multiclass"), (2, "softmax")):
            with self.assertRaisesRegex(ValueError, "mode"):
                metrics.MetricCollection(["dice"], num_classes=c, mode=mode)
            with self.assertRaisesRegex(ValueError, "mode"):
                metrics.build_metric("hausdorff", num_classes=c, mode=mode)
        with self.assertRaisesRegex(ValueError, "whole collection"):
            metrics.MetricCollection(["dice(mode=multilabel)"], num_classes=3)
        with self.assertRaisesRegex(ValueError, "binary"):
            metrics.predict_masks(np.zeros((1, 2, 2, 3)), "binary")
        col = metrics.MetricCollection(["dice"], num_classes=3)
        with self.assertRaisesRegex(ValueError, r"MetricCollection.update: pixel_weight \(2, 4, 4\)"):
            col.update(col.init(), np.zeros((2, 4, 4, 3)), np.zeros((2, 4, 4, 3)), np.ones(2, bool),
                       np.ones((2, 4, 4)))

    @chex.variants(with_jit=True, without_jit=True)
    def test_collection_scores_the_argmax_not_softmax_channels_at_half(self):
        rng = np.random.default_rng(0)
        lab = rng.integers(0, 3, (2, 8, 8))
        y = np.eye(3, dtype=np.float32)[lab]
        # soft, mostly right predictions: the true class leads with a probability under 0.5
        logits = rng.normal(0, 0.3, y.shape) + 0.6 * y
        p = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
        col = metrics.MetricCollection(["dice(average=none)", "dice", "hausdorff"], num_classes=3)
        got = col.compute(self.variant(col.update)(col.init(), p, y, np.ones(2, bool)))
        argmax = np.eye(3, dtype=bool)[p.argmax(-1)]
        half = p > 0.5
        y_flat = y.reshape(-1, 3) > 0.5
        ref_argmax = f1_score(y_flat, argmax.reshape(-1, 3), average=None)
        ref_half = f1_score(y_flat, half.reshape(-1, 3), average=None, zero_division=1)
        assert np.abs(ref_argmax - ref_half).max() > 0.2  # the two rules disagree here
        np.testing.assert_allclose([got[f"dice(average=none)/{k}"] for k in range(3)], ref_argmax, atol=1e-6)
        self.assertAlmostEqual(got["dice"], ref_argmax.mean(), places=6)
        hd = np.asarray(surface.hausdorff(argmax, y > 0.5)).mean()
        self.assertAlmostEqual(got["hausdorff"], float(hd), places=4)
        # a multilabel collection keeps thresholding each channel
        ml = metrics.MetricCollection(["dice(average=none)"], num_classes=3, mode="multilabel")
        got_ml = ml.compute(self.variant(ml.update)(ml.init(), p, y, np.ones(2, bool)))
        np.testing.assert_allclose([got_ml[f"dice(average=none)/{k}"] for k in range(3)], ref_half, atol=1e-6)


class StreamingAndIgnoredPixelsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_multiclass(self):
        self.check_streaming_and_ignored_pixels("multiclass")

    @chex.variants(with_jit=True)  # the op-by-op path runs the same code: multiclass covers it
    @parameterized.named_parameters(("binary", "binary"), ("multilabel", "multilabel"))
    def test_threshold_modes(self, mode):
        self.check_streaming_and_ignored_pixels(mode)

    def check_streaming_and_ignored_pixels(self, mode):
        """Streaming equals one shot; values at ignored pixels change nothing; a wholly ignored
        image is as absent as padding; the values are scikit-learn's / surface's on the kept pixels."""
        specs = SPECS + ([f"roc_auc({Q},multi_class=ovo)"] if mode == "multiclass" else [])
        c = 1 if mode == "binary" else 3
        col = metrics.MetricCollection(specs, threshold=0.45, num_classes=c, mode=mode)
        update = self.variant(col.update)
        s, y, w = _data(mode, seed=1)
        one = col.compute(update(col.init(), s, y, np.ones(N, bool), w))
        # three batches of two, the last two padded with a junk image each
        pad = lambda a, i, fill: np.concatenate([a[i:i + 1], np.full_like(a[:1], fill)])  # noqa: E731
        acc = update(col.init(), s[:2], y[:2], np.ones(2, bool), w[:2])
        for i in (2, 3):
            acc = update(acc, pad(s, i, 0.9), pad(y, i, 1.0), np.array([True, False]), pad(w, i, 1.0))
        _close(col.compute(acc), one)
        # other values at ignored pixels (image 1 entirely) change nothing
        s2, y2 = _junk_where_ignored(s, y, w, seed=2)
        _close(col.compute(update(col.init(), s2, y2, np.ones(N, bool), w)), one, rtol=1e-6)
        # a wholly ignored image is as absent as a padded one, also from per-image means
        image_1_ignored = np.ones_like(w)
        image_1_ignored[1] = 0.0
        _close(col.compute(update(col.init(), s2, y2, np.ones(N, bool), image_1_ignored)),
               col.compute(update(col.init(), s2, y2, np.arange(N) != 1, np.ones_like(w))))
        self._check_references(one, mode, s, y, w)

    def _check_references(self, got, mode, s, y, w):
        """Values on the kept pixels only: scikit-learn for counts and ranking, surface for distances."""
        c = s.shape[-1]
        keep = np.broadcast_to(w > 0, s.shape)
        pred = metrics.predict_masks(s, mode, 0.45)
        kept_pixels = (w[..., 0] > 0).ravel()
        ys, ps, ss = ((a.reshape(-1, c))[kept_pixels] for a in (y > 0.5, np.asarray(pred), s))
        dice = (f1_score(ys, ps, average=None, zero_division=1) if c > 1
                else [f1_score(ys.ravel(), ps.ravel(), zero_division=1)])
        np.testing.assert_allclose([got[f"dice(average=none)/{k}"] for k in range(c)], dice, atol=1e-6)
        if mode == "binary":
            auc = roc_auc_score(ys.ravel(), ss.ravel())
        elif mode == "multiclass":
            auc = roc_auc_score(ys.argmax(-1), ss, multi_class="ovr")
            self.assertAlmostEqual(got[f"roc_auc({Q},multi_class=ovo)"],
                                   roc_auc_score(ys.argmax(-1), ss, multi_class="ovo"), places=9)
        else:
            auc = roc_auc_score(ys, ss)
        self.assertAlmostEqual(got[f"roc_auc({Q})"], auc, places=9)
        images = [0, 2, 3]  # image 1 has no kept pixel
        per_image = [f1_score(((y[i] > 0.5) & keep[i]).ravel(), (np.asarray(pred)[i] & keep[i]).ravel(),
                              zero_division=1) for i in images]
        self.assertAlmostEqual(got["dice(average=samples)"], float(np.mean(per_image)), places=5)
        hd = surface.average_hausdorff(np.asarray(pred) & keep, (y > 0.5) & keep)
        np.testing.assert_allclose([got[f"average_hausdorff(average=none)/{k}"] for k in range(c)],
                                   np.asarray(hd)[images].mean(0), rtol=1e-5)


def test_confusion_counts_skip_ignored_pixels_and_default_to_the_mode_of_c():
    s, y, w = _data("multiclass", seed=3, n=2)
    counts = np.stack([np.asarray(v) for v in metrics.confusion_counts(s, y, pixel_weight=w)], -1)
    pred = np.eye(3, dtype=bool)[s.argmax(-1)] & (w > 0)
    lab = (y > 0.5) & (w > 0)
    np.testing.assert_array_equal(counts[..., 0], (pred & lab).sum((1, 2)))
    np.testing.assert_array_equal(counts.sum(-1), np.broadcast_to((w > 0).sum((1, 2)), (2, 3)))
    with pytest.raises(ValueError, match="pixel_weight"):
        metrics.confusion_counts(s, y, pixel_weight=w[..., 0])
