"""Optimizers and learning-rate schedules from ``config.optimizer``.

Optimizers (thesis Tables 5-8 use Adam with β1, β2 and weight decay):

* ``adam`` follows PyTorch's ``torch.optim.Adam`` (the thesis's optimizer):
  weight decay is L2 added to the gradient before the Adam moments,
  g ← g + λθ;  θ ← θ − η_t · m̂ / (√v̂ + ε).
* ``adamw`` decouples it (Loshchilov & Hutter 2019): θ ← θ − η_t·(m̂/(√v̂+ε) + λθ).
* ``sgd`` with momentum (nnU-Net's choice, with the ``poly`` schedule).

Schedules of the learning rate η_t at step t of T = epochs × steps per epoch
(``config.optimizer.schedule``; ``warmup_steps`` ramps linearly from 0 first):

* ``constant``: η_t = η (the thesis);
* ``cosine``: η_t = η · ½(1 + cos(π t / T)) (Loshchilov & Hutter 2017);
* ``poly``: η_t = η · (1 − t/T)^0.9 (nnU-Net, Isensee et al. 2021).

``freeze_encoder`` keeps a pretrained encoder's weights fixed for the first K epochs
(``config.model.freeze_encoder_epochs``; smp/fine-tuning practice): a step-counting mask.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "poly")


def learning_rate_schedule(opt_config: Mapping[str, Any], total_steps: int | None = None):
    """η_t as an optax schedule (a float for ``constant`` without warm-up)."""
    cfg = dict(opt_config)
    lr = cfg.get("learning_rate", 1e-3)
    kind = cfg.get("schedule", "constant")
    warmup = int(cfg.get("warmup_steps", 0))
    if kind not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {kind!r}; available: {', '.join(SCHEDULES)}")
    if kind == "constant" and not warmup:
        return lr
    if kind != "constant" and not total_steps:
        raise ValueError(f"the {kind!r} schedule needs the total number of steps")
    decay_steps = max(1, (total_steps or 1) - warmup)
    if kind == "constant":
        main = optax.constant_schedule(lr)
    elif kind == "cosine":
        main = optax.cosine_decay_schedule(lr, decay_steps)
    else:
        main = optax.polynomial_schedule(lr, 0.0, power=0.9, transition_steps=decay_steps)
    if not warmup:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def build_optimizer(opt_config: Mapping[str, Any], total_steps: int | None = None) -> optax.GradientTransformation:
    cfg = dict(opt_config)
    name = cfg.get("name", "adam")
    lr = learning_rate_schedule(cfg, total_steps)
    b1, b2 = cfg.get("b1", 0.9), cfg.get("b2", 0.999)
    eps = cfg.get("eps", 1e-8)
    wd = cfg.get("weight_decay", 0.0)
    if name == "adam":
        chain = [optax.add_decayed_weights(wd)] if wd else []
        return optax.chain(*chain, optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                           optax.scale_by_learning_rate(lr))
    if name == "adamw":
        return optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd)
    if name == "sgd":
        return optax.chain(optax.add_decayed_weights(wd) if wd else optax.identity(),
                           optax.sgd(lr, momentum=cfg.get("momentum", 0.9), nesterov=cfg.get("nesterov", False)))
    raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}")


class DelayedState(NamedTuple):
    count: jax.Array  # updates seen so far
    inner: Any  # the wrapped transformation's state, untouched while frozen


def delayed(tx: optax.GradientTransformation, num_steps: int) -> optax.GradientTransformation:
    """``tx`` that starts after ``num_steps`` updates: zero updates until then, and ``tx``'s state (Adam's
    moments and step count, weight decay) untouched, so it then starts exactly as a fresh ``tx`` — as
    PyTorch's optimizers treat a parameter with ``requires_grad=False`` (no gradient, no state)."""
    def init(params):
        return DelayedState(jnp.zeros([], jnp.int32), tx.init(params))

    def update(updates, state, params=None):
        def frozen(_):
            return jax.tree_util.tree_map(jnp.zeros_like, updates), state.inner

        def live(_):
            return tx.update(updates, state.inner, params)

        new_updates, inner = jax.lax.cond(state.count < num_steps, frozen, live, None)
        return new_updates, DelayedState(optax.safe_int32_increment(state.count), inner)

    return optax.GradientTransformation(init, update)


def freeze_encoder(tx: optax.GradientTransformation, num_steps: int,
                   prefix: str = "encoder") -> optax.GradientTransformation:
    """``tx`` with the parameters under ``params[prefix]`` frozen for ``num_steps`` steps
    (``config.model.freeze_encoder_epochs`` × steps per epoch): they get their own ``delayed`` copy
    of ``tx``, the rest ``tx`` itself (``optax.multi_transform``)."""
    if num_steps <= 0:
        return tx

    def labels(params):
        return {k: jax.tree_util.tree_map(lambda _, k=k: "frozen" if k == prefix else "free", v)
                for k, v in params.items()}

    return optax.multi_transform({"frozen": delayed(tx, num_steps), "free": tx}, labels)
