"""K-fold cross-validation: the fold assignment (properties), every source's fold split, and the journey
``launch/cv.sh`` → ``jaxseg.aggregate ROOT`` whose out-of-fold Dice must equal the Dice of the folds'
predicted masks over the whole training set, computed here by brute force in NumPy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import ml_collections
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxseg.data import folds
from jaxseg.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 120), k=st.integers(2, 6), seed=st.integers(0, 5), data=st.data())
def test_folds_partition_balanced_and_stratified(n, k, seed, data):
    if n < k:
        with pytest.raises(ConfigError, match="num_folds"):
            folds.assign_folds(n, k, seed)
        return
    strata = np.asarray(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    assigned = folds.assign_folds(n, k, seed, strata)
    sizes = np.bincount(assigned, minlength=k)
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 1  # a partition, sizes within one
    for s in (0, 1):  # each stratum spread as evenly as possible
        per_fold = np.bincount(assigned[strata == s], minlength=k)
        assert per_fold.max() - per_fold.min() <= 1
    vals = [folds.fold_split(n, k, f, seed, strata)[1] for f in range(k)]
    assert sorted(np.concatenate(vals).tolist()) == list(range(n))  # every example validated once
    train, val = folds.fold_split(n, k, 0, seed, strata)
    assert not set(train) & set(val) and len(train) + len(val) == n


def test_folds_depend_on_seed_and_k_only():
    a = folds.assign_folds(50, 5, seed=1)
    np.testing.assert_array_equal(a, folds.assign_folds(50, 5, seed=1))
    assert not np.array_equal(a, folds.assign_folds(50, 5, seed=2))


def test_grouped_folds_keep_each_group_on_one_side():
    groups = np.repeat(np.arange(6), [3, 5, 2, 4, 1, 6])
    positive = np.zeros(len(groups), bool)
    positive[[0, 8, 20]] = True
    for f in range(3):
        train, val = folds.fold_split(len(groups), 3, f, 0, positive, groups)
        assert not set(groups[train]) & set(groups[val])
        assert len(set(groups[val])) == 2


def test_fold_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match=r"fold=3 must be in 0\.\.2"):
        folds.fold_split(10, 3, 3, 0)


def test_has_foreground_by_mode():
    mask = np.zeros((3, 4, 4, 2), np.uint8)
    mask[0, ..., 0] = 1  # background channel only
    mask[1, 0, 0, 1] = 1
    np.testing.assert_array_equal(folds.has_foreground(mask, "multiclass"), [False, True, False])
    np.testing.assert_array_equal(folds.has_foreground(mask, "multilabel"), [True, True, False])
    with pytest.raises(ValueError, match=r"NHWC masks, got shape \(4, 4\)"):
        folds.has_foreground(np.zeros((4, 4)))


def _folder_tree(root: Path, n: int = 10) -> None:
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        Image.fromarray(np.full((16, 16), 10 * i, np.uint8)).save(root / "images" / f"im{i}.png")
        mask = np.zeros((16, 16), np.uint8)
        mask[:i % 3, :4] = 255
        Image.fromarray(mask).save(root / "masks" / f"im{i}.png")


def _folder_config(root: Path, fold: int) -> ml_collections.ConfigDict:
    from configs import default

    c = default.get_config()
    c.data.name, c.data.root, c.data.image_size = "folder", str(root), 16
    c.data.num_folds, c.data.fold = 5, fold
    return c


def test_folder_folds_cover_every_image_once(tmp_path):
    from jaxseg.data.sources import folder

    _folder_tree(tmp_path / "data")
    seen = []
    for f in range(5):
        train, val, _ = folder.load_arrays(_folder_config(tmp_path / "data", f))
        assert len(train["image"]) == 8 and len(val["image"]) == 2
        seen += [int(v) // 10 for v in val["image"][:, 0, 0, 0].tolist()]  # uint8 10·i
    assert sorted(seen) == list(range(10))


def test_folder_folds_refuse_fixed_split_lists(tmp_path):
    from jaxseg.data.sources import folder

    _folder_tree(tmp_path / "data")
    (tmp_path / "data" / "splits").mkdir()
    (tmp_path / "data" / "splits" / "val.txt").write_text("im0\n")
    with pytest.raises(ConfigError, match="splits/val.txt fixes the validation set"):
        folder.load_arrays(_folder_config(tmp_path / "data", 0))


def _global_dice(pred: np.ndarray, mask: np.ndarray) -> float:
    tp = np.sum(pred & mask)
    return 2 * tp / (np.sum(pred) + np.sum(mask))


def _cv_sh(cwd: Path, folds: int, num_train: int, epochs: int) -> subprocess.CompletedProcess:
    """``launch/cv.sh configs/default.py cv FOLDS`` on a tiny U-Net and 32² phantoms, as a user runs it."""
    tiny = ["--config.train.progress=False", "--config.model.features=4", "--config.model.depth=2",
            "--config.data.image_size=32", f"--config.data.num_train={num_train}", "--config.data.num_val=8",
            f"--config.train.epochs={epochs}", "--config.train.batch_size=8"]
    out = subprocess.run(["bash", str(REPO / "launch/cv.sh"), str(REPO / "configs/default.py"), "cv", str(folds),
                          *tiny], capture_output=True, text=True, cwd=cwd, env=dict(os.environ, PY=sys.executable),
                         timeout=900)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_cv_journey_out_of_fold_dice_is_the_dice_of_the_predicted_masks(cv_root):
    """launch/cv.sh trains 3 folds; aggregate's out-of-fold Dice = Dice over all folds' predictions."""
    from jaxseg.data.sources import synthetic
    from jaxseg.inference.predict import Predictor

    root, _, out = cv_root
    assert "out of fold" in out.stdout and "cross-validated over folds [0, 1, 2]" in out.stdout
    summary = json.loads((root / "cv" / "cv_summary.json").read_text())

    images, masks = synthetic.generate(24, 32, "infection", seed=0)  # num_train + num_val, pooled
    strata = folds.has_foreground(masks)
    preds, truth, fold_dice = [], [], []
    for f in range(3):
        _, val = folds.fold_split(24, 3, f, 0, strata)
        probs = Predictor(root / "cv" / f"fold_{f}", which="latest")(images[val])
        preds.append(probs > 0.5)
        truth.append(masks[val] > 0.5)
        records = (root / "cv" / f"fold_{f}" / "metrics.jsonl").read_text().splitlines()
        fold_dice.append(np.median([json.loads(r)["val/dice"] for r in records]))  # the default rule
    oof = summary["out_of_fold"]["val/dice"]["mean"]
    np.testing.assert_allclose(oof, _global_dice(np.concatenate(preds), np.concatenate(truth)), atol=1e-5)
    cv = summary["cross_validated"]["val/dice"]
    np.testing.assert_allclose(cv["per_fold"], fold_dice, atol=1e-6)  # median of the last 5 (here 2) epochs
    np.testing.assert_allclose(cv["mean"], np.mean(fold_dice), atol=1e-6)
    rep = subprocess.run([sys.executable, "-m", "jaxseg.report", "cv", "--no-figures", "--output", "rep"],
                         capture_output=True, text=True, cwd=root, timeout=600)
    assert rep.returncode == 0 and "Traceback" not in rep.stderr, rep.stderr[-2000:]
    row = (root / "rep" / "table.md").read_text().splitlines()[2].split("|")
    header = (root / "rep" / "table.md").read_text().splitlines()[0].split("|")
    assert row[header.index(" DSC ")].strip() == f"{cv['mean']:.4f} ({cv['std']:.4f})"


def test_aggregate_of_an_incomplete_cv_root_is_one_line(tmp_path):
    (tmp_path / "cv" / "fold_0").mkdir(parents=True)
    config = {"data": {"num_folds": 3, "fold": 0}, "eval": {"metrics": ["dice"]}, "model": {}}
    (tmp_path / "cv" / "fold_0" / "config.json").write_text(json.dumps(config))
    (tmp_path / "cv" / "fold_0" / "metrics.jsonl").write_text('{"epoch": 1, "val/dice": 0.5}\n')
    out = subprocess.run([sys.executable, "-m", "jaxseg.aggregate", "cv"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "fold(s) [1, 2] of 3 missing" in lines[0]


@pytest.fixture(scope="module")
def cv_root(tmp_path_factory):
    """A 3-fold cross-validation root of a tiny U-Net (launch/cv.sh: its output too), and a phantom scan."""
    from PIL import Image

    from jaxseg.data.sources import synthetic

    root = tmp_path_factory.mktemp("cv3")
    out = _cv_sh(root, folds=3, num_train=16, epochs=2)
    images, _ = synthetic.generate(2, 32, seed=7)
    Image.fromarray((images[0, ..., 0] * 255).round().astype(np.uint8)).save(root / "scan.png")
    scan = np.asarray(Image.open(root / "scan.png"), np.float32)[None, ..., None] / 255.0
    return root, scan, out


@pytest.mark.slow
def test_cv_root_predicts_with_the_folds_ensemble(cv_root):
    """predict --workdir=CV_ROOT averages the folds' probabilities (nnU-Net); --members picks folds."""
    from PIL import Image

    from jaxseg.inference import ensemble
    from jaxseg.inference.predict import Predictor

    root, scan, _ = cv_root
    folds_p = [Predictor(root / "cv" / f"fold_{k}")(scan) for k in range(3)]
    model = ensemble.load(root / "cv")
    np.testing.assert_allclose(model(scan), np.mean(folds_p, axis=0), atol=1e-6)
    picked = ensemble.load(root / "cv", members="0,2")
    np.testing.assert_allclose(picked(scan), (folds_p[0] + folds_p[2]) / 2, atol=1e-6)

    pred = subprocess.run([sys.executable, "-m", "jaxseg.predict", "--workdir=cv", "--members=0,2",
                           "--input", "scan.png", "--output", "out"],
                          capture_output=True, text=True, cwd=root, timeout=600)
    assert pred.returncode == 0 and "Traceback" not in pred.stderr, pred.stderr[-2000:]
    assert "mean probability of 2 runs of 2 fold(s)" in pred.stdout
    written = np.asarray(Image.open(root / "out" / "scan_prob.png"), np.float64) / 65535.0
    np.testing.assert_allclose(written, picked(scan)[0, ..., 0], atol=2e-5)

    bad = subprocess.run([sys.executable, "-m", "jaxseg.predict", "--workdir=cv", "--members=0,5",
                          "--input", "scan.png", "--output", "out2"],
                         capture_output=True, text=True, cwd=root, timeout=600)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == "error: --members=0,5: cv has no fold_5/; its folds are 0, 1, 2"


@pytest.mark.slow
def test_cv_root_exports_as_one_model(cv_root, tmp_path):
    """The folds' ensemble exported as one SavedModel gives the ensemble's probabilities."""
    from jaxseg import exporting
    from jaxseg.exporting import writers
    from jaxseg.inference import ensemble

    root, scan, _ = cv_root
    exporting.export(root / "cv", "savedmodel", tmp_path / "folds_sm", members="1,2")
    expected = ensemble.load(root / "cv", members="1,2")(scan)
    np.testing.assert_allclose(writers.run_savedmodel(tmp_path / "folds_sm", scan), expected, atol=1e-5)
