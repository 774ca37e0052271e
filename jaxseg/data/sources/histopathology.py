"""Whole-slide histopathology (thesis §6.1.2): tissue detection, 512² tiling, a patch cache, random pick.

Layout under ``config.data.root``: ``slides/<name>.<ext>`` (anything OpenSlide
reads: pyramidal TIFF, SVS, NDPI, MRXS, ...) and ``labels/<name>.tif[f]``, a
single-channel integer label image (e.g. 0 background, 1 SCC, 2 ADC) at the
slide's full resolution or reduced by an integer factor (label pixel
``(y // f, x // f)`` labels slide pixel ``(y, x)``). A pixel is positive when its
label is in ``config.data.positive_labels`` (empty: any non-zero label).

Slides (tens of thousands of pixels a side) are never loaded whole, so memory
stays bounded whatever the slide size:

1. Tissue: the pyramid level nearest ``tissue_downsample`` (32) is read in
   chunks and block-averaged to a thumbnail of HSV saturation; tissue is where
   saturation exceeds its Otsu threshold (and at least 0.05, so a blank slide
   has none).
2. Tiling: a grid of ``patch_size``² (512) patches that lie fully inside the
   slide; patches whose tissue fraction is below ``min_tissue_fraction`` are
   dropped. The labels are streamed in bands of patch rows to count positive
   pixels and positive patches before and after this filtering (Figure 11).
3. Sampling: ``all`` tissue patches, ``positives`` (those with any positive
   pixel; the thesis's choice, Tables 7-8) or ``weighted``: all tissue
   patches, drawn each epoch with weights ``sampling_weights`` =
   (negative patch, positive patch).
4. Cache: the chosen patches (RGB uint8 and label uint8) are read through
   OpenSlide once and written as TFRecord shards with an ``index.json`` (stats,
   patch positions) into ``cache_dir/histopathology/<slide>-<hash>/``; the
   folder appears atomically when complete, its name hashes the slide and label
   files (resolved paths, sizes, mtimes) and the tiling parameters
   (``jaxseg.data.cache``), so training never re-reads slides and a changed
   input or parameter is re-tiled (one line on stderr says why).
5. Training: "random pick" — a random ``image_size``² crop rotated by up to
   ``rotation_limit`` degrees lying fully inside its patch (``augment.py``);
   validation (a seeded ``val_fraction`` of the patches, default 0.2) uses
   centre crops.

Unreadable slides or labels, a label image of a size that matches no integer
reduction of the slide, or labels outside ``num_classes`` raise ``DataError``.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import shutil
import sys

import numpy as np

from jaxseg.data import cache
from jaxseg.errors import DataError

log = logging.getLogger(__name__)
SAMPLING = ("all", "positives", "weighted")
SLIDE_EXTENSIONS = (".tif", ".tiff", ".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")
RECORDS_PER_SHARD = 256
CACHE_FORMAT = 2  # 2: keyed by jaxseg.data.cache records (resolved paths, mtime in ns)


@dataclasses.dataclass(frozen=True)
class TilingConfig:
    """Tiling keys of ``config.data`` and their defaults."""

    patch_size: int = 512
    tissue_downsample: int = 32
    min_tissue_fraction: float = 0.05
    min_saturation: float = 0.05
    sampling: str = "positives"
    positive_labels: tuple = ()

    def __post_init__(self):
        if self.sampling not in SAMPLING:
            raise ValueError(f"config.data.sampling must be one of {SAMPLING}, got {self.sampling!r}")

    @classmethod
    def from_config(cls, data) -> "TilingConfig":
        kw = {f.name: data.get(f.name, f.default) for f in dataclasses.fields(cls)}
        kw["positive_labels"] = tuple(int(v) for v in (kw["positive_labels"] or ()))
        return cls(**kw)

    def is_positive(self, labels: np.ndarray) -> np.ndarray:
        return np.isin(labels, self.positive_labels) if self.positive_labels else labels > 0


# ---------------------------------------------------------------- readers

def open_slide(path: str):
    """An ``openslide.OpenSlide``; ``DataError`` naming the file when it cannot be read."""
    import openslide

    if not os.path.isfile(path):
        raise DataError(path, "slide file not found")
    try:
        return openslide.OpenSlide(path)
    except Exception as e:  # OpenSlideUnsupportedFormatError, OpenSlideError, OSError
        raise DataError(path, f"cannot open slide ({type(e).__name__}: {e})") from e


def read_region(slide, path: str, x: int, y: int, level: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3) of a level; transparent (no data) pixels become white."""
    try:
        rgba = np.asarray(slide.read_region((int(x), int(y)), level, (int(width), int(height))))
    except Exception as e:
        raise DataError(path, f"cannot read slide region at ({x}, {y}) level {level} ({e})") from e
    rgb = rgba[..., :3].copy()
    rgb[rgba[..., 3] == 0] = 255
    return rgb


class LabelImage:
    """Region reads from a (tiled or stripped) single-channel TIFF label image, decoding only what is needed."""

    def __init__(self, path: str):
        import tifffile

        self.path = path
        try:
            self._tif = tifffile.TiffFile(path)
            page = self._tif.pages.first
            if page.samplesperpixel != 1 or page.dtype is None or page.dtype.kind not in "biu":
                raise ValueError(f"expected one integer channel, got {page.samplesperpixel} of {page.dtype}")
        except DataError:
            raise
        except Exception as e:
            raise DataError(path, f"cannot read label image ({type(e).__name__}: {e})") from e
        self._page = page
        self.height, self.width = int(page.imagelength), int(page.imagewidth)

    def close(self):
        self._tif.close()

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Labels of rows [y0, y1) and columns [x0, x1) as uint8."""
        page = self._page
        th, tw = (page.tilelength, page.tilewidth) if page.is_tiled else (page.rowsperstrip, page.imagewidth)
        th, tw = min(th, self.height), min(tw, self.width)
        ntx = -(-self.width // tw)
        out = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fh = self._tif.filehandle
        try:
            for ty in range(y0 // th, (y1 - 1) // th + 1):
                for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                    index = ty * ntx + tx
                    fh.seek(page.dataoffsets[index])
                    data = fh.read(page.databytecounts[index])
                    seg, pos, shape = page.decode(data, index, jpegtables=page.jpegtables)
                    if seg is None:
                        continue
                    seg = seg.reshape(shape[1], shape[2])
                    sy, sx = pos[2], pos[3]
                    ya, yb = max(y0, sy), min(y1, sy + shape[1])
                    xa, xb = max(x0, sx), min(x1, sx + shape[2])
                    if ya < yb and xa < xb:
                        block = seg[ya - sy:yb - sy, xa - sx:xb - sx]
                        if block.max(initial=0) > 255:
                            raise ValueError(f"label {int(block.max())} does not fit in 8 bits")
                        out[ya - y0:yb - y0, xa - x0:xb - x0] = block
        except Exception as e:
            raise DataError(self.path, f"cannot decode label image ({type(e).__name__}: {e})") from e
        return out


def label_factor(slide_size: tuple[int, int], label: LabelImage) -> int:
    """The integer reduction f of the label image (1 = full resolution); ``DataError`` when none fits."""
    w, h = slide_size
    f = max(1, round(w / label.width))
    if abs(label.width - w / f) > 1 or abs(label.height - h / f) > 1:
        raise DataError(label.path, f"label image is {label.width}x{label.height}; expected the slide's "
                                    f"{w}x{h} or an integer reduction of it")
    return f


def slide_labels(label: LabelImage, f: int, y: int, x: int, height: int, width: int) -> np.ndarray:
    """Labels of slide pixels [y, y+height) x [x, x+width), upsampled (nearest) from the label image."""
    rows, cols = (y + np.arange(height)) // f, (x + np.arange(width)) // f
    rows, cols = np.minimum(rows, label.height - 1), np.minimum(cols, label.width - 1)
    block = label.read(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    return block[np.ix_(rows - rows[0], cols - cols[0])]


# ---------------------------------------------------------------- tissue

def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: maximises the between-class variance of the histogram."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][np.argmax(between)])


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation (max - min) / max in [0, 1]."""
    rgb = rgb.astype(np.float32)
    mx, mn = rgb.max(-1), rgb.min(-1)
    return np.where(mx > 0, (mx - mn) / np.maximum(mx, 1.0), 0.0)


def saturation_thumbnail(slide, path: str, downsample: int, chunk: int = 128):
    """(mean saturation thumbnail, its downsample): the nearest level, read ``chunk``-block bands at a time."""
    level = slide.get_best_level_for_downsample(downsample)
    level_ds = slide.level_downsamples[level]
    k = max(1, int(round(downsample / level_ds)))  # level pixels per thumbnail pixel
    lw, lh = slide.level_dimensions[level]
    tw, th = lw // k, lh // k
    if tw < 1 or th < 1:
        raise DataError(path, f"slide level {level} ({lw}x{lh}) is smaller than one {k}x{k} block")
    thumb = np.zeros((th, tw), np.float32)
    step = chunk * k
    for ly in range(0, th * k, step):
        for lx in range(0, tw * k, step):
            h, w = min(step, th * k - ly), min(step, tw * k - lx)
            rgb = read_region(slide, path, lx * level_ds, ly * level_ds, level, w, h)
            sat = saturation(rgb).reshape(h // k, k, w // k, k).mean(axis=(1, 3))
            thumb[ly // k:ly // k + h // k, lx // k:lx // k + w // k] = sat
    return thumb, level_ds * k


def tissue_map(thumb: np.ndarray, min_saturation: float) -> np.ndarray:
    """Tissue where saturation exceeds Otsu's threshold (and ``min_saturation``)."""
    return thumb > max(otsu_threshold(thumb), min_saturation)


# ---------------------------------------------------------------- tiling

def tile_slide(slide_path: str, label_path: str, cfg: TilingConfig):
    """Scans a slide: (patch table, Figure 11 statistics). No patch pixels are read here.

    The table has one row per grid patch: ``x, y`` (level-0 corner), ``tissue``
    (fraction), ``positive`` (positive pixel count).
    """
    slide = open_slide(slide_path)
    label = LabelImage(label_path)
    try:
        w, h = slide.dimensions
        f = label_factor((w, h), label)
        p = cfg.patch_size
        nx, ny = w // p, h // p
        if nx == 0 or ny == 0:
            raise DataError(slide_path, f"slide {w}x{h} is smaller than one {p}x{p} patch")
        thumb, tds = saturation_thumbnail(slide, slide_path, cfg.tissue_downsample)
        tissue = tissue_map(thumb, cfg.min_saturation)
        frac = np.zeros((ny, nx), np.float32)
        for i in range(ny):
            for j in range(nx):
                ya, yb = int(i * p / tds), max(int(i * p / tds) + 1, int((i + 1) * p / tds))
                xa, xb = int(j * p / tds), max(int(j * p / tds) + 1, int((j + 1) * p / tds))
                frac[i, j] = tissue[ya:yb, xa:xb].mean() if ya < tissue.shape[0] and xa < tissue.shape[1] else 0
        positive = np.zeros((ny, nx), np.int64)
        cols = np.arange(nx * p) // f
        for i in range(ny):  # one band of patch rows at a time (label rows at the label's resolution)
            rows = np.minimum((i * p + np.arange(p)) // f, label.height - 1)
            band = cfg.is_positive(label.read(int(rows[0]), int(rows[-1]) + 1, 0, label.width))
            colsum = np.zeros(label.width, np.int64)  # slide rows of this band per positive label column
            for r, count in enumerate(np.bincount(rows - rows[0])):
                if count:
                    colsum += count * band[r]
            positive[i] = colsum[np.minimum(cols, label.width - 1)].reshape(nx, p).sum(1)
    finally:
        label.close()
        slide.close()
    ys, xs = np.mgrid[0:ny, 0:nx] * p
    table = {"x": xs.ravel(), "y": ys.ravel(), "tissue": frac.ravel(), "positive": positive.ravel()}
    keep = table["tissue"] >= cfg.min_tissue_fraction
    return table, keep, patch_statistics(table["positive"], keep, p * p)


def patch_statistics(positive: np.ndarray, keep: np.ndarray, patch_pixels: int) -> dict:
    """Figure 11: positive pixels and positive patches, before and after dropping non-tissue patches."""
    def stats(pos):
        n = len(pos)
        npos = int((pos > 0).sum())
        return {"patches": n, "positive_patches": npos, "pixels": n * patch_pixels,
                "positive_pixels": int(pos.sum()),
                "positive_patch_ratio": npos / n if n else 0.0,
                "positive_pixel_ratio": float(pos.sum()) / (n * patch_pixels) if n else 0.0,
                "positive_pixel_ratio_in_positive_patches":
                    float(pos.sum()) / (npos * patch_pixels) if npos else 0.0}
    return {"all_patches": stats(positive), "tissue_patches": stats(positive[keep])}


def select(table: dict, keep: np.ndarray, sampling: str) -> np.ndarray:
    """Indices of the patches to cache: tissue patches, or tissue patches with positives."""
    chosen = keep & (table["positive"] > 0) if sampling == "positives" else keep
    return np.flatnonzero(chosen)


# ---------------------------------------------------------------- cache

def cache_record(slide_path: str, label_path: str, cfg: TilingConfig) -> dict:
    """What a slide's patch cache is built from: the slide and label files (resolved) and the tiling parameters."""
    paths = [os.path.realpath(slide_path), os.path.realpath(label_path)]
    return cache.source_record("histopathology", CACHE_FORMAT, os.path.commonpath(paths),
                               dataclasses.asdict(cfg), paths=paths)


def cache_path(cache_root: str, slide_path: str, label_path: str, cfg: TilingConfig,
               record: dict | None = None) -> str:
    """``cache_root/histopathology/<slide stem>-<digest of cache_record>``."""
    record = record or cache_record(slide_path, label_path, cfg)
    stem = os.path.splitext(os.path.basename(slide_path))[0]
    return os.path.join(cache_root, "histopathology", f"{stem}-{cache.digest(record)}")


def write_cache(slide_path: str, label_path: str, cfg: TilingConfig, out_dir: str,
                record: dict | None = None) -> dict:
    """Tiles a slide and writes its chosen patches as TFRecord shards + ``index.json``; returns the index.

    One patch is in memory at a time; the folder is renamed into place only when complete.
    """
    import tensorflow as tf

    record = record or cache_record(slide_path, label_path, cfg)  # before reading: a later change re-tiles
    table, keep, stats = tile_slide(slide_path, label_path, cfg)
    chosen = select(table, keep, cfg.sampling)
    tmp = out_dir + ".incomplete"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    p = cfg.patch_size
    slide, label = open_slide(slide_path), LabelImage(label_path)
    shards, writer = [], None
    try:
        f = label_factor(slide.dimensions, label)
        for n, idx in enumerate(chosen):
            if n % RECORDS_PER_SHARD == 0:
                if writer:
                    writer.close()
                shards.append(f"patches-{len(shards):05d}.tfrecord")
                writer = tf.io.TFRecordWriter(os.path.join(tmp, shards[-1]))
            x, y = int(table["x"][idx]), int(table["y"][idx])
            rgb = read_region(slide, slide_path, x, y, 0, p, p)
            lab = slide_labels(label, f, y, x, p, p)
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[rgb.tobytes()])),
                "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[lab.tobytes()])),
            })).SerializeToString())
    finally:
        if writer:
            writer.close()
        slide.close()
        label.close()
    index = {"format": CACHE_FORMAT, "slide": slide_path, "label": label_path, "config": dataclasses.asdict(cfg),
             "source": record, "statistics": stats, "shards": shards,
             "patches": [{"x": int(table["x"][i]), "y": int(table["y"][i]), "tissue": float(table["tissue"][i]),
                          "positive": int(table["positive"][i])} for i in chosen]}
    with open(os.path.join(tmp, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)
    return index


def cached_patches(slide_path: str, label_path: str, cfg: TilingConfig, cache_root: str) -> tuple[str, dict]:
    """(cache folder, index) for a slide, tiling it first if no complete cache of these files and parameters exists."""
    record = cache_record(slide_path, label_path, cfg)
    out = cache_path(cache_root, slide_path, label_path, cfg, record)
    index = cache.read_record(os.path.join(out, "index.json"))
    if index is not None and index.get("source") == record:
        return out, index
    stem = os.path.splitext(os.path.basename(slide_path))[0]
    earlier = cache.earlier_records(os.path.join(glob.escape(os.path.join(cache_root, "histopathology", stem)) + "-*",
                                                 "index.json"))
    reason = cache.change_reason(record, [r["source"] for r in earlier if isinstance(r.get("source"), dict)])
    print(f"histopathology: tiling {slide_path} into {out} ({reason})", file=sys.stderr)
    return out, write_cache(slide_path, label_path, cfg, out, record)


def read_cache(folder: str, index: dict) -> tuple[np.ndarray, np.ndarray]:
    """All cached patches of one slide: (images (N,P,P,3) uint8, labels (N,P,P) uint8)."""
    import tensorflow as tf

    p = index["config"]["patch_size"]
    n = len(index["patches"])
    images, labels = np.empty((n, p, p, 3), np.uint8), np.empty((n, p, p), np.uint8)
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.string)}
    files = [os.path.join(folder, s) for s in index["shards"]]
    i = 0
    for rec in tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec)).as_numpy_iterator():
        images[i] = np.frombuffer(rec["image"], np.uint8).reshape(p, p, 3)
        labels[i] = np.frombuffer(rec["label"], np.uint8).reshape(p, p)
        i += 1
    if i != n:
        raise DataError(folder, f"patch cache holds {i} patches, index.json lists {n}; delete the folder")
    return images, labels


# ---------------------------------------------------------------- source

def find_slides(root: str) -> list[tuple[str, str]]:
    """Sorted (slide path, label path) pairs under ``root/slides`` and ``root/labels``."""
    slide_dir, label_dir = os.path.join(root, "slides"), os.path.join(root, "labels")
    for d in (slide_dir, label_dir):
        if not os.path.isdir(d):
            raise DataError(d, "missing folder; a histopathology root holds slides/ and labels/ "
                               "(see README, 'Whole-slide images')")
    labels = {os.path.splitext(n)[0]: n for n in os.listdir(label_dir) if n.lower().endswith((".tif", ".tiff"))}
    pairs = []
    for name in sorted(os.listdir(slide_dir)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in SLIDE_EXTENSIONS:
            continue
        if stem not in labels:
            raise DataError(os.path.join(slide_dir, name), f"slide has no label image labels/{stem}.tif")
        pairs.append((os.path.join(slide_dir, name), os.path.join(label_dir, labels[stem])))
    if not pairs:
        raise DataError(slide_dir, f"no slides ({', '.join(SLIDE_EXTENSIONS)}) in this folder")
    return pairs


def masks_from_labels(labels: np.ndarray, cfg: TilingConfig, num_classes: int, name: str,
                      ignore_index: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(N,P,P) labels -> (NHWC uint8 masks, pixel_weight or None): one {0,1} channel (binary), or one-hot
    ``num_classes``. With ``ignore_index``, pixels holding it get weight 0 and an all-zero mask row."""
    keep = None if ignore_index is None else labels != ignore_index
    if num_classes > 1:
        values = labels if keep is None else labels[keep]
        if values.max(initial=0) >= num_classes:
            raise DataError(name, f"label {int(values.max())} found, but num_classes is {num_classes}"
                                  + (f" (ignore label {ignore_index})" if ignore_index is not None else ""))
        mask = (labels[..., None] == np.arange(num_classes, dtype=np.uint8)).astype(np.uint8)
    else:
        mask = cfg.is_positive(labels).astype(np.uint8)[..., None]
    if keep is None:
        return mask, None
    weight = keep[..., None].astype(np.uint8)
    return mask * weight, weight


def split_patches(slide_of: np.ndarray, names: list[str], data,
                  positive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) patch indices by ``config.data.split_by``; with ``config.data.num_folds`` fold
    ``config.data.fold`` (``jaxseg.data.folds``: by slide or by patch, stratified by ``positive``).

    'patch' (default, the thesis's): a seeded random ``val_fraction`` of all patches.
    'slide': whole slides validate, so no slide contributes to both sides —
    ``val_slides`` (slide file stems) if given, else a seeded random
    ``val_fraction`` of the slides (at least one; needs two slides or more).
    """
    from jaxseg.data import folds
    from jaxseg.data.pipeline import seeded_split

    fraction, seed, by = data.get("val_fraction") or 0.2, data.get("seed", 0), data.get("split_by", "patch")
    if by not in ("patch", "slide"):
        raise ValueError(f"config.data.split_by must be 'patch' or 'slide', got {by!r}")
    if folds.cross_validating(data):  # fold k of K: whole slides with split_by='slide', else patches
        groups = slide_of if by == "slide" else None
        return folds.split(len(slide_of), data, strata=positive, groups=groups)
    if by == "patch":
        return seeded_split(len(slide_of), fraction, seed)
    root = data.get("root", "")
    wanted = list(data.get("val_slides", ()) or ())
    if wanted:
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise DataError(os.path.join(root, "slides"), f"config.data.val_slides names {unknown}, "
                            f"but the slides are {names}")
        val_slides = np.flatnonzero(np.isin(names, wanted))
    else:
        if len(names) < 2:
            raise DataError(os.path.join(root, "slides"), "split_by='slide' needs at least two slides "
                            f"(found {names}); use split_by='patch'")
        val_slides = seeded_split(len(names), fraction, seed)[1]
    is_val = np.isin(slide_of, val_slides)
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if not len(train_idx) or not len(val_idx):
        side = "validation" if not len(val_idx) else "training"
        raise DataError(os.path.join(root, "slides"), f"the {side} slides have no patches after tiling "
                        f"(validation slides: {[names[i] for i in val_slides]})")
    print(f"histopathology: validating on slides {[names[i] for i in val_slides]}", file=sys.stderr)
    return train_idx, val_idx


def load(config, process_index: int = 0, process_count: int = 1):
    """The ``histopathology`` source: cached patches, seeded patch- or slide-level split, random pick.

    A slide that cannot be read or tiled stops with its ``DataError``, or, with
    ``config.data.skip_bad_files``, is left out and listed (at least one must remain).
    """
    from jaxseg.data.sources.covid_qu_ex import cache_dir
    from jaxseg.data.pipeline import source_from_arrays

    d = config.data
    cfg = TilingConfig.from_config(d)
    num_classes = config.get("model", {}).get("num_classes", 1)
    ignore = d.get("ignore_index")
    images, masks, weights_px, positive, slide_of, names, skipped = [], [], [], [], [], [], []
    for slide_path, label_path in find_slides(d.root):
        try:
            folder, index = cached_patches(slide_path, label_path, cfg, cache_dir(d))
            img, lab = read_cache(folder, index)
            mask_k, weight_k = masks_from_labels(lab, cfg, num_classes, label_path, ignore)
        except DataError as e:
            if not d.get("skip_bad_files", False):
                raise
            skipped.append(str(e))
            log.warning("skipped bad slide: %s", e)
            continue
        images.append(img)
        masks.append(mask_k)
        weights_px.append(weight_k)
        positive.extend(p["positive"] > 0 for p in index["patches"])
        slide_of.append(np.full(len(img), len(names)))
        names.append(os.path.splitext(os.path.basename(slide_path))[0])
    if not images:
        raise DataError(os.path.join(d.root, "slides"), "no usable slide; skipped: " + "; ".join(skipped))
    if skipped:
        print(f"histopathology: left out {len(skipped)} bad slide(s):\n  " + "\n  ".join(skipped), file=sys.stderr)
    image, mask, positive = np.concatenate(images), np.concatenate(masks), np.asarray(positive)
    train_idx, val_idx = split_patches(np.concatenate(slide_of), names, d, positive)
    weights = None
    if cfg.sampling == "weighted":
        w_neg, w_pos = d.get("sampling_weights", (1.0, 5.0))
        weights = np.where(positive[train_idx], w_pos, w_neg)
    arrays = {"image": image, "mask": mask}
    if ignore is not None:  # the ignore label: pixel_weight 0 (counted in no loss and no metric)
        arrays["pixel_weight"] = np.concatenate(weights_px)
    return source_from_arrays({k: v[train_idx] for k, v in arrays.items()},
                              {k: v[val_idx] for k, v in arrays.items()}, config,
                              process_index, process_count, sample_weights=weights, crop_size=d.image_size)


# ---------------------------------------------------------------- streaming shards (jaxseg.data.streaming)

SHARD_FORMAT = 1  # bump when what a record holds changes


def iter_cache(folder: str, index: dict):
    """The cached patches of one slide, one at a time: (image (P,P,3) uint8, labels (P,P) uint8)."""
    import tensorflow as tf

    p = index["config"]["patch_size"]
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.string)}
    files = [os.path.join(folder, s) for s in index["shards"]]
    n = 0
    for rec in tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec)).as_numpy_iterator():
        yield np.frombuffer(rec["image"], np.uint8).reshape(p, p, 3), np.frombuffer(rec["label"], np.uint8).reshape(p, p)
        n += 1
    if n != len(index["patches"]):
        raise DataError(folder, f"patch cache holds {n} patches, index.json lists {len(index['patches'])}; "
                                "delete the folder")


def _shard_settings(config):
    d = config.data
    return (d, TilingConfig.from_config(d), config.get("model", {}).get("num_classes", 1), d.get("ignore_index"),
            bool(d.get("skip_bad_files", False)))


def shard_plan(config):
    """Every cached patch of every usable slide (tiled first where needed), with its masks as in memory
    (``masks_from_labels``), its slide and whether it has positive pixels; the key holds the slides' and
    labels' fingerprints, the tiling parameters, classes, ignore label and ``skip_bad_files``."""
    from jaxseg.data import streaming

    d, cfg, num_classes, ignore, skip = _shard_settings(config)
    pairs = find_slides(d.root)
    params = dict(dataclasses.asdict(cfg), num_classes=num_classes, ignore_index=ignore, skip_bad_files=skip)
    source = cache.source_record("histopathology", SHARD_FORMAT, d.root, params,
                                 paths=[p for pair in pairs for p in pair])
    extra = {"names": [], "slide_errors": []}

    def open_():
        usable = []
        for slide_path, label_path in pairs:
            try:
                folder, index = cached_patches(slide_path, label_path, cfg, cache.cache_root(d))
                if num_classes > 1:  # a bad label stops the slide before any of its patches is written
                    for _, lab in iter_cache(folder, index):
                        masks_from_labels(lab[None], cfg, num_classes, label_path, ignore)
            except DataError as e:
                if not skip:
                    raise
                extra["slide_errors"].append(str(e))
                log.warning("skipped bad slide: %s", e)
                continue
            usable.append((folder, index, label_path))
            extra["names"].append(os.path.splitext(os.path.basename(slide_path))[0])
        if not usable:
            raise DataError(os.path.join(d.root, "slides"), "no usable slide; skipped: "
                            + "; ".join(extra["slide_errors"]))
        return sum(len(u[1]["patches"]) for u in usable), examples(usable)

    def examples(usable):
        for slide_no, (folder, index, label_path) in enumerate(usable):
            for i, (img, lab) in enumerate(iter_cache(folder, index)):
                mask, weight = masks_from_labels(lab[None], cfg, num_classes, label_path, ignore)
                example = {"image": img, "mask": mask[0]}
                if weight is not None:
                    example["pixel_weight"] = weight[0]
                yield example, {"slide": slide_no, "positive": index["patches"][i]["positive"] > 0}

    return streaming.Plan("histopathology", source, open_, extra=extra)


def shard_split(reader, config):
    """``split_patches`` over the shards' patches, weights for ``sampling='weighted'``, validation crops."""
    from jaxseg.data import streaming

    d, cfg, *_ = _shard_settings(config)
    errors = reader.index.get("slide_errors", [])
    if errors:
        print(f"histopathology: left out {len(errors)} bad slide(s):\n  " + "\n  ".join(errors), file=sys.stderr)
    positive = np.asarray(reader.meta["positive"], bool)
    train, val = split_patches(np.asarray(reader.meta["slide"], np.int64), reader.index["names"], d, positive)
    weights = None
    if cfg.sampling == "weighted":
        w_neg, w_pos = d.get("sampling_weights", (1.0, 5.0))
        weights = np.where(positive[train], w_pos, w_neg)
    return streaming.Split(train, val, weights, {"crop_size": d.image_size})


def in_memory_bytes(config) -> int:
    """The uint8 patch arrays the in-memory path holds (tiling the slides first, as either path must)."""
    d, cfg, num_classes, ignore, _ = _shard_settings(config)
    patches = 0
    for slide_path, label_path in find_slides(d.root):
        try:
            patches += len(cached_patches(slide_path, label_path, cfg, cache.cache_root(d))[1]["patches"])
        except DataError:
            continue  # the loader reports it (or skips the slide)
    return patches * cfg.patch_size ** 2 * (3 + max(1, num_classes) + (ignore is not None))
