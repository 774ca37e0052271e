"""jaxseg.reporting.report on two tiny arms written in the test (metrics, configs, checkpoints; no training)."""

import csv
import json

import jax
import numpy as np
import pytest

from jaxseg.errors import JaxsegError
from jaxseg.training import checkpoint as ckpt_lib
from jaxseg import models
from jaxseg import training as train
from jaxseg.reporting import report
from jaxseg.training.optim import build_optimizer
from tests.helpers import tiny_config


def _run(d, seed, values):
    """A finished run in ``d``: config.json, metrics.jsonl with ``values`` per epoch, a checkpoint."""
    config = tiny_config()
    config.eval.aggregate.update(dict(last=2, reduce="median"))
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config.to_dict()))
    with open(d / "metrics.jsonl", "w") as f:
        for e, v in enumerate(values, start=1):
            f.write(json.dumps({"epoch": e, "step": 2 * e, "train/loss": 1 - v, "val/loss": 1.1 - v,
                                "val/dice": v, "val/jaccard": v / (2 - v)}) + "\n")
    model = models.get_model(config.model)
    tx = build_optimizer(config.optimizer)
    state = train.create_train_state(model, tx, jax.random.PRNGKey(seed), (32, 32, 1))
    c = ckpt_lib.Checkpointer(d / "checkpoints")
    c.save(2 * len(values), state, {"epoch": len(values), "epoch_step": 0}, best=True)
    c.wait()
    c.close()


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    _run(root / "unet" / "trial_0", 0, [0.2, 0.5, 0.7, 0.6])
    _run(root / "unet" / "trial_1", 1, [0.3, 0.4, 0.8, 0.9])
    _run(root / "attunet", 2, [0.1, 0.2, 0.3])
    return root


def test_table_follows_the_aggregation_rule(arms, tmp_path):
    out = report.report([str(arms / "unet"), str(arms / "attunet")], str(tmp_path), figures=False)
    keys, rows = report.table([report.Arm(arms / "unet"), report.Arm(arms / "attunet")])
    assert keys == ["train/loss", "val/loss", "val/dice", "val/jaccard"]
    per_run = [np.median([0.7, 0.6]), np.median([0.8, 0.9])]  # last 2 epochs of each trial
    mean, std = rows[0][3]
    np.testing.assert_allclose([mean, std], [np.mean(per_run), np.std(per_run, ddof=1)])
    assert rows[1][3] == pytest.approx((0.25, 0.0))  # one run: std 0
    md = (out / "table.md").read_text()
    assert md.splitlines()[0] == "| | loss | val loss | DSC | Jaccard |"
    assert f"| unet | {1 - mean:.4f} ({std:.4f})" in md
    with open(out / "table.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["arm"] for r in table] == ["unet", "attunet"]
    assert float(table[0]["val/dice_mean"]) == pytest.approx(mean)


def test_figures_are_written(arms, tmp_path):
    out = report.report([str(arms / "unet"), str(arms / "attunet")], str(tmp_path), names=["U-Net", "Att"],
                        panels=2, max_images=8)
    for name in ("curves.png", "predictions.png", "roc_pr.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


def test_roc_points_give_scikit_learn_auc():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = (rng.random((3, 8, 8, 1)) < 0.3).astype(np.float32)
    scores = np.clip(labels * 0.3 + rng.random(labels.shape) * 0.7, 0, 1).astype(np.float32)
    scores[0, 0, :4] = 0.5  # ties
    fpr, tpr, rec, prec = report.roc_pr_points(scores, labels)
    np.testing.assert_allclose(np.trapezoid(tpr, fpr), sklearn.roc_auc_score(labels.ravel(), scores.ravel()),
                               atol=1e-6)
    ap = np.sum(np.diff(rec) * prec[1:])
    np.testing.assert_allclose(ap, sklearn.average_precision_score(labels.ravel(), scores.ravel()), atol=1e-6)


def test_missing_runs_are_reported(tmp_path):
    with pytest.raises(JaxsegError, match="holds no metrics.jsonl"):
        report.Arm(tmp_path)


def test_per_class_metrics_are_columns_with_the_mean(tmp_path):
    """A multiclass arm logging 'dice(average=none)' gets one column per class beside the mean."""
    wd = tmp_path / "mc"
    wd.mkdir()
    config = {"model": {"num_classes": 3, "mode": "multiclass"},
              "eval": {"metrics": ["dice(average=none)", "dice"], "aggregate": {"last": 1, "reduce": "mean"}}}
    (wd / "config.json").write_text(json.dumps(config))
    rec = {"epoch": 1, "train/loss": 0.5, "val/loss": 0.4, "val/dice(average=none)/0": 0.99,
           "val/dice(average=none)/1": 0.9, "val/dice(average=none)/2": 0.6, "val/dice": 0.83}
    (wd / "metrics.jsonl").write_text(json.dumps(rec) + "\n")
    keys, rows = report.table([report.Arm(wd)])
    assert keys == ["train/loss", "val/loss", "val/dice(average=none)/0", "val/dice(average=none)/1",
                    "val/dice(average=none)/2", "val/dice"]
    assert [v[0] for v in rows[0][1:]] == [0.5, 0.4, 0.99, 0.9, 0.6, 0.83]
    head = report.markdown(keys, rows).splitlines()[0]
    assert "DSC [0]" in head and "DSC [2]" in head and head.rstrip(" |").endswith("DSC")
