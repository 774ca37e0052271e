"""Start-up validation of a config: every problem in one clear message, before any compilation.

ml_collections already rejects unknown keys and wrong types in ``--config.x.y=v``
overrides; this checks the values and their combinations.
"""

from __future__ import annotations

import math

import ml_collections

from jaxseg.errors import ConfigError

__all__ = ["ConfigError", "validate_config", "rotated_extent"]


def _problems(config: ml_collections.ConfigDict) -> list[str]:
    from jaxseg import losses, metrics, models
    from jaxseg.training.optim import OPTIMIZERS, SCHEDULES

    out = []
    for section in ("data", "model", "loss", "optimizer", "train", "eval"):
        if section not in config:
            out.append(f"missing section config.{section}")
    if out:
        return out
    if config.model.get("name") not in models.available():
        out.append(f"config.model.name={config.model.get('name')!r} is not a model; "
                   f"available: {', '.join(models.available())}")
    else:
        try:
            models.get_model(config.model, config.train.get("dtype", "float32"))
        except (TypeError, ValueError) as e:
            out.append(f"config.model: {e}")
    try:
        losses.build_loss(config.loss)
    except ValueError as e:
        out.append(f"config.loss: {e}")
    keys: tuple = ()
    try:
        keys = metrics.MetricCollection(config.eval.metrics, config.eval.threshold,
                                        num_classes=config.model.get("num_classes", 1)).names
    except ValueError as e:
        out.append(f"config.eval.metrics: {e}")
    if keys and config.eval.checkpoint_metric not in ("loss", *keys):
        out.append(f"config.eval.checkpoint_metric={config.eval.checkpoint_metric!r} is not among "
                   f"config.eval.metrics {list(keys)} (or 'loss')")
    if config.eval.checkpoint_mode not in ("auto", "max", "min"):
        out.append("config.eval.checkpoint_mode must be 'auto', 'max' or 'min'")
    if config.optimizer.get("name") not in OPTIMIZERS:
        out.append(f"config.optimizer.name={config.optimizer.get('name')!r}; available: {', '.join(OPTIMIZERS)}")
    if config.optimizer.get("schedule", "constant") not in SCHEDULES:
        out.append(f"config.optimizer.schedule={config.optimizer.schedule!r}; available: {', '.join(SCHEDULES)}")
    if config.train.epochs < 1 or config.train.batch_size < 1:
        out.append("config.train.epochs and config.train.batch_size must be positive")
    if config.train.dtype not in ("float32", "bfloat16", "float16"):
        out.append(f"config.train.dtype={config.train.dtype!r}; use float32, bfloat16 or float16")
    if config.train.get("nonfinite", "stop") not in ("stop", "skip"):
        out.append(f"config.train.nonfinite={config.train.nonfinite!r}; use 'stop' or 'skip'")
    out += _data_problems(config.data)
    depth = config.model.get("depth")
    size = config.data.get("image_size")
    if depth and size and size % 2 ** (depth - 1):
        out.append(f"config.data.image_size={size} is not divisible by 2^(depth-1)={2 ** (depth - 1)} "
                   f"(config.model.depth={depth})")
    return out


def rotated_extent(size: int, rotation_limit: float) -> float:
    """Side of the axis-aligned box holding a size×size square rotated by any angle up to the limit:
    size·max_{|θ|≤limit}(|cos θ| + |sin θ|) (= size·√2 from 45° on)."""
    theta = math.radians(min(abs(rotation_limit), 45.0))
    return size * (math.cos(theta) + math.sin(theta))


def _data_problems(data) -> list[str]:
    from jaxseg.data import available as datasets
    from jaxseg.data.augment.affine import AugmentConfig

    out = []
    if data.get("name") not in datasets():
        out.append(f"config.data.name={data.get('name')!r} is not a dataset; available: {', '.join(datasets())}")
    try:  # whole-slide patches are cut to image_size by the augmentation itself
        AugmentConfig.from_config(data, **({"crop_size": data.get("image_size")}
                                           if data.get("name") == "histopathology" else {}))
    except ValueError as e:
        out.append(str(e))
    size, crop = data.get("image_size"), data.get("crop_size")
    if crop and size and crop > size:
        out.append(f"config.data.crop_size={crop} is larger than the image (config.data.image_size={size})")
    if data.get("split_by", "patch") not in ("patch", "slide"):
        out.append(f"config.data.split_by={data.get('split_by')!r}; use 'patch' or 'slide'")
    if data.get("name") == "histopathology" and size:
        patch = data.get("patch_size", 512)
        need = rotated_extent(size, data.get("rotation_limit", 0.0)) if data.get("random_pick") else size
        if need > patch + 1e-6:
            out.append(f"config.data.image_size={size} crops rotated by up to {data.get('rotation_limit', 0.0)}° "
                       f"need {need:.0f}×{need:.0f} pixels but a patch is {patch}×{patch} "
                       "(config.data.patch_size): lower image_size or rotation_limit, or enlarge the patches")
    return out


def validate_config(config: ml_collections.ConfigDict) -> None:
    problems = _problems(config)
    if len(problems) == 1:
        raise ConfigError(f"invalid config: {problems[0]}")
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
