"""Input-pipeline throughput for COVID-QU-Ex-like data: PNG decoding and augmented batches.

    .venv/bin/python bench/bench_input.py [--count 512] [--size 256] [--batch 16]

Writes ``count`` 256x256 grayscale X-ray-like PNG pairs (0/255 masks) in the
folder-dataset layout, then measures (1) decoding + checking the pairs
(``jaxseg.data.sources.folder``, images/s) and (2) training batches from
``ArraySource`` with the Tables 7-8 augmentation (flips, random pick of a
224² crop rotated up to 180°, brightness/contrast), images/s, after one warm-up epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import ml_collections
import numpy as np
from PIL import Image


def make_pngs(root, count, size):
    from jaxseg.data.sources import synthetic

    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "masks"))
    images, masks = synthetic.generate(count, size, "lung")
    for i in range(count):
        Image.fromarray((images[i, ..., 0] * 255).astype(np.uint8)).save(os.path.join(root, "images", f"{i:05d}.png"))
        Image.fromarray(masks[i, ..., 0].astype(np.uint8) * 255).save(os.path.join(root, "masks", f"{i:05d}.png"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=512)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    from jaxseg.data.sources import folder

    with tempfile.TemporaryDirectory() as root:
        make_pngs(root, a.count, a.size)
        c = ml_collections.ConfigDict()
        c.seed = 0
        c.data = dict(name="folder", root=root, image_size=a.size, val_fraction=0.2, seed=0, augment=True,
                      flips="horizontal", crop_size=224, random_pick=True, rotation_limit=180.0,
                      brightness=0.1, contrast=0.1, augment_on="host")  # tf.data augmentation is what this measures
        c.model = dict(num_classes=1)
        c.train = dict(batch_size=a.batch)
        t0 = time.perf_counter()
        train, val, _ = folder.load_arrays(c)
        decode = time.perf_counter() - t0
        src = folder.load(c)
        for _ in src.train_batches(0):
            pass
        t0 = time.perf_counter()
        n = 0
        for epoch in (1, 2):
            for batch in src.train_batches(epoch):
                n += len(batch["image"])
        aug = time.perf_counter() - t0
    print(json.dumps({"pairs": a.count, "size": a.size, "decode_s": round(decode, 2),
                      "decode_images_per_s": round(a.count / decode, 1),
                      "augmented_images_per_s": round(n / aug, 1), "batch": a.batch,
                      "cpu_count": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
