"""Model zoo and registry: ``get_model(config.model)``, ``available()``, ``register``.

  fcn            FCN (thesis §4.2)                          fcn.FCN
  unet           U-Net (§4.3.1)                             unet.UNet
  attunet        Attention U-Net (§4.3.2)                   unet.AttentionUNet
  resunet        Residual U-Net (§4.3.3)                    unet.ResidualUNet
  resattunet     Residual Attention U-Net (§4.3.3)          unet.ResidualAttentionUNet
  r2unet         R2U-Net (§4.3.3)                           unet.R2UNet
  unetpp         UNet++ (§4.3.3)                            unetpp.UNetPlusPlus
  transunet      TransUNet-style (§4.4)                     transunet.TransUNet
  convnext_unet  ConvNeXt U-Net (§7, future research)       convnext_unet.ConvNeXtUNet

The U-Net family (unet, attunet, resunet, resattunet, r2unet) also runs on a pretrained
encoder, ``config.model.encoder`` = resnet18 | resnet34 | resnet50 | convnext_tiny
(``encoders``, ``encoder_unet``); ``encoders.load_encoder_weights`` loads torchvision weights.

Every model takes ``(x, train)`` with x NHWC and returns float32 logits NHWC
(UNet++ with deep supervision: stacked heads in training, see ``unetpp``).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax.numpy as jnp

from jaxseg.models.base import MODELS, SegmentationModel
from jaxseg.models.convnext_unet import ConvNeXtUNet
from jaxseg.models.fcn import FCN
from jaxseg.models.transunet import TransUNet
from jaxseg.models.unet import AttentionUNet, R2UNet, ResidualAttentionUNet, ResidualUNet, UNet
from jaxseg.models.unetpp import UNetPlusPlus, deep_supervision_loss

# Options only some models have, with their inert values: configs/default.py carries them so that
# they can be set from the command line; a model without the option accepts them at these values only.
_OPTIONAL = {"deep_supervision": False, "ds_eval": "last"}

# config.model keys the trainer reads (jaxseg.training): not module fields
TRAINER_KEYS = ("encoder_weights", "freeze_encoder_epochs")

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

__all__ = ["MODELS", "available", "register", "get_model", "model_kwargs", "options", "output_mode", "deep_supervision_loss", "SegmentationModel",
           "FCN", "UNet", "AttentionUNet", "ResidualUNet", "ResidualAttentionUNet", "R2UNet",
           "UNetPlusPlus", "TransUNet", "ConvNeXtUNet"]


def available() -> list[str]:
    """Names accepted by ``get_model``."""
    return MODELS.names()


def register(name: str, cls: type) -> type:
    """Adds a model class (a flax module taking ``(x, train)``) under ``name`` (``@MODELS.register`` as a call)."""
    return MODELS.register(name, cls)


def options(name: str) -> list[str]:
    """The config keys (module fields) that model ``name`` accepts."""
    return sorted(MODELS.parameters(name))


def model_kwargs(model_config: Mapping[str, Any], dtype: str = "float32") -> tuple[str, dict]:
    """``(name, fields)`` for ``model_config``: keys set to ``None`` mean "the model's own default" and
    are left out, as are inert values of options other models have (``_OPTIONAL``) and ``mode`` (read by
    losses, metrics and prediction, not by the module)."""
    cfg = {k: v for k, v in dict(model_config).items() if v is not None}
    name = cfg.pop("name", None)
    cfg.pop("mode", None)  # how the logits are read (binary/multiclass/multilabel): losses, metrics, predict
    for key in TRAINER_KEYS:  # read by the trainer (loading and freezing the encoder), not by the module
        cfg.pop(key, None)
    fields = options(name)
    for key, inert in _OPTIONAL.items():  # the default config carries them for every model
        if key in cfg and key not in fields and cfg[key] == inert:
            del cfg[key]
    for key in ("features", "decoder_features"):
        if isinstance(cfg.get(key), list):
            cfg[key] = tuple(cfg[key])  # flax fields must be hashable
    _check_encoder(name, cfg, fields)
    if "dtype" in fields:
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(_DTYPES)}")
        cfg["dtype"] = _DTYPES[dtype]
    MODELS.check(name, cfg)
    return name, cfg


def _check_encoder(name: str, cfg: Mapping[str, Any], fields: list[str]) -> None:
    """A clear error for an encoder option on a model without one, naming the models that take one."""
    for key in ("encoder", "decoder_features"):
        if key in cfg and key not in fields:
            takers = [n for n in available() if key in MODELS.parameters(n)]
            raise ValueError(f"model {name!r} takes no pretrained encoder (config.model.{key}={cfg[key]!r}); "
                             f"models that do: {', '.join(takers)}")


def output_mode(model_config: Mapping[str, Any]) -> str:
    """How a model's logits are read: ``config.model.mode``, or — for configs written before modes
    existed — 'binary' with one class and 'multiclass' (softmax) with more."""
    from jaxseg.ops.modes import default_mode

    mode = dict(model_config).get("mode")
    return mode or default_mode(int(dict(model_config).get("num_classes", 1) or 1))


def get_model(model_config: Mapping[str, Any], dtype: str = "float32"):
    """Builds the flax module named ``model_config['name']`` with the remaining keys as fields."""
    name, cfg = model_kwargs(model_config, dtype)
    return MODELS.build(name, **cfg)
