"""Regional losses of thesis §5.2 (formulas pinned in DESIGN.md).

Soft confusion terms on probabilities ŷ ∈ [0,1] and labels y ∈ {0,1}
(thesis §5.2, Definition):  TP = yᵀŷ,  FP = (1−y)ᵀŷ,  FN = yᵀ(1−ŷ).

* BCE  = −mean(y·log ŷ + (1−y)·log(1−ŷ))
* Dice = 1 − (2TP + ε) / (2TP + FP + FN + ε)

Inputs are NHWC. ``batchwise=True`` sums TP/FP/FN over the whole batch
(thesis Table 5, "batchwise loss"); ``False`` computes the ratio per image and
averages. Channels are classes; the loss is averaged over them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def probabilities(logits, from_logits: bool = True):
    """Sigmoid of logits (binary, C=1) or softmax over channels (C>1); identity if probs."""
    if not from_logits:
        return logits.astype(jnp.float32)
    logits = logits.astype(jnp.float32)
    if logits.shape[-1] == 1:
        return jax.nn.sigmoid(logits)
    return jax.nn.softmax(logits, axis=-1)


def soft_confusion(probs, labels, batchwise: bool):
    """Soft TP, FP, FN summed over pixels: shape (C,) if batchwise else (N, C)."""
    axes = (0, 1, 2) if batchwise else (1, 2)
    labels = labels.astype(jnp.float32)
    tp = jnp.sum(probs * labels, axis=axes)
    fp = jnp.sum(probs * (1.0 - labels), axis=axes)
    fn = jnp.sum((1.0 - probs) * labels, axis=axes)
    return tp, fp, fn


def bce(logits, labels, from_logits: bool = True):
    """Binary cross-entropy, mean over pixels: −mean(y log ŷ + (1−y) log(1−ŷ))."""
    labels = labels.astype(jnp.float32)
    if from_logits:
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), labels))
    p = jnp.clip(logits.astype(jnp.float32), 1e-7, 1.0 - 1e-7)
    return -jnp.mean(labels * jnp.log(p) + (1.0 - labels) * jnp.log1p(-p))


def dice(logits, labels, from_logits: bool = True, smooth: float = 1.0, batchwise: bool = False):
    """Soft Dice loss 1 − (2TP+ε)/(2TP+FP+FN+ε) (thesis §5.2)."""
    tp, fp, fn = soft_confusion(probabilities(logits, from_logits), labels, batchwise)
    return jnp.mean(1.0 - (2.0 * tp + smooth) / (2.0 * tp + fp + fn + smooth))
