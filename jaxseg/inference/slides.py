"""Whole-slide prediction with a histopathology run: tiled over tissue, written as one label TIFF.

A slide is an input of a histopathology run (``config.data.name ==
'histopathology'``) that is a whole-slide file OpenSlide reads (``.svs``,
``.ndpi``, ``.mrxs``, ...) or a tiled or multi-page (pyramidal) TIFF; a
plain (stripped, single-page) TIFF is an RGB patch like a PNG.

The model saw level-0 pixels in training (patches read at level 0, scaled
/ 255), so it predicts level-0 pixels here, never the whole slide at once:

1. Tissue, as in training (``jaxseg.data.sources.histopathology``'s
   ``saturation_thumbnail`` and ``tissue_map`` with the run's
   ``tissue_downsample`` and ``min_saturation``).
2. Blocks of about ``patch_size``² level-0 pixels (a multiple of D): a block
   whose tissue fraction is below ``min_tissue_fraction`` is background (label
   0) unseen by the model; the others are read with a margin of half the
   model's input size and predicted tile by tile with overlap blending (as
   ``--mode=tile``; ``--tta`` applies).
3. Output at downsample D (``--downsample``, default 1 = level 0): output
   pixel (i, j) holds the label of the mean probability over level-0 pixels
   [iD, (i+1)D) × [jD, (j+1)D) — binary: probability > threshold (0/1);
   multiclass: argmax (class indices); multilabel: class k sets bit k (C ≤ 8).

The labels are written as ``NAME_mask_ds<D>.tif``: uint8, tiled 256², zlib,
streamed tile by tile (memory stays bounded at any size), with a JSON
ImageDescription holding ``downsample``, the slide's level-0 size, the output
size and the label meaning. It appears only when complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from jaxseg.data.sources import histopathology as hp
from jaxseg.errors import DataError
from jaxseg.training.run_log import tqdm

SLIDE_ONLY_EXTENSIONS = tuple(e for e in hp.SLIDE_EXTENSIONS if e not in (".tif", ".tiff"))
TILE = 256  # output pixels per TIFF tile side (a multiple of 16)


def is_slide(path: Path, histopathology: bool) -> bool:
    """Whether ``path`` is predicted as a whole slide (see the module docstring)."""
    suffix = path.suffix.lower()
    if suffix in SLIDE_ONLY_EXTENSIONS:
        if not histopathology:
            raise DataError(str(path), "a whole-slide file; predict it with a histopathology run "
                                       "(config.data.name='histopathology')")
        return True
    if not histopathology or suffix not in (".tif", ".tiff"):
        return False
    import tifffile

    try:
        with tifffile.TiffFile(str(path)) as tif:
            return bool(tif.pages.first.is_tiled or len(tif.pages) > 1)
    except Exception as e:  # noqa: BLE001 - tifffile raises many types
        raise DataError(str(path), f"cannot read TIFF file ({type(e).__name__}: {e})") from None


def tissue_fraction(tissue: np.ndarray, tds: float, x0: int, y0: int, x1: int, y1: int) -> float:
    """Fraction of tissue pixels of the thumbnail (downsample ``tds``) over level-0 box [x0, x1) × [y0, y1)."""
    ya, xa = int(y0 / tds), int(x0 / tds)
    yb, xb = max(ya + 1, int(np.ceil(y1 / tds))), max(xa + 1, int(np.ceil(x1 / tds)))
    box = tissue[ya:yb, xa:xb]
    return float(box.mean()) if box.size else 0.0


def block_mean(p: np.ndarray, d: int) -> np.ndarray:
    """Means of (H, W, C) over d×d blocks from the origin (partial blocks at the far edges: their own mean)."""
    if d == 1:
        return p
    h, w = p.shape[:2]
    ry, rx = np.arange(0, h, d), np.arange(0, w, d)
    sums = np.add.reduceat(np.add.reduceat(p.astype(np.float64), ry, axis=0), rx, axis=1)
    counts = np.outer(np.diff(np.r_[ry, h]), np.diff(np.r_[rx, w]))
    return (sums / counts[..., None]).astype(np.float32)


class _SlideJob:
    """One slide being predicted: the open slide, its tissue map and the options."""

    def __init__(self, model, path: Path, downsample: int, overlap: float, tta: bool, batch_size: int):
        self.model, self.path, self.d = model, str(path), downsample
        self.overlap, self.tta, self.batch_size = overlap, tta, batch_size
        self.cfg = hp.TilingConfig.from_config(dict(model.config.get("data", {})))
        self.slide = hp.open_slide(self.path)
        self.width, self.height = self.slide.dimensions
        thumb, self.tds = hp.saturation_thumbnail(self.slide, self.path, self.cfg.tissue_downsample)
        self.tissue = hp.tissue_map(thumb, self.cfg.min_saturation)
        self.block = downsample * max(1, round(self.cfg.patch_size / downsample))
        self.blocks = self.tissue_blocks = self.positive = 0

    def predict_block(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Probabilities at the output resolution of level-0 box [x0, x1) × [y0, y1), read with a margin."""
        from jaxseg.inference.predict import predict_image

        m = self.model.size // 2
        rx0, ry0 = max(0, x0 - m), max(0, y0 - m)
        rx1, ry1 = min(self.width, x1 + m), min(self.height, y1 + m)
        rgb = hp.read_region(self.slide, self.path, rx0, ry0, 0, rx1 - rx0, ry1 - ry0)
        image = rgb.astype(np.float32) / 255.0
        if self.model.channels == 1:
            image = (image @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        probs = predict_image(self.model, image, "tile", self.overlap, self.tta, self.batch_size)
        return block_mean(probs[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0], self.d)

    def tile(self, ty: int, tx: int) -> np.ndarray:
        """Output tile (ty, tx) of TILE² labels, zero beyond the slide."""
        from jaxseg.inference.predict import labels_of

        out = np.zeros((TILE, TILE), np.uint8)
        x0, y0 = tx * TILE * self.d, ty * TILE * self.d
        x1, y1 = min(self.width, x0 + TILE * self.d), min(self.height, y0 + TILE * self.d)
        for by in range(y0, y1, self.block):
            for bx in range(x0, x1, self.block):
                bx1, by1 = min(bx + self.block, x1), min(by + self.block, y1)
                self.blocks += 1
                if tissue_fraction(self.tissue, self.tds, bx, by, bx1, by1) < self.cfg.min_tissue_fraction:
                    continue
                self.tissue_blocks += 1
                labels = labels_of(self.predict_block(bx, by, bx1, by1), self.model.threshold, self.model.mode)
                if labels.ndim == 3:  # multilabel: class k sets bit k of the label
                    labels = (labels.astype(np.uint8) << np.arange(labels.shape[-1], dtype=np.uint8)).sum(-1)
                oy, ox = (by - y0) // self.d, (bx - x0) // self.d
                out[oy:oy + labels.shape[0], ox:ox + labels.shape[1]] = labels
                self.positive += int((labels > 0).sum())
        return out


def predict_slide(model, path: Path, out_dir: Path, name: str, downsample: int = 1, overlap: float = 0.25,
                  tta: bool = False, batch_size: int = 8, progress: bool = False) -> dict:
    """Predicts a slide into ``out_dir/NAME_mask_ds<D>.tif``; returns what was written (see module docstring)."""
    import tifffile

    job = _SlideJob(model, path, int(downsample), overlap, tta, batch_size)
    d = job.d
    ow, oh = -(-job.width // d), -(-job.height // d)
    out_path = Path(out_dir) / f"{name}_mask_ds{d}.tif"
    tmp = out_path.with_name(f".{out_path.name}.incomplete")
    binary = model.num_classes == 1
    info = {"slide": str(path), "output": str(out_path), "downsample": d, "level0_size": [job.width, job.height],
            "size": [ow, oh], "threshold": model.threshold if binary else None,
            "labels": "1 = probability > threshold, 0 = background or no tissue" if binary else
            "class index (argmax); 0 also where there is no tissue"}
    grid = [(ty, tx) for ty in range(-(-oh // TILE)) for tx in range(-(-ow // TILE))]
    bar = tqdm(total=len(grid), desc=Path(path).name, leave=False, disable=not progress, dynamic_ncols=True)

    def tiles():
        for ty, tx in grid:
            yield job.tile(ty, tx)
            bar.update(1)

    try:
        with tifffile.TiffWriter(tmp, bigtiff=ow * oh > 2 ** 31) as tw:
            tw.write(tiles(), shape=(oh, ow), dtype=np.uint8, tile=(TILE, TILE), compression="zlib",
                     photometric="minisblack", description=json.dumps(info), metadata=None)
        os.replace(tmp, out_path)
    finally:
        bar.close()
        job.slide.close()
        if tmp.exists():
            tmp.unlink()
    info.update(blocks=job.blocks, tissue_blocks=job.tissue_blocks, positive_pixels=job.positive)
    return info
