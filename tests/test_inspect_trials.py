"""``python -m jaxseg.inspect`` on multi-trial workdirs: every trial, the summary.json aggregate, --trial N in full.

Uses the tiny 2-trial run of tests/test_predict_trials.py (vectorised, and its sequential twin),
trained once per session.
"""

import json
import shutil
import subprocess
import sys

import pytest

from jaxseg.cli import inspect as inspect_command
from jaxseg.errors import JaxsegError
from jaxseg.reporting import inspection
from jaxseg.training.run_log import MetricsLog
from tests.test_predict_trials import trained_trials


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    return trained_trials(tmp_path_factory)


def _inspect(*args):
    out = subprocess.run([sys.executable, "-m", "jaxseg.inspect", *map(str, args)], capture_output=True,
                         text=True, timeout=300)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def _expected_rows(wd):
    """Each trial's metrics.jsonl records."""
    return [MetricsLog.read(wd / f"trial_{t}" / "metrics.jsonl") for t in range(2)]


def test_text_view_lists_every_trial_and_the_aggregate(trials):
    vec, _ = trials
    out = _inspect(vec)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "2 of 2 trials, vectorised" in text
    summary = json.loads((vec / "summary.json").read_text())
    for t, records in enumerate(_expected_rows(vec)):
        last = records[-1]  # 2 epochs; the best step of a vectorised run is chosen by the trial mean
        best_step = inspection.summarize_trials(vec)["trials"][t]["best_step"]
        best = next(r for r in records if r["step"] == best_step)["val/dice"]
        assert f"trial {t}: steps [1, 2]  best val/dice = {best:.4f} (step {best_step})" in text
        assert f"last evaluation (epoch 2, step {last['step']}): train/loss={last['train/loss']:.4f}" in text
    for key in ("val/dice", "val/loss", "train/loss"):
        assert f"{summary[key]['mean']:.4f} ± {summary[key]['std']:.4f}" in text
    assert "mean ± std over 2 trials" in text and "--trial N" in text


def test_json_view_of_sequential_trials(trials):
    _, seq = trials
    out = _inspect(seq, "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["multi_trial"] and not s["vectorized"] and s["num_trials"] == 2
    assert s["summary"] == json.loads((seq / "summary.json").read_text())
    for row, records in zip(s["trials"], _expected_rows(seq)):
        assert row["steps"] == [1, 2] and row["best_metric"] == "val/dice" and not row["stacked"]
        assert row["last_evaluation"] == records[-1] and row["evaluations"] == 2
        assert row["best"] == pytest.approx(next(r for r in records if r["step"] == row["best_step"])["val/dice"])


def test_one_trial_in_full(trials, capsys):
    vec, seq = trials
    assert inspect_command.main([str(seq), "--trial", "1", "--json"]) == 0
    sequential = json.loads(capsys.readouterr().out)
    assert inspect_command.main([str(vec), "--trial", "1", "--json"]) == 0
    stacked = json.loads(capsys.readouterr().out)
    assert stacked["stacked_trial"]["trial"] == 1 and stacked["stacked_trial"]["trials"] == 2
    # the stacked checkpoint's slice: the same arrays (shapes without the trial axis) as the sequential trial
    assert stacked["params"] == sequential["params"] and stacked["opt_state"] == sequential["opt_state"]
    last = MetricsLog.read(vec / "trial_1" / "metrics.jsonl")[-1]
    assert stacked["last_metrics"]["val/dice"] == pytest.approx(last["val/dice"])
    assert stacked["best"] == pytest.approx(sequential["best"])
    assert inspect_command.main([str(vec / "trial_1")]) == 0  # the trial folder itself
    assert "trial 1 of a vectorised run" in capsys.readouterr().out


def test_unfinished_trials_are_shown_as_such(trials, tmp_path, capsys):
    _, seq = trials
    wd = tmp_path / "run"
    shutil.copytree(seq, wd)
    shutil.rmtree(wd / "trial_1" / "checkpoints")
    (wd / "trial_1" / "metrics.jsonl").unlink()
    (wd / "summary.json").unlink()
    assert inspect_command.main([str(wd)]) == 0
    text = capsys.readouterr().out
    assert "trial 1: no checkpoint yet  no best checkpoint" in text
    assert "summary.json: not written yet" in text and "trial 0: steps [1, 2]" in text


def test_mistakes_are_one_error_line(trials):
    vec, seq = trials
    out = _inspect(vec, "--trial", "3")
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert out.returncode == 1 and len(errors) == 1 and "has no trial_3/; its trials are 0, 1" in errors[0]
    with pytest.raises(JaxsegError, match="--step and --diff need one trial"):
        inspect_command.main([str(seq), "--step", "1"])
    with pytest.raises(JaxsegError, match="is a multi-trial workdir"):
        inspection.locate(seq)
    with pytest.raises(JaxsegError, match="not a multi-trial workdir"):
        inspect_command.main([str(seq / "trial_0"), "--trial", "0"])
