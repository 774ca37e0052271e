"""Multi-class and multi-label end to end: the validation Dice a run reports is the Dice of the masks
``jaxseg.predict`` writes for the same images (one prediction rule: argmax for multiclass, threshold
per class for multilabel)."""

import json
import subprocess
import sys
from pathlib import Path

import ml_collections
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def _train(tmp_path, task, mode, classes):
    wd = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "jaxseg.main", f"--config={REPO}/configs/default.py:smoke", f"--workdir={wd}",
         f"--config.data.task={task}", f"--config.model.mode={mode}", f"--config.model.num_classes={classes}",
         "--config.eval.metrics=('dice(average=none)','dice')", "--config.train.epochs=2",
         "--config.train.progress=False"],
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return wd


def _validation_images(wd):
    from jaxseg.data import get_source

    config = ml_collections.ConfigDict(json.loads((wd / "config.json").read_text()))
    batches = list(get_source(config).eval_batches())
    return (np.concatenate([b["image"][b["valid"]] for b in batches]),
            np.concatenate([b["mask"][b["valid"]] for b in batches]))


def _dice_per_class(pred, truth):
    tp = (pred & truth).sum(axis=(0, 1, 2)).astype(float)
    fp = (pred & ~truth).sum(axis=(0, 1, 2))
    fn = (~pred & truth).sum(axis=(0, 1, 2))
    return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 1.0)


@pytest.mark.parametrize("task, mode, classes", [("lung_infection", "multiclass", 3),
                                                  ("lung_and_infection", "multilabel", 2)])
def test_reported_dice_is_the_dice_of_the_written_masks(tmp_path, task, mode, classes):
    from jaxseg.inference import ensemble
    from jaxseg.inference.predict import predict_image, write_outputs

    wd = _train(tmp_path, task, mode, classes)
    last = json.loads((wd / "metrics.jsonl").read_text().splitlines()[-1])
    reported = np.array([last[f"val/dice(average=none)/{k}"] for k in range(classes)])
    images, truth = _validation_images(wd)
    model = ensemble.load(wd, "latest")
    out = tmp_path / "preds"
    out.mkdir()
    written = []
    for i, image in enumerate(images):
        probs = predict_image(model, image)
        write_outputs(out, f"v{i}", image, probs, model.threshold, mode=mode)
        if mode == "multiclass":
            index = np.asarray(Image.open(out / f"v{i}_mask.png"))
            assert Image.open(out / f"v{i}_mask.png").mode == "P"  # an indexed PNG with a palette
            written.append(index[..., None] == np.arange(classes))
        else:
            written.append(np.stack([np.asarray(Image.open(out / f"v{i}_mask_{k}.png")) == 255
                                     for k in range(classes)], -1))
    recomputed = _dice_per_class(np.stack(written), truth > 0.5)
    np.testing.assert_allclose(reported, recomputed, atol=1e-6)
    assert last["val/dice"] == pytest.approx(reported.mean(), abs=1e-6)
    if mode == "multiclass":  # the report follows the mode: per-class columns, argmax panels
        rep = subprocess.run([sys.executable, "-m", "jaxseg.report", str(wd), f"--output={tmp_path / 'report'}"],
                             capture_output=True, text=True, timeout=600)
        assert rep.returncode == 0, rep.stderr[-3000:]
        table = (tmp_path / "report" / "table.md").read_text()
        assert all(f"DSC [{k}]" in table for k in range(classes))
        assert (tmp_path / "report" / "predictions.png").stat().st_size > 0
