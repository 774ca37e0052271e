"""Bring-your-own datasets: a folder of images and a folder of masks with matching names.

Layout under ``config.data.root``::

    images/   case001.png  case002.jpg  case003.tif ...   (PNG, JPEG, BMP or TIFF)
    masks/    case001.png  case002.png  case003.tif ...   (same names; the extension may differ)
    splits/   train.txt  val.txt                          (optional)

* Images are read as grayscale (``config.data.channels = 1``, the default; RGB
  files are converted) or RGB (``channels = 3``), 8- or 16-bit.
* Masks, by ``config.model.mode``:
  binary (``num_classes`` 1): 0/1 or 0/255, served as one {0,1} channel;
  multiclass (``num_classes = C``): class indices 0..C-1 (an indexed/palette PNG
  or a single-channel image of class values), served one-hot with C channels;
  multilabel: one binary mask per class in sub-folders of ``masks/`` named by the
  class index or by ``config.data.class_names`` (``masks/0/NAME.png``,
  ``masks/1/NAME.png``, … or ``masks/lung/NAME.png``, …), served as C
  overlapping {0,1} channels. A value that is no class stops with a
  ``DataError`` naming the file and the value.
* ``config.data.ignore_index`` (e.g. 255, the nnU-Net/smp convention): masks are
  then read as class indices, and pixels holding that value are served with
  ``pixel_weight`` 0 (and an all-zero mask row): they count in no loss and no
  metric; augmentation fills pixels rotated in from outside the image with
  weight 0 as well (ignored, not background).
* Every pair is resized to ``config.data.image_size`` (bilinear image,
  nearest mask) when it is not already that size.
* Splits: ``splits/val.txt`` (and optionally ``splits/train.txt``; otherwise the
  rest trains) list one name per line, with or without extension, ``#``
  comments allowed. Without lists, a random ``val_fraction`` (default 0.2) of
  the pairs, drawn with ``config.data.seed``, validates; with
  ``config.data.num_folds=K`` fold ``config.data.fold`` of K (``jaxseg.data.folds``,
  stratified by "mask has foreground") validates instead.

An empty folder, duplicate names (``a.png`` and ``a.jpg``), an image without a
mask or a mask without an image, a list naming an unknown file, an unreadable
file, a size mismatch or stray mask values raise a ``DataError`` naming the
file. With ``config.data.skip_bad_files`` unreadable or inconsistent pairs are
left out instead and listed in the log (structural problems still raise).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os

import numpy as np

from jaxseg.data import folds, io
from jaxseg.errors import ConfigError, DataError

log = logging.getLogger(__name__)
DEFAULT_VAL_FRACTION = 0.2


def index_folder(folder: str) -> dict[str, str]:
    """{stem: file name} of the image files in ``folder``; ``DataError`` on empty folders or duplicate stems."""
    if not os.path.isdir(folder):
        raise DataError(folder, "missing folder; a folder dataset needs images/ and masks/ side by side")
    stems: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in io.IMAGE_EXTENSIONS or name.startswith("."):
            continue
        if stem in stems:
            raise DataError(os.path.join(folder, name), f"duplicate name: {stems[stem]} has the same stem")
        stems[stem] = name
    if not stems:
        raise DataError(folder, f"no image files ({', '.join(io.IMAGE_EXTENSIONS)}) in this folder")
    return stems


def class_folders(root: str, num_classes: int, class_names=()) -> list[str]:
    """The multilabel mask folders ``masks/<name or index>/``, one per class, checked to exist."""
    names = list(class_names) if class_names else [str(k) for k in range(num_classes)]
    if len(names) != num_classes:
        raise DataError(os.path.join(root, "masks"), f"config.data.class_names has {len(names)} names for "
                                                     f"config.model.num_classes={num_classes}")
    folders = [os.path.join(root, "masks", n) for n in names]
    for folder in folders:
        if not os.path.isdir(folder):
            raise DataError(folder, "missing class folder: a multilabel folder dataset has one folder of "
                                    "binary masks per class under masks/ (named by index or class_names)")
    return folders


def match_pairs(root: str, mask_dirs: list[str] | None = None) -> list[tuple[str, str, list[str]]]:
    """Sorted (stem, image path, mask paths): one mask per image (or one per class folder), and back."""
    image_dir = os.path.join(root, "images")
    mask_dirs = mask_dirs or [os.path.join(root, "masks")]
    if not os.path.isdir(root):
        raise DataError(root or "<config.data.root is empty>", "dataset folder not found; set "
                        "--config.data.root to a folder with images/ and masks/")
    images = index_folder(image_dir)
    masks = [index_folder(d) for d in mask_dirs]
    for mask_dir, found in zip(mask_dirs, masks):
        for stem in sorted(set(images) - set(found)):
            raise DataError(os.path.join(image_dir, images[stem]), f"image has no mask in {mask_dir}")
        for stem in sorted(set(found) - set(images)):
            raise DataError(os.path.join(mask_dir, found[stem]), f"mask has no image in {image_dir}")
    return [(s, os.path.join(image_dir, images[s]), [os.path.join(d, m[s]) for d, m in zip(mask_dirs, masks)])
            for s in sorted(images)]


def read_pair(image_path: str, mask_paths: list[str] | str, size: int, channels: int, num_classes: int,
              mode: str = "binary", ignore_index: int | None = None):
    """One checked pair at ``size``: image (size, size, channels) uint8, mask (size, size, C) uint8 and, with
    ``ignore_index``, pixel_weight (size, size, 1) uint8 (0 = ignored) — else None."""
    mask_paths = [mask_paths] if isinstance(mask_paths, str) else mask_paths
    image = io.read_image(image_path, channels)
    if mode == "multilabel":
        labels = [io.read_mask(m, None, ignore_index) for m in mask_paths]
    else:
        labels = [io.read_mask(mask_paths[0], num_classes if num_classes > 1 else None, ignore_index)]
    for m, lab in zip(mask_paths, labels):
        io.check_same_size(image, lab, image_path, m)
    image = io.resize(image, size, nearest=False)
    labels = [io.resize(lab, size, nearest=True) for lab in labels]
    if image.ndim == 2:
        image = image[..., None]
    weight = None
    if ignore_index is not None:
        keep = np.all([lab != ignore_index for lab in labels], axis=0)
        weight = keep[..., None].astype(np.uint8)
        labels = [np.where(keep, lab, 0).astype(np.uint8) for lab in labels]
    if mode == "multiclass" or (mode != "multilabel" and num_classes > 1):
        mask = (labels[0][..., None] == np.arange(num_classes, dtype=np.uint8)).astype(np.uint8)
    else:
        mask = np.stack(labels, axis=-1).astype(np.uint8)
    if weight is not None:
        mask = mask * weight  # an ignored pixel is no class at all
    return image, mask, weight


def read_split_list(path: str, stems: list[str]) -> list[str]:
    """The stems a split list names (one per line, extension optional); ``DataError`` for unknown names."""
    known = set(stems)
    out = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            name = line.split("#", 1)[0].strip()
            if not name:
                continue
            stem = name if name in known else os.path.splitext(name)[0]
            if stem not in known:
                raise DataError(path, f"line {line_no}: {name!r} is not in images/")
            out.append(stem)
    return out


def split_stems(root: str, stems: list[str], val_fraction: float | None, seed: int):
    """(train stems, val stems) from ``splits/*.txt`` when present, else a seeded random split."""
    from jaxseg.data.pipeline import seeded_split

    val_list, train_list = (os.path.join(root, "splits", f) for f in ("val.txt", "train.txt"))
    if os.path.exists(val_list):
        val = read_split_list(val_list, stems)
        train = read_split_list(train_list, stems) if os.path.exists(train_list) else \
            [s for s in stems if s not in set(val)]
        both = sorted(set(train) & set(val))
        if both:
            raise DataError(val_list, f"{both[0]!r} is listed for both training and validation")
        return train, val
    train_idx, val_idx = seeded_split(len(stems), val_fraction or DEFAULT_VAL_FRACTION, seed)
    return [stems[i] for i in train_idx], [stems[i] for i in val_idx]


def read_pairs(pairs, size: int, channels: int, num_classes: int, skip_bad_files: bool = False,
               workers: int = 4, mode: str = "binary", ignore_index: int | None = None):
    """Decodes pairs in a thread pool (order kept): ({'image', 'mask'[, 'pixel_weight']} uint8 arrays,
    skipped messages)."""
    def one(pair):
        try:
            return read_pair(pair[1], pair[2], size, channels, num_classes, mode, ignore_index)
        except DataError as e:
            if not skip_bad_files:
                raise
            return str(e)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, pairs))
    skipped = [r for r in results if isinstance(r, str)]
    kept = [r for r in results if not isinstance(r, str)]
    for message in skipped:
        log.warning("skipped bad file: %s", message)
    if not kept:
        raise DataError(os.path.dirname(pairs[0][1]) if pairs else "<no pairs>", "no readable image/mask pairs")
    arrays = {"image": np.stack([k[0] for k in kept]), "mask": np.stack([k[1] for k in kept])}
    if ignore_index is not None:
        arrays["pixel_weight"] = np.stack([k[2] for k in kept])
    return arrays, skipped


def load_arrays(config) -> tuple[dict, dict, list[str]]:
    """(train arrays, val arrays, skipped files) for the folder dataset that ``config.data`` describes."""
    d, model = config.data, config.get("model", {})
    num_classes, mode = model.get("num_classes", 1), model.get("mode") or "binary"
    mask_dirs = class_folders(d.root, num_classes, d.get("class_names") or ()) if mode == "multilabel" else None
    pairs = match_pairs(d.root, mask_dirs)
    kw = dict(size=d.image_size, channels=d.get("channels", 1), num_classes=num_classes,
              skip_bad_files=d.get("skip_bad_files", False), mode=mode, ignore_index=d.get("ignore_index"))
    if folds.cross_validating(d):  # every pair is read, then fold k of num_folds validates
        if os.path.exists(os.path.join(d.root, "splits", "val.txt")):
            raise ConfigError(f"config.data.num_folds is set but {os.path.join(d.root, 'splits', 'val.txt')} "
                              "fixes the validation set; remove the splits/ lists or leave num_folds unset")
        arrays, skipped = read_pairs(pairs, **kw)
        train, val = folds.split_arrays(arrays, d, mode)
        return train, val, skipped
    train_stems, val_stems = split_stems(d.root, [p[0] for p in pairs], d.val_fraction, d.get("seed", 0))
    by_stem = {p[0]: p for p in pairs}
    train, skipped_train = read_pairs([by_stem[s] for s in train_stems], **kw)
    val, skipped_val = read_pairs([by_stem[s] for s in val_stems], **kw)
    return train, val, skipped_train + skipped_val


def load(config, process_index: int = 0, process_count: int = 1):
    """The ``folder`` source for the trainer."""
    from jaxseg.data.pipeline import source_from_arrays

    train, val, _ = load_arrays(config)
    return source_from_arrays(train, val, config, process_index, process_count)


# ---------------------------------------------------------------- streaming shards (jaxseg.data.streaming)

SHARD_FORMAT = 1  # bump when what a record holds changes


def _shape_kwargs(config) -> dict:
    d, model = config.data, config.get("model", {})
    return dict(size=d.image_size, channels=d.get("channels", 1), num_classes=model.get("num_classes", 1),
                mode=model.get("mode") or "binary", ignore_index=d.get("ignore_index"))


def _pairs(config):
    d, kw = config.data, _shape_kwargs(config)
    mask_dirs = class_folders(d.root, kw["num_classes"], d.get("class_names") or ()) \
        if kw["mode"] == "multilabel" else None
    return match_pairs(d.root, mask_dirs)


def _pool(root: str, pairs):
    """The pairs a training run can use: all of them, or with splits/train.txt and val.txt only those listed."""
    val_list, train_list = (os.path.join(root, "splits", f) for f in ("val.txt", "train.txt"))
    if not (os.path.exists(val_list) and os.path.exists(train_list)):
        return pairs
    stems = [p[0] for p in pairs]
    listed = set(read_split_list(val_list, stems)) | set(read_split_list(train_list, stems))
    return [p for p in pairs if p[0] in listed]


def _folds_with_lists(root: str):
    raise ConfigError(f"config.data.num_folds is set but {os.path.join(root, 'splits', 'val.txt')} "
                      "fixes the validation set; remove the splits/ lists or leave num_folds unset")


def shard_plan(config):
    """Every usable pair decoded and checked as in memory (``read_pair``), in name order, with its stem
    and foreground flags; the key holds the root's fingerprint and every parameter shaping a record."""
    from jaxseg.data import cache, streaming

    d, kw = config.data, _shape_kwargs(config)
    pairs = _pairs(config)
    if folds.cross_validating(d) and os.path.exists(os.path.join(d.root, "splits", "val.txt")):
        _folds_with_lists(d.root)
    pool = _pool(d.root, pairs)
    skip = bool(d.get("skip_bad_files", False))
    params = {"image_size" if k == "size" else k: v for k, v in kw.items()}  # config.data's names
    params.update(skip_bad_files=skip, class_names=list(d.get("class_names") or ()))
    source = cache.source_record("folder", SHARD_FORMAT, d.root, params)

    def one(pair):
        try:
            image, mask, weight = read_pair(pair[1], pair[2], kw["size"], kw["channels"], kw["num_classes"],
                                            kw["mode"], kw["ignore_index"])
        except DataError as e:
            if not skip:
                raise
            return str(e)
        example = {"image": image, "mask": mask}
        if weight is not None:
            example["pixel_weight"] = weight
        return example, {"stem": pair[0], **streaming.foreground_flags(mask)}

    return streaming.Plan("folder", source, lambda: (len(pool), streaming.ordered_map(one, pool)),
                          extra={"stems": [p[0] for p in pairs]})


def shard_split(reader, config):
    """The in-memory split over the shards' examples: split lists or a seeded ``val_fraction`` of all
    pairs (bad ones then left out), or fold k of num_folds over the readable pairs."""
    from jaxseg.data import streaming

    d, kw = config.data, _shape_kwargs(config)
    kept = reader.meta["stem"]
    if folds.cross_validating(d):
        if os.path.exists(os.path.join(d.root, "splits", "val.txt")):
            _folds_with_lists(d.root)
        train, val = folds.split(len(kept), d, streaming.strata(reader.meta, kw["mode"], reader.shapes()["mask"][-1]))
    else:
        position = {s: i for i, s in enumerate(kept)}
        train_stems, val_stems = split_stems(d.root, reader.index["stems"], d.val_fraction, d.get("seed", 0))
        train = [position[s] for s in train_stems if s in position]
        val = [position[s] for s in val_stems if s in position]
    for name, idx in (("training", train), ("validation", val)):
        if not len(idx):
            raise DataError(os.path.join(d.root, "images"), f"no readable image/mask pairs for {name}")
    return streaming.Split(np.asarray(train, np.int64), np.asarray(val, np.int64))


def in_memory_bytes(config) -> int:
    """The uint8 arrays the in-memory path holds: pairs × size² × (image channels + mask channels [+ 1])."""
    kw = _shape_kwargs(config)
    per_pixel = kw["channels"] + max(1, kw["num_classes"]) + (kw["ignore_index"] is not None)
    return len(_pairs(config)) * kw["size"] ** 2 * per_pixel
