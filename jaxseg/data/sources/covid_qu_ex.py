"""COVID-QU-Ex chest X-rays (thesis §6.1.1) as a TFDS dataset built from a local copy.

Get the data from Kaggle, "COVID-QU-Ex Dataset" (Anas M. Tahir et al.), unpack it,
and point ``config.data.root`` at the folder that holds (as distributed)::

    Infection Segmentation Data/Infection Segmentation Data/{Train,Val,Test}/
        {COVID-19,Non-COVID,Normal}/{images,infection masks,lung masks}/*.png
    Lung Segmentation Data/Lung Segmentation Data/{Train,Val,Test}/
        {COVID-19,Non-COVID,Normal}/{images,lung masks}/*.png

(the doubled folder level may also be absent). Two builder configs:

* ``infection``: every image of "Infection Segmentation Data" with its
  infection mask and, as the extra feature ``lung_mask``, its lung mask. The
  thesis's infection task is the 2,913 COVID-19 images (``categories``).
* ``lung``: all 33,920 images of "Lung Segmentation Data" with lung masks.
* ``lung_infection`` (multiclass: background / lung / infection) and
  ``lung_and_infection`` (multilabel: lung, infection overlapping), composed at
  load time from the ``infection`` build's two masks (``jaxseg.data.tasks``): the
  same prepared cache, the same default categories (COVID-19).

Each example holds ``image`` (uint8, 1 channel: files stored as RGB are
converted to grayscale), ``mask`` (and ``lung_mask``) as {0,1} (stored 0/255),
``category`` and ``file_name``; splits ``train``, ``validation``, ``test`` are
the official Train/Val/Test. A missing or unreadable file, a mask missing or
of another size than its image, or a mask with values other than 0/255 (or
0/1) stops preparation with a ``DataError`` naming the file — unless
``skip_bad_files``, which leaves such pairs out and lists them in
``skipped_files.txt`` beside the prepared data (and warns at every load).

The prepared copy is keyed by its source (``jaxseg.data.cache``): it lives in
``<cache_dir>/covid_qu_ex-<digest>/covid_qu_ex/<task>/1.0.0/``, the digest
covering the resolved root, the name, size and mtime of every file of the
task's folder, ``task``, ``skip_bad_files`` and the format versions. Another
copy of the data, a changed file or another parameter is prepared afresh into
its own folder (one line on stderr says why); ``source.json``, written last,
marks a copy complete, so a build cut short is never used.

:func:`load` turns the prepared data into a training source: the official
Train/Val split, or (``config.data.val_fraction`` set; the thesis used 0.2)
Train+Val+Test pooled and split at random with the seed ``config.data.seed``.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import sys

import numpy as np
import tensorflow_datasets as tfds

from jaxseg.data import cache, io, tasks
from jaxseg.errors import DataError

CATEGORIES = ("COVID-19", "Non-COVID", "Normal")
SPLITS = {"train": "Train", "validation": "Val", "test": "Test"}
TASK_FOLDERS = {"infection": "Infection Segmentation Data", "lung": "Lung Segmentation Data"}
MASK_FOLDERS = {"infection": ("infection masks", "lung masks"), "lung": ("lung masks",)}
SKIPPED_LIST = "skipped_files.txt"
CACHE_FORMAT = 1  # bump when what a prepared copy holds changes
DOWNLOAD_HELP = (
    "COVID-QU-Ex is not here. Download the Kaggle dataset \"COVID-QU-Ex Dataset\" (Anas M. Tahir "
    "et al.), unpack it, and pass the folder that contains 'Infection Segmentation Data' and "
    "'Lung Segmentation Data' as --config.data.root=/path/to/that/folder.")

log = logging.getLogger(__name__)


def task_folder(root: str, task: str) -> str:
    """The folder holding Train/Val/Test for ``task``; a ``DataError`` that says where to get it if absent."""
    name = TASK_FOLDERS[task]
    for candidate in (os.path.join(root, name, name), os.path.join(root, name)):
        if os.path.isdir(os.path.join(candidate, "Train")):
            return candidate
    raise DataError(os.path.join(root, name), DOWNLOAD_HELP)


def list_pairs(folder: str, task: str, split: str):
    """Yields (category, image_path, [mask_paths]) for one official split, sorted; checks names match."""
    split_dir = os.path.join(folder, SPLITS[split])
    if not os.path.isdir(split_dir):
        raise DataError(split_dir, f"missing split folder (expected {'/'.join(SPLITS.values())}). "
                                   + DOWNLOAD_HELP)
    for category in CATEGORIES:
        cat_dir = os.path.join(split_dir, category)
        if not os.path.isdir(cat_dir):
            continue
        image_dir = os.path.join(cat_dir, "images")
        names = _pngs(image_dir)
        for mask_folder in MASK_FOLDERS[task]:
            orphans = sorted(set(_pngs(os.path.join(cat_dir, mask_folder))) - set(names))
            if orphans:
                raise DataError(os.path.join(cat_dir, mask_folder, orphans[0]), "mask without an image in "
                                + image_dir)
        for name in names:
            masks = [os.path.join(cat_dir, m, name) for m in MASK_FOLDERS[task]]
            yield category, os.path.join(image_dir, name), masks


def _pngs(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise DataError(folder, "missing folder (the dataset copy is incomplete)")
    return sorted(n for n in os.listdir(folder) if n.lower().endswith(".png"))


def read_example(image_path: str, mask_paths: list[str]):
    """Decodes and checks one pair: (image (H,W,1) uint8, [masks (H,W,1) uint8 in {0,1}])."""
    image = io.read_image(image_path, channels=1)
    masks = []
    for path in mask_paths:
        if not os.path.exists(path):
            raise DataError(image_path, f"image has no mask: expected {path}")
        mask = io.read_mask(path)
        io.check_same_size(image, mask, image_path, path)
        masks.append(mask[..., None])
    return image[..., None], masks


class CovidQuEx(tfds.core.GeneratorBasedBuilder):
    """TFDS builder for COVID-QU-Ex from ``manual_dir`` (configs ``infection``, ``lung``)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Official splits; masks in {0,1}; grayscale images."}
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=t, description=f"{t} segmentation") for t in TASK_FOLDERS]
    MANUAL_DOWNLOAD_INSTRUCTIONS = DOWNLOAD_HELP
    # No checksums/metadata folder beside the code. (TFDS 4.9.10's code_path lookup for a
    # builder inside a package needs `importlib_resources`, which it declares only for Python < 3.9.)
    code_path = None

    def __init__(self, *, skip_bad_files: bool = False, **kwargs):
        self.skip_bad_files = skip_bad_files
        self.skipped: list[str] = []
        super().__init__(**kwargs)

    def _info(self):
        img = tfds.features.Image(shape=(None, None, 1))
        features = {"image": img, "mask": img, "category": tfds.features.ClassLabel(names=CATEGORIES),
                    "file_name": tfds.features.Text()}
        if self.builder_config.name == "infection":
            features["lung_mask"] = img
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                     homepage="https://www.kaggle.com/datasets/anasmohammedtahir/covidqu")

    def _split_generators(self, dl_manager):
        folder = task_folder(os.fspath(dl_manager.manual_dir), self.builder_config.name)
        return {split: self._generate_examples(folder, split) for split in SPLITS}

    def _generate_examples(self, folder, split):
        task = self.builder_config.name
        for category, image_path, mask_paths in list_pairs(folder, task, split):
            try:
                image, masks = read_example(image_path, mask_paths)
            except DataError as e:
                if not self.skip_bad_files:
                    raise
                self.skipped.append(str(e))
                continue
            key = os.path.relpath(image_path, folder)
            ex = {"image": image, "mask": masks[0], "category": category, "file_name": key}
            if task == "infection":
                ex["lung_mask"] = masks[1]
            yield key, ex


def cache_record(root: str, task: str, skip_bad_files: bool = False) -> dict:
    """What a prepared copy is built from: the task's files under ``root`` (resolved) and the parameters.

    Categories and ``image_size`` are not in it: the prepared copy holds every
    category at the stored size; :func:`load_split` picks and resizes.
    """
    params = {"task": task, "skip_bad_files": bool(skip_bad_files), "version": str(CovidQuEx.VERSION)}
    return cache.source_record("covid_qu_ex", CACHE_FORMAT, root, params, under=task_folder(root, task))


def prepare(root: str, task: str, data_dir: str, skip_bad_files: bool = False) -> CovidQuEx:
    """The TFDS dataset for ``task`` built from ``root``, prepared under ``data_dir`` unless a current copy exists.

    The copy lives in ``data_dir/covid_qu_ex-<digest>/``, the digest of
    :func:`cache_record`: another root, a changed, added or removed file, or
    another ``task``/``skip_bad_files`` gets its own, freshly built copy (one line on
    stderr says why). A copy counts only once its ``source.json``, written last, matches.
    """
    if not os.path.isdir(root):
        raise DataError(root or "<config.data.root is empty>", DOWNLOAD_HELP)
    if task not in TASK_FOLDERS:
        raise ValueError(f"unknown COVID-QU-Ex build {task!r}; available: {', '.join(TASK_FOLDERS)}")
    record = cache_record(root, task, skip_bad_files)  # also the helpful error when the task folder is absent
    home = os.path.join(data_dir, f"covid_qu_ex-{cache.digest(record)}")
    builder = CovidQuEx(data_dir=home, config=task, skip_bad_files=skip_bad_files)
    if not (cache.read_record(os.path.join(builder.data_dir, cache.RECORD)) == record and builder.is_prepared()):
        builder = _build(builder, root, data_dir, record)
    skipped = skipped_files(builder)
    if skipped:
        if not skip_bad_files:
            raise DataError(os.path.join(builder.data_dir, SKIPPED_LIST),
                            f"this prepared copy left out {len(skipped)} bad files (first: {skipped[0]}); "
                            "fix them and delete this folder, or set config.data.skip_bad_files=True")
        log.warning("COVID-QU-Ex %s: %d bad files were skipped; see %s", task, len(skipped),
                    os.path.join(builder.data_dir, SKIPPED_LIST))
    return builder


def _build(builder: CovidQuEx, root: str, data_dir: str, record: dict) -> CovidQuEx:
    """Prepares ``builder`` from ``root`` and marks it complete with ``record``; says why on stderr."""
    task = record["params"]["task"]
    if os.path.isdir(builder.data_dir):  # TFDS finished but the record was not written: an interrupted build
        reason = "the earlier build here did not finish"
        shutil.rmtree(builder.data_dir)
        builder = CovidQuEx(data_dir=builder.data_dir_root, config=task, skip_bad_files=builder.skip_bad_files)
    else:
        pattern = os.path.join(glob.escape(data_dir), "covid_qu_ex-*", "covid_qu_ex", "*", "*", cache.RECORD)
        reason = cache.change_reason(record, cache.earlier_records(pattern))
    print(f"covid_qu_ex: preparing {task} from {record['root']} into {builder.data_dir} ({reason})", file=sys.stderr)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=root))
    with open(os.path.join(builder.data_dir, SKIPPED_LIST), "w") as f:
        f.writelines(line + "\n" for line in builder.skipped)
    cache.write_record(builder.data_dir, record)
    return builder


def skipped_files(builder: CovidQuEx) -> list[str]:
    path = os.path.join(builder.data_dir, SKIPPED_LIST)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def load_split(builder: CovidQuEx, split: str, image_size: int | None = None,
               categories: tuple[str, ...] = CATEGORIES) -> dict[str, np.ndarray]:
    """One prepared split as uint8 NHWC arrays sorted by file name (+ ``category``, ``file_name``)."""
    keep = {CATEGORIES.index(c) for c in categories}
    rows = []
    for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
        if ex["category"] in keep:
            rows.append(ex)
    rows.sort(key=lambda ex: ex["file_name"])
    spatial = [k for k in ("image", "mask", "lung_mask") if k in builder.info.features]
    out = {}
    for key in spatial:
        arrays = [ex[key] if image_size is None else io.resize(ex[key][..., 0], image_size, key != "image")[..., None]
                  for ex in rows]
        out[key] = np.stack(arrays) if arrays else np.zeros((0, image_size or 0, image_size or 0, 1), np.uint8)
    out["category"] = np.array([ex["category"] for ex in rows], np.int64)
    out["file_name"] = np.array([ex["file_name"].decode() for ex in rows])
    return out


def split_arrays(arrays: dict, val_fraction: float, seed: int) -> tuple[dict, dict]:
    """A seeded random split of every array (see ``pipeline.seeded_split``)."""
    from jaxseg.data import folds

    return folds.split_arrays(arrays, {"val_fraction": val_fraction, "seed": seed})


def load(config, process_index: int = 0, process_count: int = 1):
    """The ``covid_qu_ex`` source for the trainer (see the module docstring for the keys)."""
    from jaxseg.data import folds
    from jaxseg.data.pipeline import source_from_arrays

    d = config.data
    task = d.task
    built = "lung" if task == "lung" else "infection"  # the class tasks come from the infection build's masks
    builder = prepare(d.root, built, cache_dir(d), d.get("skip_bad_files", False))
    categories = tuple(d.get("categories", None) or (("COVID-19",) if built == "infection" else CATEGORIES))
    size = d.image_size

    def get(split):
        return load_split(builder, split, size, categories)

    if d.val_fraction is None and not folds.cross_validating(d):
        train, val = get("train"), get("validation")
    else:  # pooled, then a seeded val_fraction or fold k of num_folds (stratified by infection present)
        pooled = [get(s) for s in SPLITS]
        arrays = {k: np.concatenate([p[k] for p in pooled]) for k in pooled[0]}
        train, val = folds.split_arrays(arrays, d)
    def pick(a):
        if task in ("infection", "lung"):
            return {"image": a["image"], "mask": a["mask"]}
        return {"image": a["image"], "mask": tasks.class_masks(task, a["lung_mask"][..., 0], a["mask"][..., 0])}

    return source_from_arrays(pick(train), pick(val), config, process_index, process_count)


def cache_dir(data_config) -> str:
    """``config.data.cache_dir``, or TFDS's usual ``~/tensorflow_datasets`` when empty."""
    return os.path.expanduser(data_config.get("cache_dir", "") or "~/tensorflow_datasets")


# ---------------------------------------------------------------- streaming shards (jaxseg.data.streaming)

SHARD_FORMAT = 1  # bump when what a record holds changes


def _built_task(task: str) -> str:
    return "lung" if task == "lung" else "infection"  # the class tasks come from the infection build's masks


def shard_plan(config):
    """Every example of every split and category of the prepared TFDS copy, resized to ``image_size`` and
    with the task's masks (as :func:`load_split` and :func:`load`), with split, category, file name and
    whether the build's mask has foreground (the folds' strata)."""
    from jaxseg.data import streaming

    d = config.data
    built, skip = _built_task(d.task), bool(d.get("skip_bad_files", False))
    if not os.path.isdir(d.root):
        raise DataError(d.root or "<config.data.root is empty>", DOWNLOAD_HELP)
    if d.task not in tasks.CLASSES:
        raise ValueError(f"unknown COVID-QU-Ex task {d.task!r}; available: {', '.join(tasks.CLASSES)}")
    record = cache_record(d.root, built, skip)
    source = dict(record, format=SHARD_FORMAT, params=dict(record["params"], build=built, task=d.task,
                                                           image_size=d.image_size))
    size = d.image_size

    def open_():
        builder = prepare(d.root, built, cache_dir(d), skip)
        total = sum(builder.info.splits[s].num_examples for s in SPLITS)
        return total, examples(builder)

    def examples(builder):
        for split_no, split in enumerate(SPLITS):
            for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
                image = io.resize(ex["image"][..., 0], size, False)[..., None]
                mask = io.resize(ex["mask"][..., 0], size, True)
                if d.task in ("infection", "lung"):
                    task_mask = mask[..., None]
                else:
                    task_mask = tasks.class_masks(d.task, io.resize(ex["lung_mask"][..., 0], size, True), mask)
                yield {"image": image, "mask": task_mask}, {
                    "split": split_no, "category": int(ex["category"]), "file_name": ex["file_name"].decode(),
                    "fg": bool(mask.any()), "fg1": False}

    return streaming.Plan("covid_qu_ex", source, open_)


def shard_split(reader, config):
    """The official Train/Val split, or Train+Val+Test pooled and split by ``val_fraction`` or fold k of
    num_folds (stratified by infection present), over the chosen ``categories`` — as :func:`load`."""
    from jaxseg.data import folds, streaming

    d, meta = config.data, reader.meta
    built = _built_task(d.task)
    categories = tuple(d.get("categories", None) or (("COVID-19",) if built == "infection" else CATEGORIES))
    keep = np.isin(np.asarray(meta["category"]), [CATEGORIES.index(c) for c in categories])
    split_of, names = np.asarray(meta["split"]), meta["file_name"]

    def get(split_no):  # one split's examples sorted by file name, as load_split sorts them
        return np.array(sorted(np.flatnonzero((split_of == split_no) & keep), key=lambda i: names[i].encode()),
                        np.int64)

    if d.val_fraction is None and not folds.cross_validating(d):
        return streaming.Split(get(0), get(1))
    pooled = np.concatenate([get(s) for s in range(len(SPLITS))])
    strata = np.asarray(meta["fg"], bool)[pooled] if folds.cross_validating(d) else None
    train, val = folds.split(len(pooled), d, strata)
    return streaming.Split(pooled[train], pooled[val])


def in_memory_bytes(config) -> int:
    """The uint8 arrays the in-memory path holds: the chosen categories' images × size² × (1 + classes);
    counted from the file listing (no decoding)."""
    d = config.data
    built = _built_task(d.task)
    if not os.path.isdir(d.root):
        return 0  # the loader reports the missing data
    categories = set(d.get("categories", None) or (("COVID-19",) if built == "infection" else CATEGORIES))
    rows = cache.fingerprint(d.root, under=task_folder(d.root, built))
    images = sum(1 for name, *_ in rows if name.split("/")[-2:-1] == ["images"]
                 and name.split("/")[-3] in categories)
    return images * d.image_size ** 2 * (1 + tasks.CLASSES.get(d.task, 1))
