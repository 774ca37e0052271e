"""Whole-slide tiling benchmark: a 40,000 x 90,000 pyramidal JPEG TIFF tiled with bounded memory.

    .venv/bin/python bench/bench_slide.py [--workdir /tmp/jaxseg_slide] [--width 90000 --height 40000]

``write`` builds the slide with tifffile from a tile generator (never the whole
image in memory): 512² JPEG tiles, levels 1, 1/4, 1/16, 1/64, pink tissue in a
few ellipses on white glass, and a label TIFF at 1/16 resolution (2 = ADC in
smaller ellipses). ``tile`` then runs, in a fresh process, the pipeline of
``jaxseg.data.sources.histopathology``: tissue map, 512² grid, Figure 11 statistics,
and the positives-only TFRecord patch cache; it prints grid patches scanned
per second, patches cached per second and its peak RSS (the target: < 2 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

TILE = 512
ELLIPSES = [(0.3, 0.25, 0.22, 0.18), (0.65, 0.55, 0.25, 0.15), (0.5, 0.82, 0.3, 0.12)]  # cy, cx, ry, rx


def _inside(yy, xx, shrink=1.0):
    out = np.zeros(yy.shape, bool)
    for cy, cx, ry, rx in ELLIPSES:
        out |= ((yy - cy) / (ry * shrink)) ** 2 + ((xx - cx) / (rx * shrink)) ** 2 < 1
    return out


def _tiles(height, width, ds, texture):
    """Level tiles (row-major) of the phantom slide at downsample ``ds``."""
    lh, lw = -(-height // ds), -(-width // ds)
    for ty in range(0, lh, TILE):
        for tx in range(0, lw, TILE):
            yy, xx = np.mgrid[ty:ty + TILE, tx:tx + TILE].astype(np.float32)
            tissue = _inside(yy * ds / height, xx * ds / width)
            tile = np.full((TILE, TILE, 3), 243, np.uint8)
            tile[tissue] = texture[(ty // TILE + tx // TILE) % len(texture)][tissue]
            yield tile


def write(slide_path, label_path, height, width):
    import tifffile

    rng = np.random.default_rng(0)
    base = np.array([205, 110, 170], np.int16)
    texture = [np.clip(base + rng.integers(-35, 35, (TILE, TILE, 3)), 0, 255).astype(np.uint8) for _ in range(4)]
    t0 = time.perf_counter()
    with tifffile.TiffWriter(slide_path, bigtiff=True) as tw:
        for i, ds in enumerate((1, 4, 16, 64)):
            shape = (-(-height // ds), -(-width // ds), 3)
            tw.write(_tiles(height, width, ds, texture), shape=shape, dtype=np.uint8, tile=(TILE, TILE),
                     compression="jpeg", compressionargs={"level": 85}, photometric="rgb",
                     subfiletype=1 if i else 0, maxworkers=2)
    f = 16
    yy, xx = np.mgrid[0:height // f, 0:width // f].astype(np.float32)
    label = np.where(_inside(yy * f / height, xx * f / width, shrink=0.25), 2, 0).astype(np.uint8)
    tifffile.imwrite(label_path, label, tile=(256, 256), compression="zlib")
    return time.perf_counter() - t0


def tile(slide_path, label_path, cache):
    import tensorflow  # noqa: F401  (imported before timing: the cache writer uses it)

    from jaxseg.data.sources import histopathology as hp

    cfg = hp.TilingConfig(sampling="positives")
    t0 = time.perf_counter()
    table, keep, stats = hp.tile_slide(slide_path, label_path, cfg)
    t_scan = time.perf_counter() - t0
    out = hp.cache_path(cache, slide_path, label_path, cfg)
    t0 = time.perf_counter()
    index = hp.write_cache(slide_path, label_path, cfg, out)
    t_total = time.perf_counter() - t0  # write_cache scans again, then reads + writes the chosen patches
    cached = len(index["patches"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"grid_patches": len(table["x"]), "tissue_patches": int(keep.sum()), "cached_patches": cached,
                      "scan_s": round(t_scan, 1), "scan_patches_per_s": round(len(table["x"]) / t_scan, 1),
                      "cache_s": round(t_total - t_scan, 1),
                      "cached_patches_per_s": round(cached / max(t_total - t_scan, 1e-9), 1),
                      "peak_rss_gib": round(rss, 3), "statistics": stats}, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("step", nargs="?", default="all", choices=["all", "write", "tile"])
    ap.add_argument("--workdir", default="/tmp/jaxseg_slide")
    ap.add_argument("--height", type=int, default=40_000)
    ap.add_argument("--width", type=int, default=90_000)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    slide, label = os.path.join(a.workdir, "slide.tif"), os.path.join(a.workdir, "label.tif")
    if a.step in ("all", "write"):
        secs = write(slide, label, a.height, a.width)
        print(f"wrote {a.width}x{a.height} slide ({os.path.getsize(slide) / 2**30:.2f} GiB) in {secs:.0f} s")
    if a.step == "all":  # a fresh process, so its peak RSS is the tiler's alone
        subprocess.run([sys.executable, __file__, "tile", "--workdir", a.workdir], check=True)
    elif a.step == "tile":
        tile(slide, label, os.path.join(a.workdir, "cache"))


if __name__ == "__main__":
    main()
