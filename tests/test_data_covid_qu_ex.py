"""COVID-QU-Ex builder on a miniature tree of real PNG files (layout as distributed)."""

import os

import numpy as np
import pytest
from PIL import Image

from jaxseg.data.sources import covid_qu_ex
from jaxseg.errors import DataError

SPLIT_DIRS = ("Train", "Val", "Test")
PER_FOLDER = 2  # images per split x category
SIZE = 32


def _image(seed):
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)


def _mask(seed):
    m = np.zeros((SIZE, SIZE), np.uint8)
    r = np.random.default_rng(seed + 1000).integers(4, 20)
    m[r:r + 8, 4:4 + r] = 255
    return m


def make_tree(root):
    """Both tasks, every split and category; one X-ray stored as RGB. Returns {relative name: seed}."""
    seeds = {}
    for task, mask_dirs in (("Infection Segmentation Data", ("infection masks", "lung masks")),
                            ("Lung Segmentation Data", ("lung masks",))):
        for split in SPLIT_DIRS:
            for cat in covid_qu_ex.CATEGORIES:
                base = os.path.join(root, task, task, split, cat)
                for d in ("images",) + mask_dirs:
                    os.makedirs(os.path.join(base, d))
                for i in range(PER_FOLDER):
                    seed = len(seeds)
                    name = f"{cat.lower()}_{split}_{i}.png"
                    img = _image(seed)
                    if seed == 0:
                        Image.fromarray(np.stack([img] * 3, -1)).save(os.path.join(base, "images", name))
                    else:
                        Image.fromarray(img).save(os.path.join(base, "images", name))
                    for j, d in enumerate(mask_dirs):
                        Image.fromarray(_mask(seed + 7 * j)).save(os.path.join(base, d, name))
                    seeds[os.path.join(task, split, cat, name)] = seed
    return seeds


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("covid")
    make_tree(str(root))
    return str(root)


@pytest.fixture(scope="module")
def infection(tree, tmp_path_factory):
    return covid_qu_ex.prepare(tree, "infection", str(tmp_path_factory.mktemp("tfds")))


def test_infection_counts_splits_values(infection):
    b = infection
    for split in ("train", "validation", "test"):
        assert b.info.splits[split].num_examples == 3 * PER_FOLDER
    arrays = covid_qu_ex.load_split(b, "train", categories=("COVID-19",))
    assert arrays["image"].shape == (PER_FOLDER, SIZE, SIZE, 1)
    assert arrays["image"].dtype == np.uint8 and arrays["mask"].dtype == np.uint8
    for key in ("mask", "lung_mask"):
        assert set(np.unique(arrays[key])) == {0, 1}
    names = list(arrays["file_name"])
    assert names == sorted(names) and all(n.startswith("Train/COVID-19/images/") for n in names)
    # the RGB-stored image (seed 0) comes back as its grayscale pixels
    assert names[0] == "Train/COVID-19/images/covid-19_Train_0.png"
    np.testing.assert_array_equal(arrays["image"][0, ..., 0], _image(0))
    np.testing.assert_array_equal(arrays["mask"][0, ..., 0], _mask(0) // 255)
    np.testing.assert_array_equal(arrays["lung_mask"][0, ..., 0], _mask(7) // 255)


def test_lung_task_has_all_categories(tree, tmp_path):
    b = covid_qu_ex.prepare(tree, "lung", str(tmp_path))
    arrays = covid_qu_ex.load_split(b, "test")
    assert len(arrays["image"]) == 3 * PER_FOLDER
    assert sorted(set(arrays["category"].tolist())) == [0, 1, 2]
    assert "lung_mask" not in arrays


def test_pooled_seeded_split(infection):
    pooled = [covid_qu_ex.load_split(infection, s, categories=("COVID-19",)) for s in covid_qu_ex.SPLITS]
    arrays = {k: np.concatenate([p[k] for p in pooled]) for k in pooled[0]}
    tr1, va1 = covid_qu_ex.split_arrays(arrays, 0.2, seed=3)
    tr2, va2 = covid_qu_ex.split_arrays(arrays, 0.2, seed=3)
    _, va3 = covid_qu_ex.split_arrays(arrays, 0.5, seed=4)
    n = 3 * PER_FOLDER
    assert len(va1["image"]) == round(0.2 * n) and len(tr1["image"]) == n - round(0.2 * n)
    assert list(va1["file_name"]) == list(va2["file_name"])
    assert not set(va1["file_name"]) & set(tr1["file_name"])
    assert len(va3["file_name"]) == n // 2


def _config(root, cache, **data):
    import ml_collections

    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = dict(name="covid_qu_ex", root=root, task="infection", image_size=16, val_fraction=None,
                  seed=0, cache_dir=cache)
    c.data.update(data)
    c.train = dict(batch_size=2)
    return c


def test_source_through_registry(tree, tmp_path):
    from jaxseg.data import get_source

    src = get_source(_config(tree, str(tmp_path)))
    assert src.num_train == PER_FOLDER and src.num_val == PER_FOLDER  # COVID-19, official Train/Val
    batch = next(iter(src.train_batches(0)))
    assert batch["image"].shape == (2, 16, 16, 1) and batch["image"].dtype == np.float32
    assert set(np.unique(batch["mask"])) <= {0.0, 1.0} and batch["image"].max() <= 1.0
    pooled = get_source(_config(tree, str(tmp_path), val_fraction=0.5))
    assert pooled.num_train + pooled.num_val == 3 * PER_FOLDER


def test_missing_root_says_where_to_get_it(tmp_path):
    with pytest.raises(DataError, match="Kaggle") as e:
        covid_qu_ex.prepare(str(tmp_path / "nowhere"), "lung", str(tmp_path / "tfds"))
    assert "nowhere" in e.value.path
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DataError, match="config.data.root"):
        covid_qu_ex.prepare(str(tmp_path / "empty"), "lung", str(tmp_path / "tfds"))


def _broken_tree(tmp_path, damage):
    root = str(tmp_path / "data")
    make_tree(root)
    base = os.path.join(root, "Lung Segmentation Data", "Lung Segmentation Data", "Val", "Normal")
    target = damage(base)
    return root, target


def _truncate(base):
    path = os.path.join(base, "images", "normal_Val_1.png")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    return path


def _missing_mask(base):
    os.remove(os.path.join(base, "lung masks", "normal_Val_0.png"))
    return os.path.join(base, "images", "normal_Val_0.png")


def _wrong_size(base):
    path = os.path.join(base, "lung masks", "normal_Val_1.png")
    Image.fromarray(np.zeros((SIZE, SIZE + 1), np.uint8)).save(path)
    return path


def _bad_values(base):
    path = os.path.join(base, "lung masks", "normal_Val_1.png")
    Image.fromarray(np.full((SIZE, SIZE), 128, np.uint8)).save(path)
    return path


def _orphan_mask(base):
    path = os.path.join(base, "lung masks", "stray.png")
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(path)
    return path


@pytest.mark.parametrize("damage,message", [(_truncate, "cannot decode"), (_missing_mask, "no mask"),
                                            (_wrong_size, "33x32"), (_bad_values, r"values \[128\]"),
                                            (_orphan_mask, "without an image")])
def test_bad_files_name_the_file(tmp_path, damage, message):
    root, target = _broken_tree(tmp_path, damage)
    with pytest.raises(DataError, match=message) as e:
        covid_qu_ex.prepare(root, "lung", str(tmp_path / "tfds"))
    assert e.value.path == target


def test_skip_bad_files_lists_them(tmp_path):
    root, target = _broken_tree(tmp_path, _truncate)
    b = covid_qu_ex.prepare(root, "lung", str(tmp_path / "tfds"), skip_bad_files=True)
    assert b.info.splits["validation"].num_examples == 3 * PER_FOLDER - 1
    skipped = covid_qu_ex.skipped_files(b)
    assert len(skipped) == 1 and skipped[0].startswith(target)
    with pytest.raises(DataError, match="skip_bad_files"):  # the prepared copy is incomplete: say so
        covid_qu_ex.prepare(root, "lung", str(tmp_path / "tfds"))
