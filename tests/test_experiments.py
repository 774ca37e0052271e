"""Multi-trial runs: vectorised trials give the numbers of sequential trials."""

import json

import numpy as np
import pytest

from jaxseg.training import trials as experiments
from jaxseg.training.run_log import MetricsLog
from tests.helpers import comparable, tiny_config


@pytest.fixture(scope="module")
def two_ways(tmp_path_factory):
    config = tiny_config(epochs=2, num_trials=2)
    seq = tmp_path_factory.mktemp("sequential")
    experiments.run(config, seq)
    config.train.vectorize_trials = True
    vec = tmp_path_factory.mktemp("vectorized")
    experiments.run(config, vec)
    return seq, vec


def test_vectorized_trials_equal_sequential_trials(two_ways):
    seq, vec = two_ways
    for t in range(2):
        a = [comparable(r) for r in MetricsLog.read(seq / f"trial_{t}" / "metrics.jsonl")]
        b = [comparable(r) for r in MetricsLog.read(vec / f"trial_{t}" / "metrics.jsonl")]
        assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [1, 2]
        for ra, rb in zip(a, b):
            assert ra.keys() == rb.keys()
            for k in ra:
                np.testing.assert_allclose(rb[k], ra[k], rtol=2e-4, atol=2e-5, err_msg=k)
    t0 = MetricsLog.read(seq / "trial_0" / "metrics.jsonl")[-1]
    t1 = MetricsLog.read(seq / "trial_1" / "metrics.jsonl")[-1]
    assert t0["train/loss"] != t1["train/loss"]  # trials differ (initialisation and dropout)


def test_trials_write_configs_and_a_summary(two_ways):
    seq, vec = two_ways
    for wd in (seq, vec):
        assert json.loads((wd / "trial_1" / "config.json").read_text())["train"]["trial"] == 1
        summary = json.loads((wd / "summary.json").read_text())
        for key in ("val/dice", "val/loss", "train/loss"):
            per_run = [np.median([r[key] for r in MetricsLog.read(wd / f"trial_{t}" / "metrics.jsonl")])
                       for t in range(2)]  # last 5 epochs of 2 = both
            np.testing.assert_allclose(summary[key]["per_run"], per_run, rtol=1e-6)
            np.testing.assert_allclose(summary[key]["mean"], np.mean(per_run), rtol=1e-6)
            assert summary[key]["runs"] == 2
    assert (seq / "trial_0" / "checkpoints").is_dir() and (vec / "checkpoints").is_dir()


def test_a_preempted_trial_stops_the_sequence(tmp_path, monkeypatch):
    calls = []

    def fake_train(config, workdir, vectorized_trials=None):
        calls.append(config.train.trial)
        return {"epoch": 1, "preempted": True}

    monkeypatch.setattr(experiments, "train_and_evaluate", fake_train)
    records = experiments.run(tiny_config(epochs=2, num_trials=3), tmp_path)
    assert calls == [0] and records[0]["preempted"]
    assert not (tmp_path / "summary.json").exists()
