"""Folder datasets (images/ + masks/ with matching names) on tiny real files."""

import os

import ml_collections
import numpy as np
import pytest
import tifffile
from PIL import Image

from jaxseg.data.sources import folder
from jaxseg.errors import DataError

SIZE = 32


def _pair(i, classes=2):
    rng = np.random.default_rng(i)
    img = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    labels = np.zeros((SIZE, SIZE), np.uint8)
    for c in range(1, classes):
        labels[4 * c:4 * c + 6, i:i + 10] = c
    return img, labels


def make_folder(root, n=6, classes=2):
    """Images as PNG/JPEG/TIFF, masks as PNG (0/255 and 0/1) or TIFF."""
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "masks"))
    for i in range(n):
        img, labels = _pair(i, classes)
        stem = f"case{i:02d}"
        if i % 3 == 0:
            Image.fromarray(img).save(os.path.join(root, "images", stem + ".png"))
        elif i % 3 == 1:
            Image.fromarray(img).save(os.path.join(root, "images", stem + ".jpg"), quality=95)
        else:
            tifffile.imwrite(os.path.join(root, "images", stem + ".tif"), img)
        stored = labels * 255 if (classes == 2 and i % 2 == 0) else labels
        if i % 3 == 2:
            tifffile.imwrite(os.path.join(root, "masks", stem + ".tiff"), stored)
        else:
            Image.fromarray(stored).save(os.path.join(root, "masks", stem + ".png"))
    return root


def _config(root, **data):
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = dict(name="folder", root=str(root), image_size=SIZE, val_fraction=None, seed=0)
    c.data.update(data)
    c.model = dict(num_classes=1)
    c.train = dict(batch_size=2)
    return c


def test_binary_folder_values_and_seeded_split(tmp_path):
    root = make_folder(str(tmp_path / "ds"))
    train, val, skipped = folder.load_arrays(_config(root))
    assert len(train["image"]) == 5 and len(val["image"]) == 1 and not skipped  # default 0.2 of 6
    for arrays in (train, val):
        assert arrays["image"].dtype == np.uint8 and arrays["image"].shape[1:] == (SIZE, SIZE, 1)
        assert arrays["mask"].dtype == np.uint8 and arrays["mask"].shape[1:] == (SIZE, SIZE, 1)
    masks = np.concatenate([train["mask"], val["mask"]])
    assert set(np.unique(masks)) == {0, 1}
    expected = {i: _pair(i)[1] for i in range(6)}
    all_masks = sorted(m[..., 0].tobytes() for m in masks)
    assert all_masks == sorted(v.tobytes() for v in expected.values())
    again = folder.load_arrays(_config(root))
    np.testing.assert_array_equal(again[1]["image"], val["image"])
    other = folder.load_arrays(_config(root, seed=1, val_fraction=0.5))
    assert len(other[1]["image"]) == 3


def test_png_and_tiff_pixels_exact_and_resize(tmp_path):
    root = make_folder(str(tmp_path / "ds"))
    pairs = folder.match_pairs(root)
    img, mask, _ = folder.read_pair(pairs[2][1], pairs[2][2], SIZE, 1, 1)  # case02: TIFF image and mask
    np.testing.assert_array_equal(img[..., 0], _pair(2)[0])
    np.testing.assert_array_equal(mask[..., 0], _pair(2)[1])
    small, small_mask, _ = folder.read_pair(pairs[0][1], pairs[0][2], 16, 3, 1)
    assert small.shape == (16, 16, 3) and small_mask.shape == (16, 16, 1)
    assert set(np.unique(small_mask)) <= {0, 1}


def test_split_lists_and_multiclass(tmp_path):
    root = make_folder(str(tmp_path / "ds"), classes=3)
    os.makedirs(os.path.join(root, "splits"))
    with open(os.path.join(root, "splits", "val.txt"), "w") as f:
        f.write("# held out\ncase01.jpg\ncase04\n")
    c = _config(root)
    c.model.num_classes = 3
    train, val, _ = folder.load_arrays(c)
    assert len(train["image"]) == 4 and len(val["image"]) == 2
    assert val["mask"].shape[1:] == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(val["mask"].sum(-1), 1)  # one-hot
    np.testing.assert_array_equal(val["mask"][0].argmax(-1), _pair(1, 3)[1])


def test_source_batches(tmp_path):
    from jaxseg.data import get_source

    src = get_source(_config(make_folder(str(tmp_path / "ds")), augment=True, flips="both"))
    batch = next(iter(src.train_batches(0)))
    assert batch["image"].dtype == np.float32 and batch["mask"].shape == (2, SIZE, SIZE, 1)
    assert set(np.unique(batch["mask"])) <= {0.0, 1.0}


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _dup(root):
    Image.fromarray(_pair(0)[0]).save(os.path.join(root, "images", "case00.bmp"))
    return os.path.join(root, "images", "case00.png")


def _missing_mask(root):
    os.remove(os.path.join(root, "masks", "case03.png"))
    return os.path.join(root, "images", "case03.png")


def _orphan(root):
    Image.fromarray(_pair(0)[1]).save(os.path.join(root, "masks", "zzz.png"))
    return os.path.join(root, "masks", "zzz.png")


def _corrupt_tiff(root):
    path = os.path.join(root, "images", "case02.tif")
    data = open(path, "rb").read()
    _write(path, data[:12])
    return path


def _three_values(root):
    path = os.path.join(root, "masks", "case00.png")
    Image.fromarray(np.array([[0, 1, 255]] * 3, np.uint8)).save(path)
    return path


def _jpeg_mask(root):  # lossy masks get stray values
    os.remove(os.path.join(root, "masks", "case03.png"))
    path = os.path.join(root, "masks", "case03.jpg")
    Image.fromarray(_pair(3)[1] * 255).save(path, quality=50)
    return path


def _size(root):
    path = os.path.join(root, "masks", "case01.png")
    Image.fromarray(np.zeros((SIZE + 2, SIZE), np.uint8)).save(path)
    return path


def _unknown_in_list(root):
    os.makedirs(os.path.join(root, "splits"))
    path = os.path.join(root, "splits", "val.txt")
    _write(path, b"case00\nnope.png\n")
    return path


def _empty_images(root):
    for name in os.listdir(os.path.join(root, "images")):
        os.remove(os.path.join(root, "images", name))
    return os.path.join(root, "images")


@pytest.mark.parametrize("damage,message", [
    (_dup, "duplicate"), (_missing_mask, "no mask"), (_orphan, "no image"), (_corrupt_tiff, "cannot decode"),
    (_three_values, "values"), (_jpeg_mask, "values"), (_size, "mask is 32x34"),
    (_unknown_in_list, "'nope.png' is not in images"), (_empty_images, "no image files")])
def test_bad_input_names_the_file(tmp_path, damage, message):
    root = make_folder(str(tmp_path / "ds"))
    target = damage(root)
    with pytest.raises(DataError, match=message) as e:
        folder.load_arrays(_config(root, val_fraction=0.5))
    assert e.value.path == target


def test_skip_bad_files_lists_them(tmp_path):
    root = make_folder(str(tmp_path / "ds"))
    target = _corrupt_tiff(root)
    train, val, skipped = folder.load_arrays(_config(root, val_fraction=0.5, skip_bad_files=True))
    assert len(train["image"]) + len(val["image"]) == 5
    assert len(skipped) == 1 and skipped[0].startswith(target)


def _write_pngs(root, stems, images, masks_by_dir):
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    for stem, img in zip(stems, images):
        Image.fromarray(img).save(os.path.join(root, "images", stem + ".png"))
    for folder, masks in masks_by_dir.items():
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for stem, m in zip(stems, masks):
            Image.fromarray(m).save(os.path.join(root, folder, stem + ".png"))


def _mode_config(root, mode, num_classes, **data):
    c = _config(root, val_fraction=0.5, **data)
    c.model = dict(num_classes=num_classes, mode=mode)
    return c


def test_multiclass_palette_masks_and_the_ignore_label(tmp_path):
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 3, (SIZE, SIZE)).astype(np.uint8) for _ in range(4)]
    labels[0][:4, :4] = 255  # ignored pixels
    root = str(tmp_path / "ds")
    os.makedirs(os.path.join(root, "masks"))
    _write_pngs(root, [f"c{i}" for i in range(4)], [rng.integers(0, 255, (SIZE, SIZE), np.uint8)] * 4, {})
    for i, lab in enumerate(labels):  # indexed PNG with a palette: pixel values are the class indices
        im = Image.fromarray(lab, mode="P")
        im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [255, 255, 255] * 253)
        im.save(os.path.join(root, "masks", f"c{i}.png"))
    train, val, _ = folder.load_arrays(_mode_config(root, "multiclass", 3, ignore_index=255))
    masks = np.concatenate([train["mask"], val["mask"]])
    weights = np.concatenate([train["pixel_weight"], val["pixel_weight"]])
    assert masks.shape[-1] == 3 and weights.shape[-1] == 1
    ignored = weights[..., 0] == 0
    assert ignored.sum() == 16  # exactly the 4x4 block of one image
    assert (masks[ignored] == 0).all()  # an ignored pixel is no class
    np.testing.assert_array_equal(masks[~ignored].sum(-1), 1)  # every other pixel exactly one class


def test_a_label_beyond_the_classes_names_the_file_and_value(tmp_path):
    root = str(tmp_path / "ds")
    lab = np.zeros((SIZE, SIZE), np.uint8)
    lab[0, 0] = 7
    _write_pngs(root, ["a", "b"], [np.zeros((SIZE, SIZE), np.uint8)] * 2, {"masks": [lab, lab * 0]})
    with pytest.raises(DataError, match=r"masks/a\.png: mask has label\(s\) \[7\], but there are only 3 classes"):
        folder.load_arrays(_mode_config(root, "multiclass", 3))


@pytest.mark.parametrize("class_names", [(), ("lung", "infection")])
def test_multilabel_masks_from_one_folder_per_class(tmp_path, class_names):
    rng = np.random.default_rng(1)
    stems = ["a", "b", "c", "d"]
    lung = [(rng.random((SIZE, SIZE)) < 0.5).astype(np.uint8) * 255 for _ in stems]
    inf = [m & (rng.random((SIZE, SIZE)) < 0.5).astype(np.uint8) * 255 for m in lung]  # overlaps the lung
    dirs = [f"masks/{n}" for n in (class_names or ("0", "1"))]
    root = str(tmp_path / "ds")
    _write_pngs(root, stems, [np.zeros((SIZE, SIZE), np.uint8)] * 4, dict(zip(dirs, (lung, inf))))
    train, val, _ = folder.load_arrays(_mode_config(root, "multilabel", 2, class_names=class_names))
    order = folder.split_stems(root, stems, 0.5, 0)
    by_stem = dict(zip(order[0] + order[1], np.concatenate([train["mask"], val["mask"]])))
    for i, stem in enumerate(stems):
        np.testing.assert_array_equal(by_stem[stem][..., 0], lung[i] // 255)
        np.testing.assert_array_equal(by_stem[stem][..., 1], inf[i] // 255)


def test_multilabel_needs_every_class_folder(tmp_path):
    root = str(tmp_path / "ds")
    _write_pngs(root, ["a"], [np.zeros((SIZE, SIZE), np.uint8)], {"masks/0": [np.zeros((SIZE, SIZE), np.uint8)]})
    with pytest.raises(DataError, match=r"masks/1: missing class folder"):
        folder.load_arrays(_mode_config(root, "multilabel", 2))
