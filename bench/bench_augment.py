"""Where to augment: tf.data worker threads (host) or inside the jitted train step (device).

  .venv/bin/python bench/bench_augment.py [--size 256 --crop 224 --batch 16 --count 128 --epochs 3]

The thesis's Tables 7-8 augmentation (horizontal flips, random pick of a
``crop``² window rotated up to 180°, brightness/contrast 0.1) on synthetic lung
X-ray phantoms of ``size``², both placements in this process:

1. augmentation alone, images/s: the tf.data pipeline (``ArraySource``, gather +
   augment + prefetch, iterated to the host) vs the jitted JAX augmentation on
   batches already on the device;
2. training, images/s and the share of each step spent waiting for data: the
   same run (small U-Net 8/4, Dice loss) through ``train_and_evaluate`` with
   ``augment_on='host'`` and ``'device'``; median over the epochs after the first
   (which compiles).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jaxseg import runtime  # noqa: E402  (the commands' process settings, before JAX starts)
runtime.configure_process()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from configs import default as default_config  # noqa: E402
from jaxseg.data.sources import synthetic  # noqa: E402
from jaxseg.data.augment.affine import AugmentConfig  # noqa: E402
from jaxseg.data.augment.device import augment_on_device  # noqa: E402
from jaxseg.data.pipeline import source_from_arrays  # noqa: E402


def config(args, place: str):
    c = default_config.get_config()
    c.data.update(dict(task="lung", image_size=args.size, num_train=args.count, num_val=args.batch,
                       augment=True, augment_on=place, flips="horizontal", crop_size=args.crop, random_pick=True,
                       rotation_limit=180.0, brightness=0.1, contrast=0.1))
    c.model.features, c.model.depth = 8, 4
    c.train.update(dict(batch_size=args.batch, epochs=args.epochs, progress=False))
    c.eval.metrics = ("dice",)
    c.eval.checkpoint_metric = "dice"
    return c


def augment_only(args) -> dict:
    images, masks = synthetic.generate(args.count, args.size, "lung")
    c = config(args, "host")
    src = source_from_arrays({"image": images, "mask": masks}, {"image": images[:2], "mask": masks[:2]}, c)
    for _ in src.train_batches(0):  # warm-up: traces the tf.data graph
        pass
    t0, n = time.perf_counter(), 0
    for epoch in (1, 2):
        for batch in src.train_batches(epoch):
            n += len(batch["image"])
    host = n / (time.perf_counter() - t0)

    cfg = AugmentConfig.from_config(c.data)
    fn = jax.jit(lambda b, k: augment_on_device(b, k, cfg))
    batch = {"image": jnp.asarray(images[:args.batch]), "mask": jnp.asarray(masks[:args.batch])}
    jax.block_until_ready(fn(batch, jax.random.PRNGKey(0)))
    reps = max(1, 2 * args.count // args.batch)
    t0 = time.perf_counter()
    for i in range(reps):
        out = fn(batch, jax.random.PRNGKey(i))
    jax.block_until_ready(out)
    device = reps * args.batch / (time.perf_counter() - t0)
    return {"host_images_per_s": round(host, 1), "device_images_per_s": round(device, 1)}


def training(args, place: str) -> dict:
    from jaxseg.training import train_and_evaluate

    with tempfile.TemporaryDirectory() as wd:
        train_and_evaluate(config(args, place), wd)
        records = [json.loads(line) for line in open(os.path.join(wd, "metrics.jsonl"))]
    later = records[1:] or records
    steps = args.count // args.batch
    step_s = statistics.median(r["time/train_s"] for r in later) / steps
    return {"images_per_s": round(args.batch / step_s, 2), "step_ms": round(1e3 * step_s, 1),
            "data_wait_percent": round(100 * statistics.median(r["time/data_wait_fraction"] for r in later), 1),
            "val_dice": round(records[-1]["val/dice"], 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--count", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    result = {"machine": f"{os.cpu_count()} CPU cores, jax {jax.__version__} on {jax.devices()[0].device_kind}",
              "setting": f"{args.count} lung phantoms {args.size}², random pick {args.crop}² ±180°, batch {args.batch}",
              "augmentation_only": augment_only(args),
              "training_host": training(args, "host"), "training_device": training(args, "device")}
    h, d = result["training_host"]["images_per_s"], result["training_device"]["images_per_s"]
    result["training_device_over_host"] = round(d / h, 2)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
