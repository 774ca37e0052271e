"""The Lovász extension of any set function, and a brute-force submodularity check (thesis §5.2.1).

A set function F on V = {0..p−1} with F(∅) = 0 is given as a jnp-traceable
``set_fn(s) -> scalar`` of the characteristic vector s ∈ {0,1}^p (float32).

* Lovász extension (thesis §5.2.1, Definition; Bach 2013, Def. 3.1):
  f(x) = Σᵢ x_{πᵢ} · (F({π₁..πᵢ}) − F({π₁..π_{i−1}})),  x_{π₁} ≥ … ≥ x_{π_p}.
* Submodular (thesis eq. (2), Bach 2013 Prop. 2.3): for every A and i ≠ j ∉ A,
  F(A ∪ {i}) − F(A) ≥ F(A ∪ {i, j}) − F(A ∪ {j}) — equivalent to eq. (1), and
  to convexity of f (Theorem 1).

``tversky_set_loss`` gives the set functions of the segmentation losses on the
misclassified set M for a fixed ground truth: α = β = 1 is F_J (Jaccard, thesis
Theorem 2), α = β = ½ is F_D = 1 − Dice.
"""

from __future__ import annotations

import itertools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["lovasz_extension", "submodularity_violation", "is_submodular", "tversky_set_loss"]


def lovasz_extension(set_fn: Callable, x):
    """f(x) = Σᵢ x_{πᵢ} (F(S_i) − F(S_{i−1})), S_i the i largest entries of x (Lovász 1983).

    ``x``: (p,) vector. ``set_fn`` must satisfy F(∅) = 0 and be jnp-traceable
    (it is ``vmap``-ed over the p + 1 nested sets).
    """
    x = jnp.asarray(x, jnp.float32)
    p = x.shape[-1]
    perm = jnp.argsort(-x)
    rank = jnp.argsort(perm)
    nested = (rank[None, :] < jnp.arange(p + 1)[:, None]).astype(jnp.float32)  # S_0 .. S_p
    values = jax.vmap(set_fn)(nested)
    return jnp.dot(x[perm], values[1:] - values[:-1])


def _all_values(set_fn: Callable, p: int) -> np.ndarray:
    """F on all 2^p subsets, indexed by bitmask, in float64 where set_fn allows it."""
    masks = np.arange(2 ** p)
    sets = ((masks[:, None] >> np.arange(p)[None, :]) & 1).astype(np.float32)
    return np.asarray(jax.vmap(set_fn)(jnp.asarray(sets)), np.float64)


def submodularity_violation(set_fn: Callable, p: int, tol: float = 1e-6):
    """The worst violation of F(A+i) − F(A) ≥ F(A+i+j) − F(A+j) over all A, i ≠ j ∉ A.

    Brute force over the 2^p subsets (p ≤ ~14). Returns None if F is submodular
    (within ``tol``), else ``(A, i, j, gap)`` with A a sorted tuple of elements
    and gap = F(A+i+j) − F(A+j) − F(A+i) + F(A) > tol.
    """
    values = _all_values(set_fn, p)
    masks = np.arange(2 ** p)
    worst = None
    for i, j in itertools.combinations(range(p), 2):
        a = masks[((masks >> i) & 1 == 0) & ((masks >> j) & 1 == 0)]
        bi, bj = 1 << i, 1 << j
        gap = values[a | bi | bj] - values[a | bj] - values[a | bi] + values[a]
        k = int(np.argmax(gap))
        if gap[k] > tol and (worst is None or gap[k] > worst[3]):
            worst = (tuple(e for e in range(p) if a[k] >> e & 1), i, j, float(gap[k]))
    return worst


def is_submodular(set_fn: Callable, p: int, tol: float = 1e-6) -> bool:
    """True iff F(A) + F(B) ≥ F(A∩B) + F(A∪B) for all A, B ⊆ {0..p−1} (thesis eq. (1)), by brute force."""
    return submodularity_violation(set_fn, p, tol) is None


def tversky_set_loss(gt, alpha: float = 1.0, beta: float = 1.0) -> Callable:
    """F(M) = (α·FN + β·FP)/(TP + α·FN + β·FP) of the misclassified set M (thesis §5.2.1).

    For ground truth ``gt`` ∈ {0,1}^p: FN = |M ∩ P|, FP = |M \\ P|, TP = |P| − FN.
    α = β = 1: F_J(M) = |M|/|M ∪ P|; α = β = ½: 1 − Dice = |M|/(|P| + |M ∪ P|).
    F(∅) = 0; F is 0 where the denominator is 0.
    """
    gt = jnp.asarray(gt, jnp.float32)

    def set_fn(m):
        fn = jnp.sum(gt * m)
        fp = jnp.sum((1.0 - gt) * m)
        num = alpha * fn + beta * fp
        den = jnp.sum(gt) - fn + num
        return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)

    return set_fn
