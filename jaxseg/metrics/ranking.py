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

Empty rules (never NaN): AUC is 0.5 when the set has no positive or no
negative pixel (undefined; scikit-learn raises or returns NaN there); AP is
0 with no positive pixel (scikit-learn's value) and 1 with no negative one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.ops.shapes import check_batch, check_nhwc, check_shape

DEFAULT_MANTISSA_BITS = 16
DEFAULT_OCTAVES = 24


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


def accumulate_histogram(hist, scores, labels, valid=None, quantizer: Quantizer = Quantizer()):
    """``hist`` + the counts of one batch, scattered in place (no full-size temporaries).

    ``hist`` int32 (C, num_bins, 2) with ``[..., 0]`` negatives and ``[..., 1]``
    positives per score key; ``scores``, ``labels``: (N, H, W, C) probabilities
    and {0, 1} labels; ``valid`` (N,) bool drops padded images. Counts of
    several batches add up to the counts of their union. Other shapes raise ``ValueError``.
    """
    check_nhwc("accumulate_histogram", scores=scores, labels=labels)
    check_batch("accumulate_histogram", valid, scores=scores)
    check_shape("accumulate_histogram", "hist", hist, (jnp.shape(scores)[-1], quantizer.num_bins, 2),
                "(C, num_bins, 2)", scores=scores)
    scores = jnp.asarray(scores)
    c = scores.shape[-1]
    nb = quantizer.num_bins
    key = quantizer.keys(scores)
    lab = (jnp.asarray(labels) > 0.5).astype(jnp.int32)
    idx = (jnp.arange(c, dtype=jnp.int32) * nb + key) * 2 + lab
    if valid is not None:
        w = jnp.asarray(valid, bool).reshape((-1,) + (1,) * (scores.ndim - 1))
        idx = jnp.where(w, idx, c * nb * 2)  # out of range: dropped
    flat = hist.reshape(-1).at[idx.reshape(-1)].add(1, mode="drop")
    return flat.reshape(c, nb, 2)


def score_histogram(scores, labels, valid=None, quantizer: Quantizer = Quantizer()):
    """Per-class counts of negative and positive pixels per score key: int32 (C, num_bins, 2).

    ``scores``, ``labels`` (N, H, W, C); ``valid`` (N,) bool drops padded images.
    """
    check_nhwc("score_histogram", scores=scores, labels=labels)
    check_batch("score_histogram", valid, scores=scores)
    c = jnp.shape(scores)[-1]
    hist = jnp.zeros((c, quantizer.num_bins, 2), jnp.int32)
    return accumulate_histogram(hist, scores, labels, valid, quantizer)


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


def reduce_classes(from_histogram, hist, average: str):
    """``from_histogram`` of a (C, bins, 2) histogram: the macro mean over classes, the
    micro value (all classes' pixels pooled), or per-class values (``average='none'``)."""
    hist = np.asarray(hist)
    if average == "macro":
        return float(np.mean(from_histogram(hist)))
    if average == "micro":
        return float(from_histogram(hist.sum(0)))
    if average == "none":
        return [float(v) for v in from_histogram(hist)]
    raise ValueError(f"average must be 'macro', 'micro' or 'none'; got {average!r}")


def _ranking(name, fn, scores, labels, valid, average, quantizer):
    check_nhwc(name, scores=scores, labels=labels)
    check_batch(name, valid, scores=scores)
    hist = jax.device_get(score_histogram(scores, labels, valid, quantizer))
    return reduce_classes(fn, hist, average)


def roc_auc(scores, labels, valid=None, average: str = "macro",
            quantizer: Quantizer = Quantizer()):
    """ROC AUC over every pixel (thesis §5.1; scikit-learn's ``roc_auc_score``, one-vs-rest per class).

    ``scores``, ``labels``: (N, H, W, C) probabilities and {0, 1} masks, classes
    on the last axis (other shapes raise ``ValueError``); ``valid`` (N,).
    ``average``: 'macro' (mean of per-class AUCs), 'micro' (all classes'
    pixels pooled, scikit-learn's ``average='micro'``) or 'none'. Returns a
    float (a list of C floats for 'none'), computed on the host.
    """
    return _ranking("roc_auc", roc_auc_from_histogram, scores, labels, valid, average, quantizer)


def average_precision(scores, labels, valid=None, average: str = "macro",
                      quantizer: Quantizer = Quantizer()):
    """Average precision over every pixel (thesis §5.1; scikit-learn's ``average_precision_score``).

    Shapes and ``average`` as :func:`roc_auc`: ``scores``, ``labels`` (N, H, W, C).
    """
    return _ranking("average_precision", average_precision_from_histogram, scores, labels, valid, average,
                    quantizer)
