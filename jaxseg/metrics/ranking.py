"""ROC AUC and average precision over every pixel of an evaluation set, streamed.

Definitions (thesis §5.1; computed exactly as scikit-learn's ``roc_auc_score``
and ``average_precision_score``, ties included): with the distinct scores
t₁ > t₂ > … and TP_k, FP_k the numbers of positive / negative pixels scoring
≥ t_k (P, N the totals),

  ROC AUC = Σ_k (FPR_k − FPR_{k−1})·(TPR_k + TPR_{k−1})/2
          = (1/PN) Σ_pairs [s_pos > s_neg] + ½[s_pos = s_neg]   (Mann–Whitney U)
  AP      = Σ_k (R_k − R_{k−1})·P_k,   R_k = TP_k/P,  P_k = TP_k/(TP_k + FP_k).

Streaming form: a histogram of positive and negative counts per *score key*
(int32, on device, one scatter-add per batch), reduced once on the host in
float64. The key is a monotone quantisation of the float32 score ``s``:

  s < ½:  the float32 bit pattern of s,      truncated to its top ``mantissa_bits``
  s ≥ ½:  the bit pattern of 1 − s (exact in float32, Sterbenz), mirrored,

over ``octaves`` binary exponents on each side (s < 2^−(octaves+1), or
1 − s < 2^−(octaves+1), share the end bins). Mirroring gives sigmoid outputs near 1
(spaced 2^−24 in float32) the same resolution as those near 0. Two scores
share a key only if they agree to ``mantissa_bits`` bits of relative
precision in s (or in 1 − s); scores that differ at that resolution never do.

Exactness: the result equals scikit-learn on the quantised scores exactly
(up to float64 rounding), and equals scikit-learn on the raw scores whenever
no bin mixes distinct scores (e.g. scores on a grid of k/2^j). Otherwise the
difference is at most :func:`error_bounds` — computed from the same
histogram: for AUC ½·Σ_b pos_b·neg_b/(PN) (a pair inside one bin counts ½
instead of 0 or 1); for AP Σ_b (pos_b/P)·max(P_hi − q_b, q_b − P_lo) with q_b the
bin's precision and P_hi/P_lo the extreme precisions its positives can have.
Memory per class: 2 × 4 bytes × (2·octaves·2^mantissa_bits + 3) — 25 MB at the
defaults (16 bits, 24 octaves: relative resolution 1.5e-5, scores in
[3e-8, 1 − 3e-8] resolved; every float32 in [1 − 2^−7, 1] kept distinct).

Shapes (docs/architecture.md, NHWC): ``scores`` and ``labels`` are
(N, H, W, C) — probabilities and {0, 1} masks, one channel per class —
``valid`` (N,), histograms (C, num_bins, 2). Any other shape (a flat (P,)
vector, scores (N, 1) with labels (N,), NCHW) raises ``ValueError`` naming both
shapes; reshape flat pixel scores to (1, P, 1, 1) (or (P, 1, 1, C)) first.

Averages (scikit-learn's names): 'macro', 'micro', 'none' and 'weighted'
(per-class values weighted by support = positive pixels of the class) from the
(C, bins, 2) histogram; 'samples' (per image, then the mean over images: scikit-learn's
'samples' with each image one sample of H·W·C labels) from :func:`image_scores`, which
ranks each image's pixels exactly on device (a sort per image, no quantisation; float32
sums, relative error ~1e-6), so only a sum and a count are streamed.

Multiclass one-vs-one ROC AUC (Hand & Till 2001; scikit-learn's
``roc_auc_score(..., multi_class='ovo')``): for each pair of classes a < b present in
the ground truth, ½(AUC of channel a separating class-a from class-b pixels + AUC of
channel b separating class-b from class-a pixels), using only pixels of the two
classes; 'macro' is the mean over pairs, 'weighted' weights each pair by its
prevalence (pixels of a or b). Streamed as :func:`pair_histogram` (C, C, bins):
[j, i, key] counts the pixels of true class i whose channel-j score has that key —
C²·num_bins·4 bytes (113 MB for C = 3 at the defaults, 12.6 MB per (j, i)); more
than :data:`MAX_PAIR_HISTOGRAM_BYTES` is refused (lower ``mantissa_bits``: each bit
fewer halves it). One-vs-rest (the per-channel histogram) is the default.

Ignored pixels: ``pixel_weight`` (N, H, W, 1) of 0 drops a pixel from every histogram.

Empty rules (never NaN): AUC is 0.5 when the set has no positive or no
negative pixel (undefined; scikit-learn raises or returns NaN there); AP is
0 with no positive pixel (scikit-learn's value) and 1 with no negative one;
one-vs-one AUC is 0.5 with fewer than two classes present.
"""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.metrics.modes import check_mode, image_weights, pixel_mask
from jaxseg.ops.shapes import check_nhwc, check_shape

DEFAULT_MANTISSA_BITS = 16
DEFAULT_OCTAVES = 24
MAX_PAIR_HISTOGRAM_BYTES = 1 << 30  # the one-vs-one histogram's limit (C² · num_bins · 4 bytes)


class Quantizer(NamedTuple):
    """A monotone map from float32 scores in [0, 1] to int32 histogram keys."""

    mantissa_bits: int = DEFAULT_MANTISSA_BITS
    octaves: int = DEFAULT_OCTAVES

    @property
    def side(self) -> int:
        """Largest key below ½: ``octaves · 2^mantissa_bits`` (key 0 holds s < 2^−(octaves+1))."""
        return self.octaves << self.mantissa_bits

    @property
    def num_bins(self) -> int:
        """Number of keys: 2·side + 3 (below ½, exactly ½, above ½)."""
        return 2 * self.side + 3

    def validate(self) -> "Quantizer":
        """Self, or ValueError for a resolution outside float32's (0–23 bits, 1–125 octaves)."""
        if not 0 <= self.mantissa_bits <= 23:
            raise ValueError(f"mantissa_bits must be in [0, 23]; got {self.mantissa_bits}")
        if not 1 <= self.octaves <= 125:
            raise ValueError(f"octaves must be in [1, 125]; got {self.octaves}")
        return self

    def keys(self, scores):
        """int32 keys of ``scores`` (any shape), non-decreasing in the score.

        ``h(t) = 0`` for t < 2^−(octaves+1), else
        ``(bits(t) >> (23 − m)) − (bits(2^−(octaves+1)) >> (23 − m)) + 1`` ∈ [1, side],
        with t = s below ½ (keys 0 … side) and t = 1 − s above ½ (keys mirrored
        to side + 2 … 2·side + 2); s = ½ maps to side + 1. Scores are clipped
        to [0, 1]; NaN lands in the top key.
        """
        m, e = self.mantissa_bits, self.octaves
        s = jnp.clip(jnp.asarray(scores, jnp.float32), 0.0, 1.0)
        low = s < 0.5
        t = jnp.where(low, s, 1.0 - s)  # in [0, ½]; exact (Sterbenz)
        bits = jax.lax.bitcast_convert_type(t, jnp.int32)
        base = (126 - e) << m  # top bits of 2^−(e+1)
        h = jnp.where(t >= 2.0 ** -(e + 1), (bits >> (23 - m)) - base + 1, 0)  # 0 … side for t < ½
        half = jnp.where(s == 0.5, self.side + 1, 2 * self.side + 2 - h)
        return jnp.where(low, h, half)


def _check_index_range(fn: str, size: int):
    if size >= 2 ** 31:
        raise ValueError(f"{fn}: a histogram of {size} counts overflows int32 indices; "
                         "lower mantissa_bits or octaves")


def accumulate_histogram(hist, scores, labels, valid=None, quantizer: Quantizer = Quantizer(),
                         pixel_weight=None):
    """``hist`` + the counts of one batch, scattered in place (no full-size temporaries).

    ``hist`` int32 (C, num_bins, 2) with ``[..., 0]`` negatives and ``[..., 1]``
    positives per score key; ``scores``, ``labels``: (N, H, W, C) probabilities
    and {0, 1} labels; ``valid`` (N,) bool drops padded images, ``pixel_weight``
    (N, H, W, 1) the pixels of weight 0. Counts of several batches add up to the
    counts of their union. Other shapes raise ``ValueError``.
    """
    check_nhwc("accumulate_histogram", scores=scores, labels=labels)
    w = pixel_mask("accumulate_histogram", scores, valid, pixel_weight)
    check_shape("accumulate_histogram", "hist", hist, (jnp.shape(scores)[-1], quantizer.num_bins, 2),
                "(C, num_bins, 2)", scores=scores)
    scores = jnp.asarray(scores)
    c = scores.shape[-1]
    nb = quantizer.num_bins
    _check_index_range("accumulate_histogram", c * nb * 2)
    key = quantizer.keys(scores)
    lab = (jnp.asarray(labels) > 0.5).astype(jnp.int32)
    idx = (jnp.arange(c, dtype=jnp.int32) * nb + key) * 2 + lab
    if w is not None:
        idx = jnp.where(w, idx, c * nb * 2)  # out of range: dropped
    flat = hist.reshape(-1).at[idx.reshape(-1)].add(1, mode="drop")
    return flat.reshape(c, nb, 2)


def score_histogram(scores, labels, valid=None, quantizer: Quantizer = Quantizer(), pixel_weight=None):
    """Per-class counts of negative and positive pixels per score key: int32 (C, num_bins, 2).

    ``scores``, ``labels`` (N, H, W, C); ``valid`` (N,) bool drops padded images,
    ``pixel_weight`` (N, H, W, 1) the pixels of weight 0.
    """
    check_nhwc("score_histogram", scores=scores, labels=labels)
    c = jnp.shape(scores)[-1]
    hist = jnp.zeros((c, quantizer.num_bins, 2), jnp.int32)
    return accumulate_histogram(hist, scores, labels, valid, quantizer, pixel_weight)


def pair_histogram_bytes(num_classes: int, quantizer: Quantizer = Quantizer()) -> int:
    """Device memory of the one-vs-one histogram: C² · num_bins · 4 bytes."""
    return int(num_classes) ** 2 * quantizer.num_bins * 4


def check_pair_histogram(num_classes: int, quantizer: Quantizer = Quantizer()) -> None:
    """ValueError when the (C, C, bins) one-vs-one histogram exceeds :data:`MAX_PAIR_HISTOGRAM_BYTES`."""
    size = pair_histogram_bytes(num_classes, quantizer)
    if size > MAX_PAIR_HISTOGRAM_BYTES:
        raise ValueError(
            f"multi_class='ovo' keeps a (C, C, num_bins) histogram: {num_classes} classes at "
            f"mantissa_bits={quantizer.mantissa_bits}, octaves={quantizer.octaves} need "
            f"{size / 2 ** 20:.0f} MiB (limit {MAX_PAIR_HISTOGRAM_BYTES // 2 ** 20} MiB); lower "
            "mantissa_bits (each bit fewer halves it) or use multi_class='ovr'")


def accumulate_pair_histogram(hist, scores, labels, valid=None, quantizer: Quantizer = Quantizer(),
                              pixel_weight=None):
    """``hist`` + one batch's one-vs-one counts: int32 (C, C, num_bins), [j, i, key] = the pixels of
    true class i (the argmax of the one-hot ``labels``) whose channel-j score has that key.

    ``scores``, ``labels`` (N, H, W, C); ``valid`` (N,), ``pixel_weight`` (N, H, W, 1)
    drop padded images and ignored pixels. Memory: :func:`pair_histogram_bytes`.
    """
    check_nhwc("accumulate_pair_histogram", scores=scores, labels=labels)
    w = pixel_mask("accumulate_pair_histogram", scores, valid, pixel_weight)
    c, nb = jnp.shape(scores)[-1], quantizer.num_bins
    check_shape("accumulate_pair_histogram", "hist", hist, (c, c, nb), "(C, C, num_bins)", scores=scores)
    _check_index_range("accumulate_pair_histogram", c * c * nb)
    key = quantizer.keys(scores)
    true = jnp.argmax(jnp.asarray(labels), axis=-1).astype(jnp.int32)[..., None]
    idx = (jnp.arange(c, dtype=jnp.int32) * c + true) * nb + key
    if w is not None:
        idx = jnp.where(w, idx, c * c * nb)
    flat = hist.reshape(-1).at[idx.reshape(-1)].add(1, mode="drop")
    return flat.reshape(c, c, nb)


def pair_histogram(scores, labels, valid=None, quantizer: Quantizer = Quantizer(), pixel_weight=None):
    """The one-vs-one histogram of one set: int32 (C, C, num_bins) (:func:`accumulate_pair_histogram`)."""
    check_nhwc("pair_histogram", scores=scores, labels=labels)
    c = jnp.shape(scores)[-1]
    check_pair_histogram(c, quantizer)
    hist = jnp.zeros((c, c, quantizer.num_bins), jnp.int32)
    return accumulate_pair_histogram(hist, scores, labels, valid, quantizer, pixel_weight)


def image_scores(scores, labels, valid=None, pixel_weight=None):
    """Per-image (ROC AUC, AP, counts) of each image's pixels × channels pooled: float32 (N,) each.

    Exact ranking on device (no quantisation): the image's kept scores sorted, ties as
    scikit-learn (mid-rank pairs for AUC, one threshold per distinct score for AP).
    ``counts`` is 1 for an image with a kept pixel (not padding, some weight > 0), else 0.
    Empty rules as the module's: AUC 0.5 without positives or negatives, AP 0 without
    positives, 1 without negatives. Sums are float32 (relative error ~1e-6).
    """
    check_nhwc("image_scores", scores=scores, labels=labels)
    w = pixel_mask("image_scores", scores, valid, pixel_weight)
    counts = image_weights("image_scores", scores, valid, pixel_weight)
    n = jnp.shape(scores)[0]
    s = jnp.clip(jnp.asarray(scores, jnp.float32), 0.0, 1.0)
    y = jnp.asarray(labels) > 0.5
    kept = jnp.ones(s.shape, bool) if w is None else jnp.broadcast_to(w, s.shape)
    s = jnp.where(kept, s, 2.0).reshape(n, -1)  # ignored pixels sort last, above every score
    pos = (y & kept).reshape(n, -1).astype(jnp.int32)
    neg = (~y & kept).reshape(n, -1).astype(jnp.int32)
    s, pos, neg = jax.lax.sort((s, pos, neg), dimension=1, num_keys=1)
    m = s.shape[1]
    i = jnp.broadcast_to(jnp.arange(m, dtype=jnp.int32), s.shape)
    first = jnp.concatenate([jnp.ones((n, 1), bool), s[:, 1:] != s[:, :-1]], axis=1)
    last = jnp.concatenate([s[:, 1:] != s[:, :-1], jnp.ones((n, 1), bool)], axis=1)
    lo = jax.lax.cummax(jnp.where(first, i, 0), axis=1)  # first index of the tie group
    hi = jax.lax.cummin(jnp.where(last, i, m - 1), axis=1, reverse=True)  # its last index
    cpos, cneg = jnp.cumsum(pos, axis=1), jnp.cumsum(neg, axis=1)
    pos_below = jnp.take_along_axis(cpos - pos, lo, axis=1)  # positives scoring < s_i
    neg_below = jnp.take_along_axis(cneg - neg, lo, axis=1)
    neg_upto = jnp.take_along_axis(cneg, hi, axis=1)  # negatives scoring ≤ s_i
    p, q = cpos[:, -1].astype(jnp.float32), cneg[:, -1].astype(jnp.float32)
    total = p + q
    u = jnp.sum(pos * (neg_below + 0.5 * (neg_upto - neg_below)).astype(jnp.float32), axis=1)
    auc = jnp.where((p > 0) & (q > 0), u / jnp.maximum(p * q, 1.0), 0.5)
    prec = (p[:, None] - pos_below) / jnp.maximum(total[:, None] - lo, 1.0)  # TP/(TP+FP) at s_i
    ap = jnp.where(p > 0, jnp.sum(jnp.where(pos > 0, prec, 0.0), axis=1) / jnp.maximum(p, 1.0), 0.0)
    return auc, ap, counts


def _curve(hist):
    """Descending-score neg, pos per non-empty bin and the cumulative TP, FP through it (float64).

    Empty bins change neither curve, so they are dropped first (cheap on host).
    """
    h = np.asarray(hist)
    lead = h.shape[:-2]
    h = h.reshape((-1,) + h.shape[-2:])
    rows = []
    for one in h:
        kept = one[np.flatnonzero(one[:, 0] | one[:, 1])][::-1].astype(np.float64)
        rows.append(kept)
    width = max(1, max(len(r) for r in rows))
    pad = np.zeros((len(rows), width, 2))
    for i, r in enumerate(rows):
        pad[i, :len(r)] = r  # trailing zero bins: no effect on the sums below
    pad = pad.reshape(lead + (width, 2))
    neg, pos = pad[..., 0], pad[..., 1]
    return neg, pos, np.cumsum(pos, axis=-1), np.cumsum(neg, axis=-1)


def roc_auc_from_histogram(hist) -> np.ndarray:
    """ROC AUC per class from a (…, bins, 2) histogram: U/(PN), U = Σ_b neg_b·(TP_{>b} + pos_b/2).

    Equals the trapezoidal area of scikit-learn's ROC curve (Mann–Whitney
    identity); 0.5 when P = 0 or N = 0.
    """
    neg, pos, tp, _ = _curve(hist)
    p, n = tp[..., -1], neg.sum(-1)
    u = np.sum(neg * (tp - pos + 0.5 * pos), axis=-1)
    ok = (p > 0) & (n > 0)
    return np.where(ok, u / np.where(ok, p * n, 1.0), 0.5)


def average_precision_from_histogram(hist) -> np.ndarray:
    """AP per class from a (…, bins, 2) histogram: Σ_b (pos_b/P)·TP_b/(TP_b + FP_b) (scikit-learn).

    0 when P = 0 (scikit-learn's value), 1 when N = 0.
    """
    neg, pos, tp, fp = _curve(hist)
    p = tp[..., -1]
    prec = tp / np.maximum(tp + fp, 1.0)
    ap = np.sum(pos * prec, axis=-1)
    return np.where(p > 0, ap / np.maximum(p, 1.0), 0.0)


def error_bounds(hist) -> tuple[np.ndarray, np.ndarray]:
    """Upper bounds on |AUC − AUC_raw| and |AP − AP_raw| caused by the quantisation.

    AUC: ½·Σ_b pos_b·neg_b/(PN). AP: Σ_b (pos_b/P)·max(P_hi − q_b, q_b − P_lo),
    q_b = TP_b/(TP_b+FP_b), P_hi = TP_b/(TP_b + FP_{>b}),
    P_lo = (TP_{>b}+1)/(TP_{>b}+1+FP_b) — the precisions a positive inside bin b
    can have once the bin's scores are told apart. Zero when no bin mixes
    distinct scores that matter.
    """
    neg, pos, tp, fp = _curve(hist)
    p, n = tp[..., -1], fp[..., -1]
    pn = p * n
    auc_b = np.where(pn > 0, 0.5 * np.sum(pos * neg, -1) / np.where(pn > 0, pn, 1.0), 0.0)
    q = tp / np.maximum(tp + fp, 1.0)
    fp_above = fp - neg
    hi = tp / np.maximum(tp + fp_above, 1.0)
    lo = (tp - pos + 1) / (tp - pos + 1 + fp)
    per_bin = np.where(pos > 0, np.maximum(hi - q, q - lo), 0.0)
    ap_b = np.where(p > 0, np.sum(pos * per_bin, -1) / np.maximum(p, 1.0), 0.0)
    return auc_b, ap_b


def _weighted_mean(values, weights) -> float:
    """np.average(values, weights); the plain mean when the weights sum to 0 (never NaN)."""
    values, weights = np.asarray(values, np.float64), np.asarray(weights, np.float64)
    if weights.sum() <= 0:
        return float(np.mean(values))
    return float(np.average(values, weights=weights))


def reduce_classes(from_histogram, hist, average: str):
    """``from_histogram`` of a (C, bins, 2) histogram: the macro mean over classes, the
    micro value (all classes' pixels pooled), the mean weighted by support (positive
    pixels per class; the macro mean when there are none), or per-class values (``average='none'``)."""
    hist = np.asarray(hist)
    if average == "macro":
        return float(np.mean(from_histogram(hist)))
    if average == "micro":
        return float(from_histogram(hist.sum(0)))
    if average == "weighted":
        return _weighted_mean(from_histogram(hist), hist[..., 1].sum(-1))
    if average == "none":
        return [float(v) for v in from_histogram(hist)]
    raise ValueError(f"average must be 'macro', 'micro', 'weighted' or 'none'; got {average!r}")


def roc_auc_ovo_from_pair_histogram(hist, average: str = "macro", first_class: int = 0) -> float:
    """One-vs-one ROC AUC (Hand & Till; scikit-learn's ``multi_class='ovo'``) from a (C, C, bins)
    :func:`pair_histogram`, over the pairs of classes ≥ ``first_class`` present in the ground truth.

    ``average``: 'macro' (mean over pairs) or 'weighted' (pairs weighted by the pixels of
    their two classes). 0.5 with fewer than two classes present.
    """
    if average not in ("macro", "weighted"):
        raise ValueError(f"multi_class='ovo' takes average 'macro' or 'weighted'; got {average!r}")
    hist = np.asarray(hist)
    support = hist[0].sum(-1)  # pixels of each true class (any channel j counts every pixel once)
    present = [int(k) for k in np.flatnonzero(support > 0) if k >= first_class]
    pair_scores, prevalence = [], []
    for a, b in combinations(present, 2):
        a_vs_b = roc_auc_from_histogram(np.stack([hist[a, b], hist[a, a]], -1))  # channel a: a positive
        b_vs_a = roc_auc_from_histogram(np.stack([hist[b, a], hist[b, b]], -1))
        pair_scores.append(0.5 * (float(a_vs_b) + float(b_vs_a)))
        prevalence.append(support[a] + support[b])
    if not pair_scores:
        return 0.5
    return _weighted_mean(pair_scores, prevalence if average == "weighted" else np.ones(len(pair_scores)))


def _ranking(name, fn, scores, labels, valid, average, quantizer, pixel_weight):
    check_nhwc(name, scores=scores, labels=labels)
    if average == "samples":
        auc, ap, counts = jax.device_get(image_scores(scores, labels, valid, pixel_weight))
        values = auc if fn is roc_auc_from_histogram else ap
        return float(np.sum(values * counts) / max(float(np.sum(counts)), 1.0))
    hist = jax.device_get(score_histogram(scores, labels, valid, quantizer, pixel_weight))
    return reduce_classes(fn, hist, average)


def roc_auc(scores, labels, valid=None, average: str = "macro",
            quantizer: Quantizer = Quantizer(), multi_class: str = "ovr", pixel_weight=None):
    """ROC AUC over every pixel (thesis §5.1; scikit-learn's ``roc_auc_score``).

    ``scores``, ``labels``: (N, H, W, C) probabilities and {0, 1} masks, classes
    on the last axis (other shapes raise ``ValueError``); ``valid`` (N,),
    ``pixel_weight`` (N, H, W, 1) (weight 0: ignored). ``multi_class='ovr'``
    (one-vs-rest per class) with ``average``: 'macro' (mean of per-class AUCs),
    'micro' (all classes' pixels pooled), 'weighted' (by positive pixels per class),
    'samples' (per image, then the mean) or 'none'. ``multi_class='ovo'`` (one-hot
    masks of a multiclass run, C ≥ 2): Hand & Till's one-vs-one AUC, ``average``
    'macro' or 'weighted'. Returns a float (a list of C floats for 'none'), computed on the host.
    """
    if multi_class == "ovo":
        check_nhwc("roc_auc", scores=scores, labels=labels)
        check_mode("multiclass", jnp.shape(scores)[-1])
        hist = jax.device_get(pair_histogram(scores, labels, valid, quantizer, pixel_weight))
        return roc_auc_ovo_from_pair_histogram(hist, average)
    if multi_class != "ovr":
        raise ValueError(f"multi_class must be 'ovr' or 'ovo'; got {multi_class!r}")
    return _ranking("roc_auc", roc_auc_from_histogram, scores, labels, valid, average, quantizer,
                    pixel_weight)


def average_precision(scores, labels, valid=None, average: str = "macro",
                      quantizer: Quantizer = Quantizer(), pixel_weight=None):
    """Average precision over every pixel (thesis §5.1; scikit-learn's ``average_precision_score``).

    Shapes, ``average`` and ``pixel_weight`` as :func:`roc_auc` (one-vs-rest):
    ``scores``, ``labels`` (N, H, W, C).
    """
    return _ranking("average_precision", average_precision_from_histogram, scores, labels, valid, average,
                    quantizer, pixel_weight)
