"""Weighted combinations of losses with an epoch schedule α(k) (thesis §5.2.2; Kervadec et al. 2019).

With terms L₁..L_n (static weights w₁..w_n, default 1) the last term is the
scheduled one (e.g. the boundary loss) and the others form the regional part
R = Σ_{i<n} wᵢ·Lᵢ:

* ``'sum'``:    L = R + α(k)·w_n·L_n          (no schedule: α ≡ 1, L = Σ wᵢ·Lᵢ)
* ``'convex'``: L = (1 − α(k))·R + α(k)·w_n·L_n

α by epoch k (0-based, a traced int32 — every schedule is jnp arithmetic):

* ``constant``    α(k) = alpha
* ``linear``      α(k) = alpha0·k, capped at ``max`` if given     (thesis: sum form)
* ``exponential`` α(k) = 1 − e^(−β·k)                              (thesis: convex form)
* ``rebalance``   α(k) = min(alpha + step·⌊k / every⌋, 1 − floor)  (Table 7 "linear
  rebalance": every ``every`` epochs ``step`` of weight moves from the regional
  part to the last term, the regional weight never below ``floor``; convex only)
"""

from __future__ import annotations

import inspect

import jax.numpy as jnp

__all__ = ["SCHEDULES", "COMBINE_MODES", "schedule_fn", "combine"]


def constant(epoch, alpha: float = 0.5):
    """α(k) = alpha."""
    return jnp.full((), alpha, jnp.float32) + 0.0 * epoch


def linear(epoch, alpha0: float = 0.01, max: float | None = None):  # noqa: A002 - config name
    """α(k) = alpha0·k (thesis §5.2.2), optionally capped at ``max``."""
    a = alpha0 * jnp.asarray(epoch, jnp.float32)
    return a if max is None else jnp.minimum(a, max)


def exponential(epoch, beta: float = 0.1):
    """α(k) = 1 − e^(−β·k) (thesis §5.2.2, β ∈ [0, 1])."""
    return -jnp.expm1(-beta * jnp.asarray(epoch, jnp.float32))


def rebalance(epoch, alpha: float = 0.5, every: int = 20, step: float = 0.2, floor: float = 0.1):
    """α(k) = min(alpha + step·⌊k/every⌋, 1 − floor): thesis Table 7's "linear rebalance".

    Kervadec et al.'s schedule moves weight from the regional to the boundary
    term (their ``StealWeight``, regional weight ≥ 0.1). Table 7: alpha=0.5,
    every=20, step=0.2 → weights (0.5, 0.5), (0.3, 0.7), (0.1, 0.9), (0.1, 0.9), ...
    """
    moves = jnp.floor_divide(jnp.asarray(epoch, jnp.int32), every).astype(jnp.float32)
    return jnp.minimum(alpha + step * moves, 1.0 - floor)


SCHEDULES = {"constant": constant, "linear": linear, "exponential": exponential, "rebalance": rebalance}
COMBINE_MODES = ("sum", "convex")


def schedule_fn(schedule: dict, combine_mode: str):
    """``epoch -> α`` from ``{'kind': ..., **params}``; ValueError on unknown kinds or parameters."""
    params = dict(schedule)
    kind = params.pop("kind", None)
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule kind {kind!r}; available: {', '.join(SCHEDULES)}")
    fn = SCHEDULES[kind]
    accepted = list(inspect.signature(fn).parameters)[1:]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"schedule {kind!r} has no parameter(s) {unknown}; parameters: {accepted}")
    if kind == "rebalance" and combine_mode != "convex":
        raise ValueError("schedule 'rebalance' moves weight between terms: use combine='convex'")
    return lambda epoch: fn(epoch, **params)


def combine(values, weights, alpha, mode: str):
    """Total loss and the effective weight of each term, per the module docstring."""
    *regional, last = [w * v for w, v in zip(weights, values)]
    if mode not in COMBINE_MODES:
        raise ValueError(f"unknown combine {mode!r}; available: {', '.join(COMBINE_MODES)}")
    r_weight = 1.0 if mode == "sum" else 1.0 - alpha
    total = r_weight * sum(regional, jnp.zeros((), jnp.float32)) + alpha * last
    effective = [r_weight * w for w in weights[:-1]] + [alpha * weights[-1]]
    return total, effective
