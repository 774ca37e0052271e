"""Model registry: ``get_model(config.model)`` and ``available()``."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax.numpy as jnp

from jaxseg.models.unet import UNet

_REGISTRY: dict[str, type] = {
    "unet": UNet,
}

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def available() -> list[str]:
    """Names accepted by ``get_model``."""
    return sorted(_REGISTRY)


def register(name: str, cls: type) -> None:
    _REGISTRY[name] = cls


def get_model(model_config: Mapping[str, Any], dtype: str = "float32"):
    """Builds the flax module named ``model_config['name']`` with the remaining keys as fields."""
    cfg = dict(model_config)
    name = cfg.pop("name", None)
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    cls = _REGISTRY[name]
    fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
    unknown = sorted(set(cfg) - fields)
    if unknown:
        raise ValueError(f"model {name!r} has no option(s) {unknown}; options: {sorted(fields)}")
    if "dtype" in fields:
        cfg["dtype"] = _DTYPES[dtype]
    return cls(**cfg)
