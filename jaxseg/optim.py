"""Optimizers from ``config.optimizer`` (thesis Tables 5-8: Adam, β1, β2, weight decay).

``adam`` follows PyTorch's ``torch.optim.Adam`` (the thesis's optimizer): weight
decay is L2 added to the gradient before the Adam moments,
  g ← g + λθ;  θ ← θ − lr · m̂ / (√v̂ + ε).
``adamw`` decouples it (Loshchilov & Hutter 2019): θ ← θ − lr·(m̂/(√v̂+ε) + λθ).
"""

from __future__ import annotations

from typing import Any, Mapping

import optax

OPTIMIZERS = ("adam", "adamw", "sgd")


def build_optimizer(opt_config: Mapping[str, Any]) -> optax.GradientTransformation:
    cfg = dict(opt_config)
    name = cfg.get("name", "adam")
    lr = cfg.get("learning_rate", 1e-3)
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
                           optax.sgd(lr, momentum=cfg.get("momentum", 0.9)))
    raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}")
