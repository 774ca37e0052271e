"""Regional losses of thesis §5.2 (formulas pinned in docs/architecture.md).

Inputs are NHWC: ``logits`` (or probabilities with ``from_logits=False``) and
``labels`` of the same shape (N, H, W, C) — one channel per class, one-hot
(multiclass) or multi-hot (multilabel), not an integer class map. Labels may be
soft (any value in [0, 1]; nothing thresholds them). Any other shape (no channel
axis, NCHW, two different shapes) raises ``ValueError`` naming both shapes,
jitted or not.

Modes (``mode``, smp's names; every loss here and ``probabilities`` take it):

* ``None`` (default, today's rule): C=1 is a binary sigmoid task whose classes
  are (background, foreground); C>1 channels are softmax classes.
* ``'binary'``: C must be 1; sigmoid. Same as ``None`` with C=1.
* ``'multiclass'``: C ≥ 2 softmax channels, exactly one class per pixel
  (background = channel 0).
* ``'multilabel'``: C independent sigmoids (classes may overlap); each channel c
  is its own binary problem with classes (1 − y_c, y_c).

Ignored pixels: every loss takes ``pixel_weight`` (N, H, W, 1), float in {0, 1}
(0 = ignored, e.g. ``config.data.ignore_index``), filled from
``batch['pixel_weight']`` by the trainer. An ignored pixel contributes to no sum
(TP/FP/FN, CE numerators and denominators): means are over the non-ignored pixels.
``None`` (the default) is exactly the unweighted loss. If every pixel is ignored
the loss is 0.

Pixel-wise (thesis §5.2, Lin et al. 2017 for focal), m the pixel weight, the
sum over classes k (softmax: the C channels; sigmoid: per channel the two
classes (1−y_c, y_c)), P the number of pixels (× C for sigmoid channels):

* CE       = −Σ_pixels m Σ_k w_k · q_k · log ŷ_k / Σ_pixels m      (``cross_entropy``, ``bce``,
             ``weighted_bce``; q = y, or label-smoothed targets, see below)
* focal    = −Σ_pixels m Σ_k α_k · (1 − ŷ_k)^γ · y_k · log ŷ_k / Σ m (``focal``; γ=0 gives CE)

With ``weight_normalization='weights'`` the CE denominator is Σ_pixels m Σ_k w_k y_k
(the weight of each pixel's target class: PyTorch's ``CrossEntropyLoss(weight=w,
reduction='mean')``, Σᵢ w_{yᵢ} lᵢ / Σᵢ w_{yᵢ}) instead of the pixel count. Label
smoothing ε: softmax targets q = (1 − ε)·y + ε/C (PyTorch ``label_smoothing``);
sigmoid targets q = (1 − ε)·y + ε/2 (the same rule with two classes; smp's
``SoftBCEWithLogitsLoss(smooth_factor=s)`` is y(1 − s) + (1 − y)s, i.e. ε = 2s).

Soft confusion terms on probabilities ŷ ∈ [0,1] (thesis §5.2, Definition), per
class (and per image unless ``batchwise``): TP = Σ m·y·ŷ, FP = Σ m·(1−y)·ŷ,
FN = Σ m·y·(1−ŷ); ``squared_pred=True`` (MONAI) uses squared totals instead,
FP = Σ m·ŷ² − TP and FN = Σ m·y² − TP, so that 2TP + FP + FN = Σŷ² + Σy². Then,
with ε_n = ``smooth_nr`` and ε_d = ``smooth_dr`` (``smooth`` sets both):

* Tversky  = 1 − (TP + ε_n) / (TP + α·FN + β·FP + ε_d)    (α weighs FN, β weighs FP)
* Dice     = 1 − (2TP + ε_n) / (2TP + FP + FN + ε_d)        (= 1 − (2TP + ε_n)/(Σŷ + Σy + ε_d))
* Jaccard  = 1 − (TP + ε_n) / (TP + FP + FN + ε_d)
* focal Tversky = Tversky^γ                                 (Abraham & Khan 2019)

A ratio whose denominator is 0 (prediction and ground truth both empty, ε_d = 0)
is the library's empty-mask rule: score 1, loss 0 — never NaN, gradients finite.

``batchwise=True`` sums TP/FP/FN over the whole batch (thesis Table 5, "batchwise
loss"); ``False`` computes the ratio per image and averages over images. The loss
is a mean over (image, class) entries, weighted by ``class_weights`` w_c when
given (Σ w_c L_c / Σ w_c); ``include_background=False`` drops channel 0 when C>1;
``ignore_empty`` drops (or zeroes, as smp) the entries whose ground truth is empty.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.losses.registry import LOSSES
from jaxseg.ops.modes import MODES, check_mode
from jaxseg.ops.shapes import check_nhwc, check_shape, shape_of

__all__ = ["MODES", "probabilities", "soft_confusion", "cross_entropy", "bce", "weighted_bce", "focal",
           "tversky", "focal_tversky", "dice", "jaccard"]

_EPS = 1e-7
_WEIGHT_NORMALIZATIONS = ("pixels", "weights")
_IGNORE_EMPTY = (False, True, "drop", "zero")


# --- shared helpers ---------------------------------------------------------------------------

def activation(fn: str, mode: str | None, n_channels: int) -> str:
    """'sigmoid' or 'softmax' for ``mode`` and C channels (``jaxseg.ops.modes``); ValueError naming ``fn``."""
    try:
        return "softmax" if check_mode(mode, n_channels) == "multiclass" else "sigmoid"
    except ValueError as e:
        raise ValueError(f"{fn}: {e}") from None


def check_pixel_weight(fn: str, pixel_weight, logits) -> None:
    """``pixel_weight`` must be None or (N, H, W, 1) for ``logits`` (N, H, W, C); ValueError otherwise."""
    if pixel_weight is not None:
        n, h, w, _ = shape_of(logits)
        check_shape(fn, "pixel_weight", pixel_weight, (n, h, w, 1), "(N, H, W, 1)", logits=logits)


def safe_divide(num, den):
    """num / den where den > 0, else 0 — with finite gradients on both branches."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def probabilities(logits, from_logits: bool = True, mode: str | None = None):
    """Class probabilities, float32: sigmoid or softmax over channels per ``mode``, or the input itself.

    ``mode=None``: ŷ = σ(z) for one channel, ŷᵢ = e^{zᵢ}/Σⱼ e^{zⱼ} otherwise (thesis
    §5.2); ``'binary'``/``'multilabel'``: σ per channel; ``'multiclass'``: softmax.
    ``logits`` (N, H, W, C); other shapes raise ``ValueError`` (a missing channel
    axis would otherwise be read as classes).
    """
    check_nhwc("probabilities", logits=logits)
    act = activation("probabilities", mode, logits.shape[-1])
    x = logits.astype(jnp.float32)
    if not from_logits:
        return x
    return jax.nn.sigmoid(x) if act == "sigmoid" else jax.nn.softmax(x, axis=-1)


def _class_weights(weights, n_classes: int):
    """Per-class weights of shape (n_classes,) from None, a scalar, or a sequence."""
    if weights is None:
        return jnp.ones((n_classes,), jnp.float32)
    w = jnp.asarray(weights, jnp.float32)
    if w.ndim == 0:
        return jnp.full((n_classes,), w)
    if w.shape != (n_classes,):
        raise ValueError(f"need {n_classes} class weights (C=1 counts as background, foreground); got {w.shape}")
    return w


# --- cross-entropy family -----------------------------------------------------------------------

def _log_probs_and_labels(logits, labels, from_logits: bool, act: str):
    """log ŷ_k and y_k, classes k last: softmax (N, H, W, C), sigmoid (N, H, W, C, 2) = (1−y, y) per channel."""
    x = logits.astype(jnp.float32)
    y = labels.astype(jnp.float32)
    if act == "sigmoid":
        y = jnp.stack([1.0 - y, y], axis=-1)
        if from_logits:
            return jnp.stack([jax.nn.log_sigmoid(-x), jax.nn.log_sigmoid(x)], axis=-1), y
        x = jnp.stack([1.0 - x, x], axis=-1)
    elif from_logits:
        return jax.nn.log_softmax(x, axis=-1), y
    return jnp.log(jnp.clip(x, _EPS, 1.0)), y


def _sigmoid_pairs(neg, pos, n_channels: int):
    """(C, 2) weights (background, foreground) per sigmoid channel from scalars or (C,) sequences."""
    def per_channel(v, what):
        v = jnp.asarray(v, jnp.float32)
        if v.ndim == 0:
            return jnp.full((n_channels,), v)
        if v.shape != (n_channels,):
            raise ValueError(f"need one {what} weight per channel ({n_channels}); got shape {v.shape}")
        return v
    return jnp.stack([per_channel(neg, "negative"), per_channel(pos, "positive")], axis=-1)


def _ce_weights(weights, act: str, mode, n_channels: int, lin_alpha: bool):
    """Weights of the classes k: (C,) softmax, (C, 2) sigmoid (module docstring; ``lin_alpha``: focal's α)."""
    if act == "softmax":
        return _class_weights(weights, n_channels)
    if mode != "multilabel":  # binary: the pair (background, foreground), Lin's α ↦ (1 − α, α)
        if weights is not None and lin_alpha and np.ndim(weights) == 0:
            weights = (1.0 - weights, weights)
        return _class_weights(weights, 2)[None, :]
    if weights is None:
        return jnp.ones((n_channels, 2), jnp.float32)
    if lin_alpha:  # multilabel: α_c on positives, 1 − α_c on negatives of channel c
        a = jnp.asarray(weights, jnp.float32)
        return _sigmoid_pairs(1.0 - a, a, n_channels)
    return _sigmoid_pairs(weights, weights, n_channels)


def _pixel_mean(per, w, y, act, normalization, pixel_weight):
    """Σ m·l / Σ m (``'pixels'``) or Σ m·l / Σ m·Σ_k w_k y_k (``'weights'``); exactly mean(l) by default."""
    if normalization not in _WEIGHT_NORMALIZATIONS:
        raise ValueError(f"weight_normalization must be 'pixels' or 'weights'; got {normalization!r}")
    if normalization == "pixels" and pixel_weight is None:
        return jnp.mean(per)
    m = jnp.ones(per.shape[:3] + (1,), jnp.float32) if pixel_weight is None else pixel_weight.astype(jnp.float32)
    m = m[..., 0] if act == "softmax" else m  # per: (N, H, W) softmax, (N, H, W, C) sigmoid
    if normalization == "pixels":
        den = jnp.sum(m * jnp.ones_like(per))
    else:
        den = jnp.sum(m * jnp.sum(w * y, axis=-1))
    return safe_divide(jnp.sum(m * per), den)


def _cross_entropy(fn, logits, labels, weights, gamma=0.0, label_smoothing=0.0, normalization="pixels",
                   from_logits=True, mode=None, pixel_weight=None, lin_alpha=False, sigmoid_pairs=None):
    """The CE/focal family of the module docstring; ``weights`` as the public loss's parameter
    (``sigmoid_pairs``: ready (C, 2) weights replacing it for sigmoid channels)."""
    check_nhwc(fn, logits=logits, labels=labels)
    check_pixel_weight(fn, pixel_weight, logits)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1]; got {label_smoothing}")
    act = activation(fn, mode, logits.shape[-1])
    logp, y = _log_probs_and_labels(logits, labels, from_logits, act)
    if act == "sigmoid" and sigmoid_pairs is not None:
        w = sigmoid_pairs(logits.shape[-1])
    else:
        w = _ce_weights(weights, act, mode, logits.shape[-1], lin_alpha)
    q = y if not label_smoothing else (1.0 - label_smoothing) * y + label_smoothing / y.shape[-1]
    modulator = 1.0 if gamma == 0 else (-jnp.expm1(logp)) ** gamma  # (1 − ŷ)^γ
    per = -jnp.sum(w * modulator * q * logp, axis=-1)
    return _pixel_mean(per, w, y, act, normalization, pixel_weight)


@LOSSES.register("focal")
def focal(logits, labels, gamma: float = 2.0, alpha: float | Sequence[float] | None = None,
          from_logits: bool = True, mode: str | None = None, pixel_weight=None):
    """Focal loss −mean Σ_k α_k (1 − ŷ_k)^γ y_k log ŷ_k (Lin et al. 2017; thesis §5.2).

    ``alpha``: None (all 1) or, by mode —
      * softmax (C>1, 'multiclass'): a scalar (every class) or one weight per class (C,);
      * binary (C=1): a scalar a — foreground a, background 1 − a (Lin et al.'s
        α-balancing, torchvision/smp ``alpha``) — or the pair (background, foreground);
      * 'multilabel': a scalar a or a list (α_1..α_C), one per class: channel c
        weighs its positives α_c and its negatives 1 − α_c (smp/torchvision
        ``sigmoid_focal_loss`` per class).
    Weights are not normalised: the loss is the plain mean over the non-ignored
    pixels (× channels for sigmoids), as torchvision's and smp's focal losses.
    ``gamma=0`` is cross-entropy. ``pixel_weight``: module docstring.
    """
    return _cross_entropy("focal", logits, labels, alpha, gamma=gamma, from_logits=from_logits, mode=mode,
                          pixel_weight=pixel_weight, lin_alpha=True)


@LOSSES.register("cross_entropy")
def cross_entropy(logits, labels, class_weights: Sequence[float] | None = None, from_logits: bool = True,
                  label_smoothing: float = 0.0, weight_normalization: str = "pixels", mode: str | None = None,
                  pixel_weight=None):
    """(Weighted) cross-entropy −Σ m Σ_k w_k q_k log ŷ_k / D (thesis §5.2, L_CE / L_WCE).

    Softmax (C>1, 'multiclass'): ``class_weights`` (C,); binary (C=1): (background,
    foreground); 'multilabel': one weight per channel (C,), applied to both terms of
    that channel's BCE (PyTorch ``BCEWithLogitsLoss(weight=w)`` broadcast on channels).
    ``label_smoothing`` ε: q = (1 − ε)·y + ε/C for softmax (PyTorch ``label_smoothing``),
    q = (1 − ε)·y + ε/2 for sigmoids (= smp ``smooth_factor`` ε/2).
    ``weight_normalization``: ``'pixels'`` (default, thesis): D = Σ m, the number
    of non-ignored pixels (× C for sigmoids); ``'weights'``: D = Σ m Σ_k w_k y_k,
    PyTorch's ``CrossEntropyLoss(weight, reduction='mean')`` = Σᵢ w_{yᵢ} lᵢ / Σᵢ w_{yᵢ}
    (with label smoothing too; its ``ignore_index`` is ``pixel_weight`` = 0).
    """
    return _cross_entropy("cross_entropy", logits, labels, class_weights, label_smoothing=label_smoothing,
                          normalization=weight_normalization, from_logits=from_logits, mode=mode,
                          pixel_weight=pixel_weight)


@LOSSES.register("bce")
def bce(logits, labels, from_logits: bool = True, label_smoothing: float = 0.0, mode: str | None = None,
        pixel_weight=None):
    """Binary cross-entropy −mean(q log ŷ + (1−q) log(1−ŷ)) (thesis §5.2, L_CE with C=2).

    q = (1 − ε)·y + ε/2 with ε = ``label_smoothing`` (smp's ``SoftBCEWithLogitsLoss``
    ``smooth_factor=s`` is ε = 2s). ``mode='multilabel'``: one BCE per channel, mean
    over pixels and channels (PyTorch ``BCEWithLogitsLoss``). The mean is over the
    non-ignored pixels (``pixel_weight``).
    """
    return _cross_entropy("bce", logits, labels, None, label_smoothing=label_smoothing, from_logits=from_logits,
                          mode=mode, pixel_weight=pixel_weight)


@LOSSES.register("weighted_bce")
def weighted_bce(logits, labels, pos_weight: float | Sequence[float] = 0.5,
                 neg_weight: float | Sequence[float] | None = None, from_logits: bool = True,
                 label_smoothing: float = 0.0, weight_normalization: str = "pixels", mode: str | None = None,
                 pixel_weight=None):
    """Weighted BCE −mean(w₊ q log ŷ + w₋ (1−q) log(1−ŷ)) (thesis §5.2, L_WCE; Table 8).

    ``neg_weight`` defaults to 1 − ``pos_weight``, so Table 8's "weight of positive
    examples: 0.7" is 0.7 on foreground and 0.3 on background pixels. (PyTorch's
    ``BCEWithLogitsLoss(pos_weight=p)`` is ``pos_weight=p, neg_weight=1``.) In
    'multilabel' mode either may be a list, one per channel. ``label_smoothing``
    and ``weight_normalization`` ('weights': divide by Σ m (w₊ y + w₋ (1 − y))):
    as ``cross_entropy``.
    """
    neg = (1.0 - np.asarray(pos_weight, np.float32)) if neg_weight is None else neg_weight
    pairs = lambda c: _sigmoid_pairs(neg, pos_weight, c if mode == "multilabel" else 1)  # noqa: E731
    return _cross_entropy("weighted_bce", logits, labels, (neg, pos_weight), label_smoothing=label_smoothing,
                          normalization=weight_normalization, from_logits=from_logits, mode=mode,
                          pixel_weight=pixel_weight, sigmoid_pairs=pairs)


# --- overlap family ---------------------------------------------------------------------------

def soft_confusion(probs, labels, batchwise: bool, pixel_weight=None):
    """Soft TP = Σ m·y·ŷ, FP = Σ m·(1−y)·ŷ, FN = Σ m·y·(1−ŷ) (thesis §5.2, Definition).

    ``probs``, ``labels`` (N, H, W, C); ``pixel_weight`` m (N, H, W, 1) or None (all 1).
    Sums over pixels (and the batch if ``batchwise``): shapes (C,) or (N, C).
    """
    check_nhwc("soft_confusion", probs=probs, labels=labels)
    check_pixel_weight("soft_confusion", pixel_weight, probs)
    axes = (0, 1, 2) if batchwise else (1, 2)
    labels = labels.astype(jnp.float32)
    if pixel_weight is not None:
        m = pixel_weight.astype(jnp.float32)
        pm = probs * m
        return (jnp.sum(pm * labels, axis=axes), jnp.sum(pm * (1.0 - labels), axis=axes),
                jnp.sum((m - pm) * labels, axis=axes))
    tp = jnp.sum(probs * labels, axis=axes)
    fp = jnp.sum(probs * (1.0 - labels), axis=axes)
    fn = jnp.sum((1.0 - probs) * labels, axis=axes)
    return tp, fp, fn


def _smoothing(fn: str, smooth, smooth_nr, smooth_dr, default: float = 1.0):
    """(ε_n, ε_d): ``smooth`` sets both; ``smooth_nr``/``smooth_dr`` set one each (the other keeps the default)."""
    if smooth is not None and (smooth_nr is not None or smooth_dr is not None):
        raise ValueError(f"{fn}: give either smooth (sets numerator and denominator) or smooth_nr/smooth_dr, "
                         f"not both; got smooth={smooth}, smooth_nr={smooth_nr}, smooth_dr={smooth_dr}")
    s = default if smooth is None else smooth
    return (s if smooth_nr is None else smooth_nr), (s if smooth_dr is None else smooth_dr)


def _overlap_weights(fn: str, class_weights, n_channels: int, drop_background: bool):
    """(K,) weights of the scored classes or None; C values (the first dropped with the background) or C−1."""
    if class_weights is None:
        return None
    w = jnp.asarray(class_weights, jnp.float32)
    k = n_channels - 1 if drop_background else n_channels
    if w.ndim == 0:
        return jnp.full((k,), w)
    if w.shape == (n_channels,):
        return w[1:] if drop_background else w
    if w.shape == (k,):
        return w
    also = f" or {k} (without the background)" if drop_background else ""
    raise ValueError(f"{fn}: class_weights needs {n_channels} values (one per channel){also}; got shape {w.shape}")


def _confusion_terms(probs, labels, batchwise, squared_pred, pixel_weight):
    """TP, FN, FP and the ground-truth total Σ m·y per class (module docstring, ``squared_pred`` included)."""
    tp, fp, fn = soft_confusion(probs, labels, batchwise, pixel_weight)
    axes = (0, 1, 2) if batchwise else (1, 2)
    y = labels.astype(jnp.float32)
    m = 1.0 if pixel_weight is None else pixel_weight.astype(jnp.float32)
    if squared_pred:
        fp = jnp.sum(m * probs * probs, axis=axes) - tp
        fn = jnp.sum(m * y * y, axis=axes) - tp
    return tp, fn, fp, jnp.sum(m * y, axis=axes)


def _reduce_classes(fn, loss, gt_total, class_weights, ignore_empty, n_channels, drop_background):
    """Mean over (image, class) entries: weighted by class, empty ground truths dropped or zeroed."""
    ignore_empty = False if ignore_empty is None else ignore_empty
    if not any(ignore_empty is v or isinstance(ignore_empty, str) and ignore_empty == v for v in _IGNORE_EMPTY):
        raise ValueError(f"{fn}: ignore_empty must be False, True ('drop') or 'zero'; got {ignore_empty!r}")
    w = _overlap_weights(fn, class_weights, n_channels, drop_background)
    if drop_background:
        loss, gt_total = loss[..., 1:], gt_total[..., 1:]
    if not ignore_empty and w is None:
        return jnp.mean(loss)
    v = jnp.ones_like(loss) if w is None else jnp.broadcast_to(w, loss.shape)
    if not ignore_empty:
        return safe_divide(jnp.sum(v * loss), jnp.sum(v))
    present = (gt_total > 0).astype(jnp.float32)
    den = jnp.sum(v) if ignore_empty == "zero" else jnp.sum(v * present)
    return safe_divide(jnp.sum(v * present * loss), den)


def _overlap(fn, logits, labels, alpha, beta, smooth_nr, smooth_dr, *, gamma=None, squared_pred=False,
             class_weights=None, ignore_empty=False, from_logits=True, batchwise=False, include_background=True,
             mode=None, pixel_weight=None):
    """Tversky-type loss per the module docstring: 1 − (TP + ε_n)/(TP + α·FN + β·FP + ε_d), ^γ, reduced."""
    check_nhwc(fn, logits=logits, labels=labels)
    check_pixel_weight(fn, pixel_weight, logits)
    activation(fn, mode, logits.shape[-1])
    probs = probabilities(logits, from_logits, mode)
    tp, fn_, fp, gt_total = _confusion_terms(probs, labels, batchwise, squared_pred, pixel_weight)
    den = tp + alpha * fn_ + beta * fp + smooth_dr
    score = jnp.where(den > 0, (tp + smooth_nr) / jnp.where(den > 0, den, 1.0), 1.0)  # 0/0: both empty → 1
    loss = 1.0 - score
    if gamma is not None:
        # Tversky ∈ [0, 1]; the floor keeps the gradient finite for γ < 1 at a perfect fit, which is exactly 0.
        loss = jnp.where(loss > 0, jnp.maximum(loss, 1e-12) ** gamma, 0.0)
    c = logits.shape[-1]
    return _reduce_classes(fn, loss, gt_total, class_weights, ignore_empty, c, not include_background and c > 1)


_OVERLAP_OPTIONS = """
    Options (module docstring for the formulas):
      smooth: ε for numerator and denominator (default 1); ``smooth_nr``/``smooth_dr``
        (MONAI's names) set ε_n, ε_d separately — giving ``smooth`` with either is a
        ValueError; one left unset keeps the default 1.
      squared_pred: squared totals Σŷ², Σy² in the denominator (MONAI ``squared_pred``).
      class_weights: per-class weights w_c, loss = Σ w_c L_c / Σ w_c over the scored
        classes (C values, or C−1 when ``include_background=False`` drops channel 0).
        MONAI's ``weight`` gives Σ w_c L_c / C (ours × mean(w)).
      ignore_empty: False (default) keeps every class; True/'drop' leaves classes whose
        ground truth is empty (Σ m·y = 0, per image unless batchwise) out of the
        average (MONAI ``DiceMetric(ignore_empty=True)``); 'zero' gives them loss 0 but
        keeps them in the denominator — smp's ``loss *= mask; loss.mean()``. None
        left: 0.
      mode, pixel_weight: module docstring. Labels may be soft (no thresholding).
    """


@LOSSES.register("tversky")
def tversky(logits, labels, alpha: float = 0.5, beta: float = 0.5, smooth: float | None = None,
            from_logits: bool = True, batchwise: bool = False, include_background: bool = True,
            smooth_nr: float | None = None, smooth_dr: float | None = None, squared_pred: bool = False,
            class_weights: Sequence[float] | None = None, ignore_empty: bool | str = False,
            mode: str | None = None, pixel_weight=None):
    """Tversky loss 1 − (TP + ε_n)/(TP + α·FN + β·FP + ε_d) (Salehi et al. 2017; thesis §5.2).

    α weighs false negatives, β false positives (MONAI's and smp's ``TverskyLoss``
    put α on FP: their (α, β) is our (β, α)); averaged over classes and images.
    ``squared_pred``: FN = Σy² − TP, FP = Σŷ² − TP.
    """
    nr, dr = _smoothing("tversky", smooth, smooth_nr, smooth_dr)
    return _overlap("tversky", logits, labels, alpha, beta, nr, dr, squared_pred=squared_pred,
                    class_weights=class_weights, ignore_empty=ignore_empty, from_logits=from_logits,
                    batchwise=batchwise, include_background=include_background, mode=mode,
                    pixel_weight=pixel_weight)


@LOSSES.register("focal_tversky")
def focal_tversky(logits, labels, alpha: float = 0.5, beta: float = 0.5, gamma: float = 2.0,
                  smooth: float | None = None, from_logits: bool = True, batchwise: bool = False,
                  include_background: bool = True, smooth_nr: float | None = None, smooth_dr: float | None = None,
                  squared_pred: bool = False, class_weights: Sequence[float] | None = None,
                  ignore_empty: bool | str = False, mode: str | None = None, pixel_weight=None):
    """Focal Tversky loss Tversky^γ per class/image, then averaged (Abraham & Khan 2019; docs/architecture.md).

    Defaults follow thesis Table 5 (α=β=0.5, "focal gamma" 2). The options are
    Tversky's; the class weights and ``ignore_empty`` apply to Tversky^γ.
    """
    nr, dr = _smoothing("focal_tversky", smooth, smooth_nr, smooth_dr)
    return _overlap("focal_tversky", logits, labels, alpha, beta, nr, dr, gamma=gamma, squared_pred=squared_pred,
                    class_weights=class_weights, ignore_empty=ignore_empty, from_logits=from_logits,
                    batchwise=batchwise, include_background=include_background, mode=mode,
                    pixel_weight=pixel_weight)


@LOSSES.register("dice")
def dice(logits, labels, smooth: float | None = None, from_logits: bool = True, batchwise: bool = False,
         include_background: bool = True, smooth_nr: float | None = None, smooth_dr: float | None = None,
         squared_pred: bool = False, class_weights: Sequence[float] | None = None,
         ignore_empty: bool | str = False, mode: str | None = None, pixel_weight=None):
    """Soft Dice loss 1 − (2TP + ε_n)/(2TP + FP + FN + ε_d) (Milletari et al. 2016; thesis §5.2).

    = 1 − (2Σyŷ + ε_n)/(Σŷ + Σy + ε_d), MONAI ``DiceLoss`` term for term
    (``squared_pred``: Σŷ² + Σy²). smp's ``DiceLoss`` is ``batchwise=True``,
    ``ignore_empty='zero'``, ``smooth=0`` (its eps clamp aside).
    """
    nr, dr = _smoothing("dice", smooth, smooth_nr, smooth_dr)
    return _overlap("dice", logits, labels, 0.5, 0.5, nr / 2.0, dr / 2.0, squared_pred=squared_pred,
                    class_weights=class_weights, ignore_empty=ignore_empty, from_logits=from_logits,
                    batchwise=batchwise, include_background=include_background, mode=mode,
                    pixel_weight=pixel_weight)


@LOSSES.register("jaccard")
def jaccard(logits, labels, smooth: float | None = None, from_logits: bool = True, batchwise: bool = False,
            include_background: bool = True, smooth_nr: float | None = None, smooth_dr: float | None = None,
            squared_pred: bool = False, class_weights: Sequence[float] | None = None,
            ignore_empty: bool | str = False, mode: str | None = None, pixel_weight=None):
    """Soft Jaccard loss 1 − (TP + ε_n)/(TP + FP + FN + ε_d) (thesis §5.2).

    ``squared_pred``: denominator Σŷ² + Σy² − TP + ε_d. MONAI's
    ``DiceLoss(jaccard=True, smooth_nr=a, smooth_dr=b)`` is ours with ε_n = a/2, ε_d = b/2.
    """
    nr, dr = _smoothing("jaccard", smooth, smooth_nr, smooth_dr)
    return _overlap("jaccard", logits, labels, 1.0, 1.0, nr, dr, squared_pred=squared_pred,
                    class_weights=class_weights, ignore_empty=ignore_empty, from_logits=from_logits,
                    batchwise=batchwise, include_background=include_background, mode=mode,
                    pixel_weight=pixel_weight)


for _f in (tversky, focal_tversky, dice, jaccard):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ += _OVERLAP_OPTIONS
