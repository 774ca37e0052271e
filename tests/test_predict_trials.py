"""Prediction with multi-trial workdirs: the ensemble is the mean of the trials' probabilities; --trial picks one.

One tiny vectorised 2-trial run is trained once per session (``trained_trials``, shared with
tests/test_inspect_trials.py); its sequential twin re-saves each trial's slice as the
sequential layout (trial_<t>/checkpoints), with the same logs.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from jaxseg.errors import JaxsegError
from jaxseg.inference import ensemble, predict
from jaxseg.training import checkpoint as ckpt_lib
from tests.helpers import tiny_config
from tests.test_predict_dicom import write_dicom, linear_window

REPO = Path(__file__).resolve().parent.parent
SIZE = 16


def _train(wd: Path) -> None:
    from jaxseg.training import trials

    c = tiny_config(epochs=2, num_trials=2, vectorize_trials=True)
    c.data.image_size, c.data.num_train, c.data.num_val = SIZE, 8, 8
    trials.run(c, wd)


def _sequential_twin(vec: Path, seq: Path) -> None:
    """The vectorised run laid out as sequential trials: trial_<t>/checkpoints with slice t."""
    for t in range(2):
        d = seq / f"trial_{t}"
        d.mkdir(parents=True)
        config = json.loads((vec / f"trial_{t}" / "config.json").read_text())
        config["train"]["vectorize_trials"] = False
        (d / "config.json").write_text(json.dumps(config))
        shutil.copy(vec / f"trial_{t}" / "metrics.jsonl", d / "metrics.jsonl")
        latest, best = (ckpt_lib.open_read_only(vec / "checkpoints" / w) for w in ("latest", "best"))
        best_steps = set(best.all_steps())
        c = ckpt_lib.Checkpointer(d / "checkpoints")
        for step in sorted(latest.all_steps()):
            state = jax.tree_util.tree_map(lambda x: np.asarray(x)[t], ckpt_lib.read_state(latest, step))
            meta = ckpt_lib.read_meta(latest, step)
            meta["metrics"] = meta["metrics"][t]
            meta["best"] = meta["metrics"][meta["best_metric"]]
            c.save(step, state, meta, best=step in best_steps)
        c.wait()
        c.close()
    shutil.copy(vec / "summary.json", seq / "summary.json")


def trained_trials(tmp_path_factory) -> tuple[Path, Path]:
    """(vectorised, sequential) 2-trial workdirs, trained once per session."""
    root = tmp_path_factory.getbasetemp() / "jaxseg_trials"
    vec, seq = root / "vectorized", root / "sequential"
    if not (seq / "summary.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        _train(vec)
        _sequential_twin(vec, seq)
    return vec, seq


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    return trained_trials(tmp_path_factory)


def _run(*args, cwd):
    out = subprocess.run([sys.executable, "-m", "jaxseg.predict", *map(str, args)], capture_output=True,
                         text=True, cwd=cwd, timeout=300)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def test_the_ensemble_is_the_mean_of_the_trials(trials):
    vec, seq = trials
    model = ensemble.load(vec)
    assert isinstance(model, ensemble.Ensemble) and len(model.members) == 2
    assert (model.size, model.channels, model.num_classes) == (SIZE, 1, 1)
    batch = np.random.default_rng(0).random((3, SIZE, SIZE, 1), dtype=np.float32)
    members = [predict.Predictor(vec / f"trial_{t}")(batch) for t in range(2)]
    assert np.abs(members[0] - members[1]).max() > 1e-4  # the trials differ
    np.testing.assert_allclose(model(batch), (members[0] + members[1]) / 2, atol=1e-6)
    np.testing.assert_allclose(ensemble.load(seq)(batch), model(batch), atol=1e-6)  # same weights, other layout
    np.testing.assert_allclose(ensemble.load(seq, trial=1)(batch), members[1], atol=1e-6)


def test_members_that_disagree_are_refused(trials):
    vec, _ = trials
    a, b = predict.Predictor(vec / "trial_0"), predict.Predictor(vec / "trial_1")
    b.size = 32
    with pytest.raises(JaxsegError, match="disagree on image size"):
        ensemble.Ensemble([a, b])
    b.size, b.threshold = a.size, 0.7
    with pytest.raises(JaxsegError, match="thresholds"):
        ensemble.Ensemble([a, b])
    assert ensemble.Ensemble([a, b], threshold=0.3).threshold == 0.3


def test_predict_command_ensembles_trials_and_keeps_same_stems_apart(trials, tmp_path):
    vec, _ = trials
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    for folder in ("in", "x", "y"):
        (tmp_path / folder).mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "a.png")
    stored = rng.integers(0, 2000, (SIZE, SIZE))
    write_dicom(tmp_path / "in" / "a.dcm", stored, slope=1, intercept=-1024, window=(40, 400),
                photometric="MONOCHROME1")
    Image.fromarray(image).save(tmp_path / "x" / "b.png")
    Image.fromarray(255 - image).save(tmp_path / "y" / "b.png")
    out = _run("--workdir", vec, "--input", "in", "x/b.png", "y/b.png", "--output", "out", "--mode=tile",
               "--prob-format=npy", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "mean probability of 2 trials" in out.stdout and "predicted 4 image(s)" in out.stdout
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{n}_{k}" for n in ("a_png", "a_dcm", "x_b", "y_b")
                             for k in ("prob.npy", "mask.png", "overlay.png"))
    members = [predict.Predictor(vec / f"trial_{t}") for t in range(2)]
    dicom_view = 1 - linear_window(stored - 1024.0, 40, 400)  # what the model must have seen
    for name, x in (("a_png", image / 255.0), ("y_b", (255 - image) / 255.0), ("a_dcm", dicom_view)):
        batch = x.astype(np.float32)[None, ..., None]
        expected = np.mean([m(batch)[0] for m in members], axis=0)
        probs = np.load(tmp_path / "out" / f"{name}_prob.npy")
        np.testing.assert_allclose(probs, expected, atol=1e-6, err_msg=name)
        mask = np.asarray(Image.open(tmp_path / "out" / f"{name}_mask.png"))
        np.testing.assert_array_equal(mask == 255, probs[..., 0] > members[0].threshold)


def test_predict_command_picks_one_trial_and_reports_mistakes(trials, tmp_path):
    vec, seq = trials
    image = np.random.default_rng(2).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    out = _run("--workdir", seq, "--trial=1", "--input", "a.png", "--output", "out", "--mode=tile",
               "--prob-format=npy", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    expected = predict.Predictor(vec / "trial_1")((image / 255.0).astype(np.float32)[None, ..., None])[0]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "a_prob.npy"), expected, atol=1e-6)
    bad = _run("--workdir", vec, "--trial=5", "--input", "a.png", "--output", "out", cwd=tmp_path)
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert bad.returncode == 1 and len(errors) == 1 and "has no trial_5/; its trials are 0, 1" in errors[0]
    with pytest.raises(JaxsegError, match="is a single run"):
        ensemble.load(vec / "trial_0", trial=0)
