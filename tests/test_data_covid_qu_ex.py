"""COVID-QU-Ex builder on a miniature tree of real PNG files (layout as distributed)."""

import os
import shutil

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
    with pytest.raises(DataError, match="cannot decode") as e:  # not the copy that left it out: rebuilt, fails
        covid_qu_ex.prepare(root, "lung", str(tmp_path / "tfds"))
    assert e.value.path == target


# ------------------------------------------------------------ the prepared copy follows its source

SMALL = 8


def make_small(root, variant=0):
    """Both tasks, one Normal image per split, 8x8; ``variant`` changes every mask. Returns the mask paths."""
    masks = []
    for task, mask_dirs in (("Infection Segmentation Data", ("infection masks", "lung masks")),
                            ("Lung Segmentation Data", ("lung masks",))):
        for k, split in enumerate(SPLIT_DIRS):
            base = os.path.join(root, task, task, split, "Normal")
            for d in ("images",) + mask_dirs:
                os.makedirs(os.path.join(base, d))
            Image.fromarray(np.full((SMALL, SMALL), 40 * k, np.uint8)).save(os.path.join(base, "images", "n.png"))
            for d in mask_dirs:
                masks.append(os.path.join(base, d, "n.png"))
                Image.fromarray(_small_mask(k, variant)).save(masks[-1])
    return masks


def _small_mask(k, variant):
    m = np.zeros((SMALL, SMALL), np.uint8)
    m[: k + 1 + 3 * variant] = 255
    return m


def _train_masks(builder):
    return covid_qu_ex.load_split(builder, "train")["mask"][..., 0]


def test_another_copy_is_another_cache(tmp_path, capsys):
    a, b, tfds_dir = str(tmp_path / "A"), str(tmp_path / "B"), str(tmp_path / "tfds")
    make_small(a)
    make_small(b, variant=1)
    built_a = covid_qu_ex.prepare(a, "lung", tfds_dir)
    np.testing.assert_array_equal(_train_masks(built_a)[0], _small_mask(0, 0) // 255)
    built_b = covid_qu_ex.prepare(b, "lung", tfds_dir)
    assert built_b.data_dir != built_a.data_dir
    np.testing.assert_array_equal(_train_masks(built_b)[0], _small_mask(0, 1) // 255)  # B's masks, not A's
    err = capsys.readouterr().err
    assert err.count("covid_qu_ex: preparing lung") == 2 and f"source folder {os.path.realpath(a)} ->" in err


def test_a_file_changed_in_place_is_rebuilt(tmp_path, capsys):
    root, tfds_dir = str(tmp_path / "A"), str(tmp_path / "tfds")
    masks = make_small(root)
    first = covid_qu_ex.prepare(root, "lung", tfds_dir)
    train_mask = [m for m in masks if "Lung Segmentation" in m and "Train" in m][0]
    Image.fromarray(_small_mask(0, 1)).save(train_mask)
    st = os.stat(train_mask)
    os.utime(train_mask, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = covid_qu_ex.prepare(root, "lung", tfds_dir)
    assert second.data_dir != first.data_dir
    np.testing.assert_array_equal(_train_masks(second)[0], _small_mask(0, 1) // 255)
    assert "1 files modified (first: Lung Segmentation Data/Lung Segmentation Data/Train/Normal/lung masks/n.png)" \
        in capsys.readouterr().err


def test_a_file_truncated_after_the_first_build_is_named(tmp_path):
    root, tfds_dir = str(tmp_path / "A"), str(tmp_path / "tfds")
    make_small(root)
    val = os.path.join(root, "Lung Segmentation Data", "Lung Segmentation Data", "Val", "Normal")
    for d in ("images", "lung masks"):  # a second validation pair, so the split is not empty without the bad one
        shutil.copy(os.path.join(val, d, "n.png"), os.path.join(val, d, "m.png"))
    covid_qu_ex.prepare(root, "lung", tfds_dir)
    path = os.path.join(val, "images", "n.png")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    for _ in range(2):  # and the old copy is never served instead
        with pytest.raises(DataError, match="cannot decode") as e:
            covid_qu_ex.prepare(root, "lung", tfds_dir)
        assert e.value.path == path
    skipping = covid_qu_ex.prepare(root, "lung", tfds_dir, skip_bad_files=True)
    assert skipping.info.splits["validation"].num_examples == 1
    assert [s.split(":")[0] for s in covid_qu_ex.skipped_files(skipping)] == [path]


def test_same_source_and_parameters_reuse_the_cache(tmp_path, monkeypatch, capsys):
    root, tfds_dir = str(tmp_path / "A"), str(tmp_path / "tfds")
    make_small(root)
    first = covid_qu_ex.prepare(root, "lung", tfds_dir)
    record = os.path.join(first.data_dir, "source.json")
    mtime = os.stat(record).st_mtime_ns
    capsys.readouterr()
    monkeypatch.setattr(covid_qu_ex.CovidQuEx, "download_and_prepare", lambda *a, **k: pytest.fail("rebuilt"))
    os.symlink(root, tmp_path / "link")  # the same folder by another name
    for r in (root, str(tmp_path / "link")):
        assert covid_qu_ex.prepare(r, "lung", tfds_dir).data_dir == first.data_dir
    # categories and image_size pick from the prepared copy: no rebuild either
    from jaxseg.data import get_source

    config = _config(root, tfds_dir, task="lung", categories=("Normal",), image_size=4)
    config.train.batch_size = 1
    src = get_source(config)
    assert src.num_train == 1 and src.train["image"].shape == (1, 4, 4, 1)
    assert os.stat(record).st_mtime_ns == mtime and "preparing" not in capsys.readouterr().err


def test_task_and_skip_bad_files_key_the_cache(tmp_path):
    root, tfds_dir = str(tmp_path / "A"), str(tmp_path / "tfds")
    make_small(root)
    dirs = {covid_qu_ex.prepare(root, "lung", tfds_dir).data_dir,
            covid_qu_ex.prepare(root, "infection", tfds_dir).data_dir,
            covid_qu_ex.prepare(root, "lung", tfds_dir, skip_bad_files=True).data_dir}
    assert len(dirs) == 3
    lung = covid_qu_ex.prepare(root, "lung", tfds_dir)
    assert "lung_mask" not in lung.info.features and lung.data_dir in dirs


def test_an_interrupted_build_is_not_taken_as_complete(tmp_path, monkeypatch, capsys):
    root, tfds_dir = str(tmp_path / "A"), str(tmp_path / "tfds")
    make_small(root)
    real = covid_qu_ex.read_example
    calls = []

    def crash_on_second(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(covid_qu_ex, "read_example", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        covid_qu_ex.prepare(root, "lung", tfds_dir)
    monkeypatch.setattr(covid_qu_ex, "read_example", real)
    built = covid_qu_ex.prepare(root, "lung", tfds_dir)  # built in full, not the first split only
    assert [built.info.splits[s].num_examples for s in covid_qu_ex.SPLITS] == [1, 1, 1]
    os.remove(os.path.join(built.data_dir, "source.json"))  # TFDS finished, the record never written
    capsys.readouterr()
    again = covid_qu_ex.prepare(root, "lung", tfds_dir)
    assert "the earlier build here did not finish" in capsys.readouterr().err
    assert os.path.exists(os.path.join(again.data_dir, "source.json"))
    assert len(covid_qu_ex.load_split(again, "test")["image"]) == 1


@pytest.mark.parametrize("task, mode, channels", [("lung_infection", "multiclass", 3),
                                                  ("lung_and_infection", "multilabel", 2)])
def test_class_tasks_compose_the_infection_builds_masks(tree, tmp_path, task, mode, channels):
    import ml_collections

    from jaxseg.data import get_source, tasks

    c = _config(tree, str(tmp_path), task=task)
    c.model = ml_collections.ConfigDict(dict(num_classes=channels, mode=mode))
    source = get_source(c)
    assert source.mask_channels == channels
    # the same pixels as the infection build's two masks, composed by jaxseg.data.tasks
    built = covid_qu_ex.prepare(tree, "infection", covid_qu_ex.cache_dir(c.data))
    val = covid_qu_ex.load_split(built, "validation", c.data.image_size, ("COVID-19",))
    expected = tasks.class_masks(task, val["lung_mask"][..., 0], val["mask"][..., 0])
    got = np.concatenate([b["mask"][b["valid"]] for b in source.eval_batches()])
    np.testing.assert_array_equal(got, expected)
    if mode == "multiclass":
        np.testing.assert_array_equal(got.sum(-1), 1)
