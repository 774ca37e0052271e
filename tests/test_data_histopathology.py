"""Whole-slide pipeline on a small tiled pyramidal JPEG TIFF slide with a reduced-resolution label mask."""

import os

import ml_collections
import numpy as np
import pytest
import tifffile

from jaxseg.data.sources import histopathology as hp
from jaxseg.errors import DataError

P = 128  # patch size used in the tests (the default 512 needs bigger slides)
W, H = 6 * P, 4 * P  # a 6 x 4 patch grid
F = 2  # the label image is at half resolution


def make_slide(root, name="s1", tissue=(200, 90, 160)):
    """Tissue (pink, saturated) in patch columns 0-2, white glass in 3-5; label 2 (ADC) in a blob, 1 in another."""
    os.makedirs(os.path.join(root, "slides"), exist_ok=True)
    os.makedirs(os.path.join(root, "labels"), exist_ok=True)
    rng = np.random.default_rng(0)
    img = np.full((H, W, 3), 245, np.uint8)
    tissue = np.array(tissue, np.uint8)
    img[:, : 3 * P] = np.clip(tissue + rng.integers(-20, 20, (H, 3 * P, 3)), 0, 255)
    with tifffile.TiffWriter(os.path.join(root, "slides", name + ".tif"), bigtiff=True) as tw:
        tw.write(img, tile=(64, 64), compression="jpeg", photometric="rgb")
        tw.write(img[::4, ::4].copy(), tile=(64, 64), compression="jpeg", photometric="rgb", subfiletype=1)
    label = np.zeros((H // F, W // F), np.uint8)
    label[10:40, 10:90] = 2  # inside patches (0,0) and (0,1) at full resolution: rows 20-80, cols 20-180
    label[150:160, 100:110] = 1  # rows 300-320, cols 200-220: patch (2, 1)
    tifffile.imwrite(os.path.join(root, "labels", name + ".tif"), label, tile=(32, 32), compression="zlib")
    return os.path.join(root, "slides", name + ".tif"), os.path.join(root, "labels", name + ".tif"), label


def _cfg(**kw):
    return hp.TilingConfig(patch_size=P, tissue_downsample=8, **kw)


def test_tiling_counts_and_figure11_statistics(tmp_path):
    slide, label_path, label = make_slide(str(tmp_path))
    table, keep, stats = hp.tile_slide(slide, label_path, _cfg())
    assert len(table["x"]) == 24
    tissue_cols = sorted(set(table["x"][keep] // P))
    assert tissue_cols == [0, 1, 2] and keep.sum() == 12
    full = np.kron(label, np.ones((F, F), np.uint8))  # the label at slide resolution
    expected = [(full[y:y + P, x:x + P] > 0).sum() for y, x in zip(table["y"], table["x"])]
    np.testing.assert_array_equal(table["positive"], expected)
    s = stats["all_patches"]
    assert s["patches"] == 24 and s["positive_patches"] == 3 and s["positive_pixels"] == (full > 0).sum()
    assert stats["tissue_patches"]["patches"] == 12
    assert stats["tissue_patches"]["positive_pixel_ratio"] == pytest.approx((full > 0).sum() / (12 * P * P))
    assert len(hp.select(table, keep, "positives")) == 3 and len(hp.select(table, keep, "all")) == 12


def test_cache_written_once_with_patch_pixels(tmp_path, monkeypatch):
    slide, label_path, label = make_slide(str(tmp_path))
    cfg = _cfg(positive_labels=(2,))
    folder, index = hp.cached_patches(slide, label_path, cfg, str(tmp_path / "cache"))
    assert len(index["patches"]) == 2  # label 2 only: patches (0,0) and (0,1)
    images, labels = hp.read_cache(folder, index)
    assert images.shape == (2, P, P, 3) and labels.dtype == np.uint8
    full = np.kron(label, np.ones((F, F), np.uint8))
    for k, patch in enumerate(index["patches"]):
        np.testing.assert_array_equal(labels[k], full[patch["y"]:patch["y"] + P, patch["x"]:patch["x"] + P])
    assert abs(images[0].astype(int).mean(axis=(0, 1)) - [200, 90, 160]).max() < 12  # JPEG ~ the tissue colour
    monkeypatch.setattr(hp, "write_cache", lambda *a: pytest.fail("re-tiled a cached slide"))
    assert hp.cached_patches(slide, label_path, cfg, str(tmp_path / "cache"))[0] == folder


def _config(root, cache, **data):
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = dict(name="histopathology", root=root, image_size=64, val_fraction=0.34, seed=0, cache_dir=cache,
                  patch_size=P, tissue_downsample=8, sampling="all", augment=True, random_pick=True,
                  rotation_limit=180.0, flips="both", augment_on="host")
    c.data.update(data)
    c.model = dict(num_classes=1)
    c.train = dict(batch_size=4)
    return c


def test_source_random_pick_and_weighted_sampling(tmp_path):
    from jaxseg.data import get_source

    make_slide(str(tmp_path))
    src = get_source(_config(str(tmp_path), str(tmp_path / "c"), sampling="weighted", sampling_weights=(0.0, 1.0)))
    assert src.num_train + src.num_val == 12
    batch = next(iter(src.train_batches(0)))
    assert batch["image"].shape == (4, 64, 64, 3) and batch["mask"].shape == (4, 64, 64, 1)
    assert set(np.unique(batch["mask"])) <= {0.0, 1.0}
    from jaxseg.data.pipeline import epoch_sample

    positive_train = np.flatnonzero(src.train["mask"].reshape(src.num_train, -1).max(1) > 0)
    assert 0 < len(positive_train) < src.num_train
    assert set(epoch_sample(src.sample_weights, src.seed, 0)) <= set(positive_train)  # weight 0 for negatives
    val = next(iter(src.eval_batches()))
    assert val["image"].shape[1:] == (64, 64, 3)  # centre crops


def test_unreadable_slide_and_inconsistent_labels(tmp_path):
    slide, label_path, label = make_slide(str(tmp_path))
    bad = str(tmp_path / "slides" / "bad.tif")
    with open(bad, "wb") as f:
        f.write(b"II*\x00" + bytes(100))
    with pytest.raises(DataError) as e:
        hp.open_slide(bad)
    assert e.value.path == bad
    tifffile.imwrite(label_path, np.zeros((H // 3 + 5, W // 3), np.uint8))
    with pytest.raises(DataError, match="integer reduction") as e:
        hp.tile_slide(slide, label_path, _cfg())
    assert e.value.path == label_path
    os.remove(label_path)
    with pytest.raises(DataError, match="no label image") as e:
        hp.find_slides(str(tmp_path))
    assert e.value.path.endswith("bad.tif")


def test_slide_level_split_keeps_each_slide_on_one_side(tmp_path):
    from jaxseg.data import get_source

    colours = {"s1": (200, 90, 160), "s2": (90, 60, 200), "s3": (60, 170, 90)}  # one tissue colour per slide
    for name, colour in colours.items():
        make_slide(str(tmp_path), name, colour)

    def slides_of(images):  # the slide each patch came from, by its mean colour
        means = images.reshape(len(images), -1, 3).mean(1)
        return {min(colours, key=lambda n: np.abs(m - colours[n]).sum()) for m in means}

    cache = str(tmp_path / "c")
    src = get_source(_config(str(tmp_path), cache, split_by="slide", val_slides=("s2",)))
    assert src.num_train == 24 and src.num_val == 12  # 12 tissue patches per slide
    assert slides_of(src.train["image"]) == {"s1", "s3"}
    src = get_source(_config(str(tmp_path), cache, split_by="slide", val_fraction=0.34))
    val, train = slides_of(src.val["image"]), slides_of(src.train["image"])
    assert len(val) == 1 and not val & train and val | train == set(colours)
    patch_level = get_source(_config(str(tmp_path), cache, val_fraction=0.34))
    assert len(slides_of(patch_level.val["image"])) > 1  # the default split mixes slides
    with pytest.raises(DataError, match=r"val_slides names \['s9'\]"):
        get_source(_config(str(tmp_path), cache, split_by="slide", val_slides=("s9",)))


def test_slide_level_split_needs_two_slides(tmp_path):
    from jaxseg.data import get_source

    make_slide(str(tmp_path))
    with pytest.raises(DataError, match="at least two slides"):
        get_source(_config(str(tmp_path), str(tmp_path / "c"), split_by="slide"))


def test_skip_bad_files_leaves_out_an_unreadable_slide(tmp_path, capsys):
    from jaxseg.data import get_source

    make_slide(str(tmp_path), "good")
    bad = tmp_path / "slides" / "broken.tif"
    bad.write_bytes(b"II*\x00" + bytes(100))
    tifffile.imwrite(str(tmp_path / "labels" / "broken.tif"), np.zeros((8, 8), np.uint8))
    cache = str(tmp_path / "c")
    with pytest.raises(DataError) as e:
        get_source(_config(str(tmp_path), cache))
    assert e.value.path == str(bad)
    src = get_source(_config(str(tmp_path), cache, skip_bad_files=True))
    assert src.num_train + src.num_val == 12  # the good slide's tissue patches
    err = capsys.readouterr().err
    assert "left out 1 bad slide" in err and str(bad) in err
    bad_only = tmp_path / "only_bad"
    (bad_only / "slides").mkdir(parents=True)
    (bad_only / "labels").mkdir()
    (bad_only / "slides" / "broken.tif").write_bytes(b"II*\x00" + bytes(100))
    tifffile.imwrite(str(bad_only / "labels" / "broken.tif"), np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="no usable slide"):
        get_source(_config(str(bad_only), cache, skip_bad_files=True))


def test_slide_labels_with_an_ignore_value(tmp_path):
    """Label values are the classes; pixels holding config.data.ignore_index get pixel_weight 0, no class."""
    from jaxseg.data import get_source

    _, label_path, label = make_slide(str(tmp_path))
    label = label.copy()
    label[0:10, 0:10] = 255  # an unlabelled corner of patch (0, 0) at full resolution: rows/cols 0-20
    tifffile.imwrite(label_path, label, tile=(32, 32), compression="zlib")
    c = _config(str(tmp_path), str(tmp_path / "c"), ignore_index=255, augment=False, random_pick=False,
                image_size=P)
    c.model = dict(num_classes=3, mode="multiclass")
    src = get_source(c)
    masks = np.concatenate([src.train["mask"], src.val["mask"]])
    weight = np.concatenate([src.train["pixel_weight"], src.val["pixel_weight"]])
    assert masks.shape[-1] == 3 and weight.shape[-1] == 1
    assert (weight == 0).sum() == 20 * 20  # the 10x10 label block at half resolution
    assert (masks[weight[..., 0] == 0] == 0).all()
    np.testing.assert_array_equal(masks[weight[..., 0] == 1].sum(-1), 1)
    c.data.ignore_index = None
    with pytest.raises(DataError, match=r"label 255 found, but num_classes is 3"):
        get_source(c)
