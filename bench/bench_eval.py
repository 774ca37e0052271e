"""Benchmark (not a test): Experiment 1's validation metric set, and the MAHD of one image.

    .venv/bin/python bench/bench_eval.py [--images 583] [--size 256] [--batch 8] [--mahd-repeats 5]

1. Table 5's metric set (``configs/unet_variants.py``: balanced_accuracy, roc_auc,
   average_precision, dice, jaccard, mahd) over ``--images`` validation images,
   streamed through ``jaxseg.metrics.MetricCollection`` exactly as the trainer's
   evaluation does it: one jit-ed ``update`` per batch of ``--batch`` (the last batch
   padded and masked by ``valid``), one host ``compute`` at the end. The batches are
   on the device before the clock starts (the model's forward pass is not part of it).
   Reported: the whole pass after a warm-up pass (compilation excluded and reported
   separately), and the same pass without the MAHD, so its share is visible.
2. ``modified_average_hausdorff`` of one image (1×S²×1), median of ``--mahd-repeats``.

Inputs imitate lung masks: two ellipses per image (~25 % of the pixels), and
probabilities that are a blurred, noisy version of a slightly shifted copy (so the
predicted mask differs from the label near the boundary).
"""

from __future__ import annotations

import argparse
import time

from jaxseg import runtime  # noqa: E402  (the commands' process settings, before JAX starts)
runtime.configure_process()

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from jaxseg import metrics
from timing import machine, median_time  # bench/timing.py (scripts run as bench/<name>.py)

TABLE5 = ("balanced_accuracy", "roc_auc", "average_precision", "dice", "jaccard", "mahd")


def lung_like(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(probs, labels): (n, size, size, 1) float32 probabilities and {0, 1} labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    labels = np.zeros((n, size, size), bool)
    probs = np.zeros((n, size, size), np.float32)
    for i in range(n):
        cy, ry, rx = rng.uniform(0.45, 0.55), rng.uniform(0.25, 0.32), rng.uniform(0.12, 0.16)
        for cx in (0.3 + rng.uniform(-0.03, 0.03), 0.7 + rng.uniform(-0.03, 0.03)):
            labels[i] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        shifted = np.roll(labels[i], rng.integers(-3, 4, size=2), axis=(0, 1)).astype(np.float32)
        noisy = ndimage.gaussian_filter(shifted, 2.0) + rng.normal(0, 0.15, (size, size))
        probs[i] = np.clip(noisy, 0, 1)
    return probs[..., None], labels[..., None].astype(np.float32)


def device_batches(probs, labels, batch: int):
    """The trainer's evaluation batches: the last one padded with zeros and marked by ``valid``."""
    out = []
    for start in range(0, len(probs), batch):
        p, y = probs[start:start + batch], labels[start:start + batch]
        valid = np.zeros((batch,), bool)
        valid[:len(p)] = True
        pad = ((0, batch - len(p)), (0, 0), (0, 0), (0, 0))
        out.append(tuple(jax.device_put(a) for a in (np.pad(p, pad), np.pad(y, pad), valid)))
    return out


def evaluation_pass(names, batches):
    """Seconds of (compile + first pass, second pass) and the metric values of the second pass."""
    collection = metrics.MetricCollection(names)
    update = jax.jit(collection.update, donate_argnums=(0,))

    def run():
        state = collection.init()
        for p, y, v in batches:
            state = update(state, p, y, v)
        return collection.compute(state)

    t0 = time.perf_counter()
    run()
    t1 = time.perf_counter()
    values = run()
    return t1 - t0, time.perf_counter() - t1, values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=583)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--mahd-repeats", type=int, default=5)
    args = ap.parse_args()
    print(machine())
    probs, labels = lung_like(args.images, args.size)
    batches = device_batches(probs, labels, args.batch)
    print(f"{args.images} images of {args.size}², batches of {args.batch}, foreground "
          f"{labels.mean():.1%}")
    for names in (TABLE5, tuple(n for n in TABLE5 if n != "mahd")):
        first, second, values = evaluation_pass(names, batches)
        print(f"metric set {'+'.join(names)}: {second:.2f} s ({args.images / second:.1f} images/s); "
              f"first pass with compilation {first:.2f} s")
        print("   " + " ".join(f"{k}={v:.4f}" for k, v in values.items()))
    one_p, one_y = (jnp.asarray(a[:1] > 0.5) for a in (probs, labels))
    mahd = jax.jit(metrics.modified_average_hausdorff)
    t = median_time(lambda: jax.block_until_ready(mahd(one_p, one_y)), args.mahd_repeats)
    print(f"modified_average_hausdorff of one {args.size}² image: {t * 1e3:.1f} ms "
          f"(median of {args.mahd_repeats}; value {float(mahd(one_p, one_y)[0, 0]):.4f})")


if __name__ == "__main__":
    main()
