"""The thesis's aggregation rule: median (or mean) of the last k epochs per run, then mean/std."""

import json

import numpy as np
import pytest

from jaxseg.cli import aggregate as aggregate_cli
from jaxseg.training import aggregate


def _run(values, key="val/dice"):
    return [{"epoch": e + 1, "step": 10 * (e + 1), "train/loss": 1.0, key: v} for e, v in enumerate(values)]


RUNS = [_run([0.1, 0.5, 0.9, 0.2, 0.4, 0.6, 0.3]), _run([0.0, 0.7, 0.8, 0.75, 0.7, 0.1, 0.72])]


def test_median_of_last_k_then_mean_and_std():
    medians = [np.median([0.9, 0.2, 0.4, 0.6, 0.3]), np.median([0.8, 0.75, 0.7, 0.1, 0.72])]
    r = aggregate.aggregate(RUNS, last=5)["val/dice"]
    np.testing.assert_allclose(r["per_run"], medians)
    np.testing.assert_allclose([r["mean"], r["std"]], [np.mean(medians), np.std(medians, ddof=1)])
    assert r["runs"] == 2


def test_presets_match_the_appendix():
    last = aggregate.aggregate(RUNS, **aggregate.PRESETS["experiment2"])["val/dice"]
    np.testing.assert_allclose(last["per_run"], [0.3, 0.72])
    mean3 = aggregate.aggregate(RUNS, **aggregate.PRESETS["experiment3"])["val/dice"]
    np.testing.assert_allclose(mean3["per_run"], [np.mean([0.4, 0.6, 0.3]), np.mean([0.7, 0.1, 0.72])])


def test_reads_run_dirs_dedupes_epochs_and_skips_records_without_key(tmp_path, capsys):
    for i, rec in enumerate(RUNS):
        d = tmp_path / f"run{i}"
        d.mkdir()
        lines = rec + [{"epoch": 7, "train/loss": 0.5}]  # a train-only record
        if i == 0:
            lines = [{"epoch": 7, "val/dice": 99.0}] + lines  # replaced by the later record of epoch 7
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    dirs = [tmp_path / "run0", tmp_path / "run1"]
    r = aggregate.aggregate(dirs, last=1)
    assert list(r) == ["val/dice"] and r["val/dice"]["per_run"] == [0.3, 0.72]
    aggregate_cli.main([str(d) for d in dirs] + ["--preset", "experiment2", "--json"])
    assert json.loads(capsys.readouterr().out)["val/dice"]["per_run"] == [0.3, 0.72]


def test_single_run_std_is_zero_and_errors():
    assert aggregate.aggregate(RUNS[:1], last=3)["val/dice"]["std"] == 0.0
    with pytest.raises(ValueError, match="no record"):
        aggregate.aggregate(RUNS, keys=["val/jaccard"])
    with pytest.raises(ValueError, match="reduce"):
        aggregate.aggregate(RUNS, reduce="max")
    with pytest.raises(ValueError):
        aggregate.aggregate([])
