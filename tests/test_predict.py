"""jaxseg.inference.predict on PNG and DICOM files with a tiny checkpoint written in the test."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from jaxseg.errors import JaxsegError
from jaxseg.training import checkpoint as ckpt_lib
from jaxseg import models
from jaxseg import training as train
from jaxseg.inference import predict
from jaxseg.training.optim import build_optimizer

SIZE = 16


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    wd = tmp_path_factory.mktemp("run")
    model_cfg = dict(name="unet", features=4, depth=2)
    model = models.get_model(model_cfg)
    tx = build_optimizer(dict(name="adam", learning_rate=1e-3))
    state = train.create_train_state(model, tx, jax.random.PRNGKey(0), (SIZE, SIZE, 1))
    c = ckpt_lib.Checkpointer(wd / "checkpoints")
    c.save(1, state, {"epoch": 1, "epoch_step": 0}, best=True)
    c.wait()
    c.close()
    (wd / "config.json").write_text(json.dumps(
        {"model": model_cfg, "data": {"image_size": SIZE}, "eval": {"threshold": 0.5}}))
    return wd


def _write_dicom(path, pixels):
    pydicom = pytest.importorskip("pydicom")
    from tests.helpers import write_dicom

    write_dicom(path, pixels, slope=2, intercept=-100)
    assert pydicom.dcmread(str(path)).pixel_array.shape == pixels.shape


def test_png_and_dicom_end_to_end(workdir, tmp_path):
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(rng.integers(0, 256, (20, 28), dtype=np.uint8)).save(inputs / "xray.png")
    _write_dicom(inputs / "scan.dcm", rng.integers(0, 4096, (24, 18)))
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    failures = predict.run(str(workdir), [str(inputs)], str(out), mode="tile", tta=True, progress=False)
    assert [f for f, _ in failures] == [str(inputs / "broken.png")]
    assert "broken.png" in failures[0][1]
    for stem, shape in (("xray", (20, 28)), ("scan", (24, 18))):
        prob = np.asarray(Image.open(out / f"{stem}_prob.png"))
        mask = np.asarray(Image.open(out / f"{stem}_mask.png"))
        overlay = np.asarray(Image.open(out / f"{stem}_overlay.png"))
        assert prob.shape == mask.shape == shape and overlay.shape == shape + (3,)
        assert set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask == 255, prob / 65535 > 0.5)


def test_dicom_is_rescaled_to_unit_range(tmp_path):
    pixels = np.arange(12 * 10).reshape(12, 10)
    _write_dicom(tmp_path / "a.dcm", pixels)
    img = predict.read_input(tmp_path / "a.dcm")
    assert img.shape == (12, 10, 1) and img.dtype == np.float32
    np.testing.assert_allclose(img[..., 0], pixels / pixels.max(), atol=1e-6)


def test_tiling_of_a_model_size_image_equals_the_direct_prediction(workdir):
    predictor = predict.Predictor(workdir)
    image = np.random.default_rng(1).random((SIZE, SIZE, 1), dtype=np.float32)
    direct = predictor(image[None])[0]
    np.testing.assert_allclose(predict.predict_image(predictor, image, "tile"), direct, atol=1e-6)
    np.testing.assert_allclose(predict.predict_image(predictor, image, "resize"), direct, atol=1e-5)


def test_tta_averages_the_flipped_back_predictions(workdir):
    predictor = predict.Predictor(workdir)
    image = np.random.default_rng(2).random((SIZE, SIZE, 1), dtype=np.float32)
    views = [image, image[:, ::-1], image[::-1]]
    outs = [predictor(v[None])[0] for v in views]
    expected = (outs[0] + outs[1][:, ::-1] + outs[2][::-1]) / 3
    np.testing.assert_allclose(predict.predict_image(predictor, image, "tile", tta=True), expected, atol=1e-6)


@pytest.mark.parametrize("length,tile,overlap", [(16, 16, 0.25), (40, 16, 0.25), (33, 16, 0.5), (100, 32, 0.0)])
def test_tiles_cover_the_image(length, tile, overlap):
    starts = predict.tile_origins(length, tile, overlap)
    covered = np.zeros(length, bool)
    for s in starts:
        assert 0 <= s <= length - tile
        covered[s:s + tile] = True
    assert covered.all() and starts[0] == 0 and starts[-1] == length - tile


def test_missing_workdir_and_inputs_are_clear(tmp_path, workdir):
    with pytest.raises(JaxsegError, match="config.json not found"):
        predict.Predictor(tmp_path)
    with pytest.raises(JaxsegError, match="does not exist"):
        predict.find_inputs([str(tmp_path / "nope.png")])
    with pytest.raises(JaxsegError, match="no PNG"):
        predict.find_inputs([str(tmp_path)])
