"""Deterministic procedural chest X-ray phantoms with lung and infection masks.

Each image (values in [0, 1], grayscale) is built from:
  body outline   an ellipse of soft tissue on a dark background;
  lungs          two dark elliptical fields inside the body (the lung mask);
  ribs           bright curved bands across the chest, strongest over the lungs;
  infection      0-3 blobby opacities (sums of Gaussians, thresholded) inside the
                 lungs — brighter, ground-glass-like; about a quarter of the
                 images have none (the infection mask is then empty);
  acquisition    random gain and gamma, Gaussian noise.
Image ``i`` of a set depends only on ``(seed, i)``, so any count and any subset
is reproducible.
"""

from __future__ import annotations

import numpy as np

from jaxseg.data.tasks import CLASSES, class_masks

TASKS = CLASSES  # task -> mask channels (jaxseg.data.tasks)


def _ellipse(yy, xx, cy, cx, ry, rx, angle=0.0):
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u = (dx * c + dy * s) / rx
    v = (-dx * s + dy * c) / ry
    return u * u + v * v


def _smooth_inside(r2, softness=0.08):
    """≈1 inside the ellipse r2 < 1, ≈0 outside, with a soft edge."""
    return 1.0 / (1.0 + np.exp(np.minimum((r2 - 1.0) / softness, 50.0)))


def phantom(size: int, rng: np.random.Generator, infection_prob: float = 0.75):
    """One phantom: (image HxW float32, lung mask HxW uint8, infection mask HxW uint8)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    body = _smooth_inside(_ellipse(yy, xx, 0.55 + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.02),
                                   0.48, 0.42 + rng.normal(0, 0.02)), 0.05)
    img = 0.08 + 0.45 * body

    lung_mask = np.zeros((size, size), bool)
    lung_fields = []
    for side in (-1, 1):
        cy = 0.52 + rng.normal(0, 0.02)
        cx = 0.5 + side * (0.17 + rng.normal(0, 0.015))
        ry, rx = 0.26 + rng.normal(0, 0.02), 0.11 + rng.normal(0, 0.01)
        r2 = _ellipse(yy, xx, cy, cx, ry, rx, angle=side * rng.uniform(0.05, 0.2))
        lung_mask |= r2 < 1.0
        lung_fields.append((cy, cx, ry, rx))
        img -= 0.3 * _smooth_inside(r2, 0.06)

    phase = rng.uniform(0, 2 * np.pi)
    ribs = np.cos(2 * np.pi * (yy * 7.5 + 0.9 * (xx - 0.5) ** 2 * 4) + phase)
    img += 0.07 * np.clip(ribs, 0, 1) ** 4 * body

    infection = np.zeros((size, size), np.float32)
    if rng.uniform() < infection_prob:
        for _ in range(rng.integers(1, 4)):
            cy, cx, ry, rx = lung_fields[rng.integers(0, 2)]
            by = cy + rng.uniform(-0.6, 0.6) * ry
            bx = cx + rng.uniform(-0.6, 0.6) * rx
            for _ in range(rng.integers(2, 5)):
                s = rng.uniform(0.025, 0.06)
                gy, gx = by + rng.normal(0, 0.03), bx + rng.normal(0, 0.03)
                infection += np.exp(-((yy - gy) ** 2 + (xx - gx) ** 2) / (2 * s * s))
    infection_mask = (infection > 0.5) & lung_mask
    img += 0.3 * np.clip(infection, 0, 1.2) * lung_mask

    gain, gamma = rng.uniform(0.85, 1.15), rng.uniform(0.8, 1.25)
    img = np.clip(img * gain, 0, 1) ** gamma
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1).astype(np.float32), lung_mask.astype(np.uint8),
            infection_mask.astype(np.uint8))


def generate(count: int, size: int, task: str = "infection", seed: int = 0, start: int = 0):
    """``count`` phantoms as arrays: images (N,H,W,1) float32 in [0,1], masks (N,H,W,C) float32 {0,1}
    with C = ``TASKS[task]`` (``class_masks``).

    Image ``start + i`` is drawn from ``np.random.default_rng([seed, start + i])``, whatever the task:
    the tasks label the same phantoms.
    """
    if task not in TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; available: {', '.join(TASKS)}")
    if size < 16:
        raise ValueError(f"synthetic image_size must be at least 16, got {size}")
    images = np.empty((count, size, size, 1), np.float32)
    masks = np.empty((count, size, size, TASKS[task]), np.float32)
    for i in range(count):
        img, lung, inf = phantom(size, np.random.default_rng([seed, start + i]))
        images[i, ..., 0] = img
        masks[i] = class_masks(task, lung, inf)
    return images, masks


# ---------------------------------------------------------------- streaming shards (jaxseg.data.streaming)

SHARD_FORMAT = 1  # bump when the phantoms or what a record holds change


def shard_plan(config):
    """The pool of ``num_train + num_val`` phantoms (phantom ``i`` from (seed, i)), image float32, mask uint8."""
    from jaxseg.data import streaming

    d = config.data
    count = d.num_train + d.num_val
    generate(0, d.image_size, d.task)  # checks task and size before anything is written
    params = {"count": count, "image_size": d.image_size, "task": d.task, "seed": d.seed}
    source = {"kind": "synthetic", "format": SHARD_FORMAT, "root": "", "params": params, "files": []}

    def examples():
        for i in range(count):
            image, mask = generate(1, d.image_size, d.task, seed=d.seed, start=i)
            mask = mask[0].astype(np.uint8)  # {0,1}: served as float32 again, the same values
            yield {"image": image[0], "mask": mask}, streaming.foreground_flags(mask)

    return streaming.Plan("synthetic", source, lambda: (count, examples()))


def shard_split(reader, config):
    """Phantoms 0..num_train-1 train and the rest validate, or fold k of num_folds (as in memory)."""
    from jaxseg.data import folds, streaming

    d = config.data
    if reader.count != d.num_train + d.num_val:
        raise ValueError(f"{reader.folder} holds {reader.count} phantoms, not {d.num_train + d.num_val}")
    if folds.cross_validating(d):
        mode = config.model.get("mode") or "binary"
        train, val = folds.split(reader.count, d, streaming.strata(reader.meta, mode, TASKS[d.task]))
        return streaming.Split(train, val)
    return streaming.Split(np.arange(d.num_train), np.arange(d.num_train, reader.count))


def in_memory_bytes(config) -> int:
    """The float32 image and mask arrays the in-memory path holds."""
    d = config.data
    return (d.num_train + d.num_val) * d.image_size ** 2 * (1 + TASKS.get(d.task, 1)) * 4
