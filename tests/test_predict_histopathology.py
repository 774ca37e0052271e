"""Histopathology runs predict RGB patches (3 channels, / 255 as in training) and whole slides (label TIFF).

Checkpoints are written directly (no training): a seeded random U-Net on 3 channels, and a
"constant" one whose head outputs logit +2 everywhere, so a slide's labels must be exactly
its tissue map (1 on tissue blocks, 0 on glass) at every downsample.
"""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest
import tifffile
from PIL import Image

from jaxseg import models
from jaxseg import training as train
from jaxseg.errors import DataError
from jaxseg.inference import predict, slides
from jaxseg.training import checkpoint as ckpt_lib
from jaxseg.training.optim import build_optimizer

SIZE, P = 16, 64  # model input; patch (tissue decision block) size
W, H = 4 * P, 2 * P  # tissue in x < 2P, glass beyond


def _workdir(path, constant=False):
    path.mkdir(parents=True)
    model_cfg = dict(name="unet", features=4, depth=2)
    state = train.create_train_state(models.get_model(model_cfg), build_optimizer(dict(name="adam")),
                                     jax.random.PRNGKey(0), (SIZE, SIZE, 3))
    if constant:
        params = jax.tree_util.tree_map(lambda x: x, state.params)
        params["head"]["Conv_0"]["kernel"] = np.zeros_like(params["head"]["Conv_0"]["kernel"])
        params["head"]["Conv_0"]["bias"] = np.full_like(params["head"]["Conv_0"]["bias"], 2.0)
        state = state.replace(params=params)
    c = ckpt_lib.Checkpointer(path / "checkpoints")
    c.save(1, state, {"epoch": 1, "epoch_step": 0}, best=True)
    c.wait()
    c.close()
    data = dict(name="histopathology", image_size=SIZE, channels=1,  # configs/default.py's channels: 1
                patch_size=P, tissue_downsample=8, min_tissue_fraction=0.05, min_saturation=0.05)
    (path / "config.json").write_text(json.dumps({"model": model_cfg, "data": data, "eval": {"threshold": 0.5}}))
    return path


def make_slide(path):
    """A 2-level tiled JPEG pyramid TIFF: pink tissue in the left half, white glass in the right."""
    rng = np.random.default_rng(0)
    img = np.full((H, W, 3), 245, np.uint8)
    img[:, : 2 * P] = np.clip(np.array([200, 90, 160]) + rng.integers(-20, 20, (H, 2 * P, 3)), 0, 255)
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(img, tile=(64, 64), compression="jpeg", photometric="rgb")
        tw.write(img[::4, ::4].copy(), tile=(64, 64), compression="jpeg", photometric="rgb", subfiletype=1)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("histo")
    return _workdir(root / "random"), _workdir(root / "constant", constant=True), make_slide(root / "slide.tif")


def test_histopathology_runs_take_rgb_patches(runs, tmp_path):
    random_run, _, _ = runs
    predictor = predict.Predictor(random_run)
    assert predictor.channels == 3  # from the data set, whatever config.data.channels says
    rgb = np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    tifffile.imwrite(tmp_path / "p.tif", rgb, photometric="rgb")  # a plain TIFF patch, not a slide
    for name in ("p.png", "p.tif"):
        np.testing.assert_allclose(predict.read_input(tmp_path / name, 3), rgb / 255.0, atol=1e-7)
    assert not slides.is_slide(tmp_path / "p.tif", True)
    with pytest.raises(DataError, match="histopathology run"):
        slides.is_slide(tmp_path / "x.svs", False)


@pytest.mark.parametrize("downsample", [1, 4])
def test_slide_labels_are_the_tissue_map_at_any_downsample(runs, tmp_path, downsample):
    _, constant_run, slide = runs
    result = predict.predict_files(str(constant_run), [str(slide)], str(tmp_path), downsample=downsample,
                                   progress=False)
    assert not result.failures
    out = tmp_path / f"slide_mask_ds{downsample}.tif"
    assert result.written[0].outputs == [str(out)]
    with tifffile.TiffFile(out) as tif:
        labels = tif.asarray()
        meta = json.loads(tif.pages.first.description)
    assert labels.dtype == np.uint8 and labels.shape == (H // downsample, W // downsample)
    assert meta["downsample"] == downsample and meta["level0_size"] == [W, H]
    expected = np.zeros_like(labels)
    expected[:, : 2 * P // downsample] = 1  # tissue blocks: the model's constant 0.88 > 0.5; glass: never predicted
    np.testing.assert_array_equal(labels, expected)
    assert result.written[0].slide["tissue_blocks"] == 4 and result.written[0].slide["blocks"] == 8


def test_predict_command_on_a_slide_and_an_rgb_patch(runs, tmp_path):
    random_run, _, slide = runs
    rgb = np.random.default_rng(4).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "patch.png")
    out = subprocess.run([sys.executable, "-m", "jaxseg.predict", f"--workdir={random_run}", "--input", str(slide),
                          "patch.png", "--output=out", "--downsample=2", "--mode=tile", "--prob-format=npy",
                          "--threshold=0"],  # every probability > 0: all tissue is labelled
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert f"({W}x{H} at level 0)" in out.stdout and f"labels at downsample 2 ({W // 2}x{H // 2})" in out.stdout
    with tifffile.TiffFile(tmp_path / "out" / "slide_mask_ds2.tif") as tif:
        labels = tif.asarray()
        meta = json.loads(tif.pages.first.description)
    assert meta["downsample"] == 2 and meta["threshold"] == 0
    assert labels.shape == (H // 2, W // 2) and labels.dtype == np.uint8
    assert labels[:, :P].all() and not labels[:, P:].any()  # tissue predicted, glass never
    expected = predict.Predictor(random_run)((rgb / 255.0).astype(np.float32)[None])[0]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "patch_prob.npy"), expected, atol=1e-6)
    overlay = np.asarray(Image.open(tmp_path / "out" / "patch_overlay.png"))
    assert overlay.shape == (SIZE, SIZE, 3)
