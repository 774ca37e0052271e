"""Training on a pretrained encoder, as a user runs it: ``--config.model.encoder=resnet18
--config.model.encoder_weights=FILE --config.model.freeze_encoder_epochs=K``. The weights must arrive
in the model unchanged and stay so for K epochs; mistakes are one line, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxseg.models import encoders

save_file = pytest.importorskip("safetensors.numpy", reason="needs safetensors").save_file

REPO = Path(__file__).resolve().parent.parent
TINY = ["--config.train.progress=False", "--config.data.image_size=32", "--config.data.num_train=16",
        "--config.data.num_val=8", "--config.train.batch_size=8", "--config.model.name=unet",
        "--config.model.encoder=resnet18", "--config.model.decoder_features=(16,8,8,8,8)"]


def _resnet18_file(path: Path) -> Path:
    """A torchvision-layout resnet18 state dict with random values (no download, no torch)."""
    from tests.test_encoders import random_state, tv_resnet_keys

    save_file(random_state(tv_resnet_keys("basic", (2, 2, 2, 2))), str(path))
    return path


def _train(cwd, workdir, *overrides):
    return subprocess.run([sys.executable, "-m", "jaxseg.main", f"--config={REPO / 'configs/default.py'}",
                           f"--workdir={workdir}", *TINY, *overrides],
                          capture_output=True, text=True, cwd=cwd, timeout=900)


def _encoder_params(workdir):
    from jaxseg.inference.predict import Predictor

    return Predictor(workdir, which="latest").variables["params"]["encoder"]


@pytest.mark.slow
def test_weights_load_and_stay_frozen(tmp_path):
    weights = _resnet18_file(tmp_path / "r18.safetensors")
    expected = encoders.load_torch_weights("resnet18", weights, in_channels=1)["params"]
    out = _train(tmp_path, "frozen", f"--config.model.encoder_weights={weights}",
                 "--config.model.freeze_encoder_epochs=1", "--config.train.epochs=1")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    jax.tree_util.tree_map(np.testing.assert_array_equal, _encoder_params(tmp_path / "frozen"), expected)
    # after the frozen epochs the encoder trains (tests/test_freeze_encoder.py: a fresh Adam from then on)


def _one_line_error(out, *fragments):
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = [line for line in out.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, out.stderr[-3000:]
    for f in fragments:
        assert f in lines[0], lines[0]


def test_weights_without_an_encoder_is_one_line(tmp_path):
    weights = _resnet18_file(tmp_path / "r18.safetensors")
    out = _train(tmp_path, "x", "--config.model.encoder=None", f"--config.model.encoder_weights={weights}")
    _one_line_error(out, "need config.model.encoder")


def test_missing_weights_file_is_one_line(tmp_path):
    out = _train(tmp_path, "x", f"--config.model.encoder_weights={tmp_path / 'absent.safetensors'}")
    _one_line_error(out, "absent.safetensors: no such file")


@pytest.mark.slow
def test_weights_of_another_encoder_are_one_line(tmp_path):
    weights = _resnet18_file(tmp_path / "r18.safetensors")
    out = _train(tmp_path, "x", "--config.model.encoder=resnet34", f"--config.model.encoder_weights={weights}",
                 "--config.train.epochs=1")
    _one_line_error(out, "r18.safetensors")
    assert not (tmp_path / "x" / "checkpoints").exists() or not any((tmp_path / "x" / "checkpoints").iterdir())


def test_unknown_encoder_is_one_line(tmp_path):
    out = _train(tmp_path, "x", "--config.model.encoder=resnet99")
    _one_line_error(out, "config.model.encoder='resnet99' is not an encoder", "resnet34")


def test_an_encoder_the_model_does_not_take_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "jaxseg.main", f"--config={REPO / 'configs/default.py'}",
                          "--workdir=x", "--config.data.image_size=32", "--config.model.name=transunet",
                          "--config.model.encoder=resnet34"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=900)
    _one_line_error(out, "config.model: TransUNet: unknown encoder 'resnet34'; it takes r50_vit_b16")
