"""Start-up validation of a config: every problem in one clear message, before any compilation.

ml_collections already rejects unknown keys and wrong types in ``--config.x.y=v``
overrides; this checks the values and their combinations.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import ml_collections

from jaxseg.errors import ConfigError
from jaxseg.ops.modes import MODES, check_mode

__all__ = ["ConfigError", "validate_config", "rotated_extent", "resume_changes", "check_resumable"]

# What a checkpoint's state and numbers depend on: a resumed run must not change these.
RESUME_KEYS = ("seed", "model", "loss", "optimizer", "train.batch_size", "train.dtype", "train.trial",
               "data.name", "data.task", "data.image_size", "data.channels", "data.crop_size")


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
    out += _encoder_problems(config.model)
    try:
        mode = config.model.get("mode")
        losses.build_loss(config.loss, mode if mode in MODES else None)
    except ValueError as e:
        out.append(f"config.loss: {e}")
    keys: tuple = ()
    try:
        mode = config.model.get("mode")
        keys = metrics.MetricCollection(config.eval.metrics, config.eval.threshold,
                                        num_classes=config.model.get("num_classes", 1),
                                        mode=mode if mode in MODES else None).names
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
    out += _mode_problems(config)
    out += _data_problems(config.data)
    out += _input_size_problems(config)
    return out


def _input_size_problems(config) -> list[str]:
    """The model's input (the crop when one is cut, else the image) must halve cleanly depth−1 times."""
    depth, data = config.model.get("depth"), config.data
    if not depth:
        return []
    sizes = [("image_size", data.get("image_size"))]
    if data.get("crop_size") and data.get("augment"):
        sizes.append(("crop_size", data.get("crop_size")))
    return [f"config.data.{key}={size} is not divisible by 2^(depth-1)={2 ** (depth - 1)} "
            f"(config.model.depth={depth}); use a multiple of {2 ** (depth - 1)}"
            for key, size in sizes if size and size % 2 ** (depth - 1)]


def _mode_problems(config) -> list[str]:
    """``config.model.mode`` against ``num_classes``, and against the phantoms' classes for a synthetic task."""
    from jaxseg.data.sources.synthetic import TASKS as SYNTHETIC_TASKS

    mode, c = config.model.get("mode", "binary"), config.model.get("num_classes", 1)
    try:
        check_mode(mode, c)
    except ValueError as e:
        return [f"config.model: {e}"]
    task = config.data.get("task")
    if config.data.get("name") in ("synthetic", "covid_qu_ex") and task in SYNTHETIC_TASKS and SYNTHETIC_TASKS[task] != c:
        return [f"config.data.task={task!r} has {SYNTHETIC_TASKS[task]} class channel(s) but "
                f"config.model.num_classes={c}"]
    return []


def _encoder_problems(model) -> list[str]:
    """``encoder_weights`` / ``freeze_encoder_epochs`` need an encoder, and the weights file must exist."""
    from jaxseg.models import encoders

    encoder, weights = model.get("encoder"), model.get("encoder_weights")
    freeze = model.get("freeze_encoder_epochs") or 0
    out = []
    if encoder and encoder not in encoders.names():
        out.append(f"config.model.encoder={encoder!r} is not an encoder; available: {', '.join(encoders.names())} "
                   "(or None: the thesis's own encoder)")
    widths = model.get("decoder_features")
    if widths is not None and (len(widths) != 5 or min(widths) < 1):
        out.append(f"config.model.decoder_features={tuple(widths)}: 5 positive widths, deepest first "
                   "(smp's default: (256, 128, 64, 32, 16))")
    if (weights or freeze) and not encoder:
        out.append("config.model.encoder_weights / freeze_encoder_epochs need config.model.encoder "
                   "(e.g. 'resnet34')")
    if weights and not os.path.isfile(os.path.expanduser(weights)):
        out.append(f"config.model.encoder_weights={weights}: no such file (a torchvision/timm state dict, "
                   ".safetensors or .pth)")
    if freeze < 0:
        out.append(f"config.model.freeze_encoder_epochs={freeze} must be ≥ 0")
    return out


def rotated_extent(size: int, rotation_limit: float) -> float:
    """Side of the axis-aligned box holding a size×size square rotated by any angle up to the limit:
    size·max_{|θ|≤limit}(|cos θ| + |sin θ|) (= size·√2 from 45° on)."""
    theta = math.radians(min(abs(rotation_limit), 45.0))
    return size * (math.cos(theta) + math.sin(theta))


def _data_problems(data) -> list[str]:
    from jaxseg.data import available as datasets
    from jaxseg.data.augment.affine import AugmentConfig
    from jaxseg.data.sources.histopathology import SAMPLING
    from jaxseg.data.sources.synthetic import TASKS as SYNTHETIC_TASKS

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
    vf = data.get("val_fraction")
    if vf is not None and not 0.0 < vf < 1.0:
        out.append(f"config.data.val_fraction={vf} must be between 0 and 1 (e.g. 0.2), or None for the "
                   "dataset's official split")
    folds, fold = data.get("num_folds"), data.get("fold", 0)
    if folds is not None and (folds < 2 or not 0 <= (fold or 0) < folds):
        out.append(f"config.data.num_folds={folds}, config.data.fold={fold}: use num_folds ≥ 2 and a fold "
                   f"in 0..num_folds-1 (or num_folds=None: no cross-validation)")
    if data.get("sampling", "positives") not in SAMPLING:
        out.append(f"config.data.sampling={data.get('sampling')!r}; use one of {', '.join(SAMPLING)}")
    if data.get("name") == "synthetic" and data.get("task") not in SYNTHETIC_TASKS:
        out.append(f"config.data.task={data.get('task')!r} is not a synthetic task; "
                   f"available: {', '.join(SYNTHETIC_TASKS)}")
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


def _flat(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _effective_model(model_config: Mapping, dtype: str) -> dict:
    """Every field of the model as it is built: a key left at None takes the model's own default."""
    from jaxseg import models

    name, kwargs = models.model_kwargs(model_config, dtype)
    cls = models.MODELS.get(name)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)
                if f.name not in ("parent", "name", "dtype") and f.default is not dataclasses.MISSING}
    return {"name": name, "mode": model_config.get("mode") or "binary", **defaults,
            **{k: v for k, v in kwargs.items() if k != "dtype"}}


def resume_changes(saved: Mapping, new: Mapping) -> list[str]:
    """``'key: old -> new'`` for every key of ``RESUME_KEYS`` that differs between two configs (as dicts)."""
    saved, new = (json.loads(json.dumps(c, default=str)) for c in (saved, new))  # tuples -> lists, as saved
    for c in (saved, new):
        try:
            c["model"] = _effective_model(c.get("model", {}), c.get("train", {}).get("dtype", "float32"))
        except ValueError:
            pass  # an unknown model: compare the keys as written
    a, b = _flat(saved), _flat(new)
    changed = []
    for key in sorted(set(a) | set(b)):
        if any(key == r or key.startswith(r + ".") for r in RESUME_KEYS) and a.get(key) != b.get(key):
            changed.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return changed


def check_resumable(saved_config: Path, config: Mapping) -> None:
    """``ConfigError`` when ``saved_config`` (a workdir's config.json) differs from ``config`` in what a
    checkpoint depends on, naming each changed key."""
    if not saved_config.exists():
        return
    changed = resume_changes(json.loads(saved_config.read_text()), config)
    if changed:
        raise ConfigError(f"{saved_config.parent} holds a checkpoint of a different config "
                          f"({'; '.join(changed)}): resume with the config it was trained with, or train "
                          "into a new --workdir")
