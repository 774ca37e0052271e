"""The README's journeys, run as a user runs them: the real commands as subprocesses on tiny data.

Each journey trains (or reads) what the one before it left, as a user's session does:
train on the phantoms → inspect → predict → report → aggregate; train on a folder of
images, on a COVID-QU-Ex-layout tree and on whole slides; a thesis experiment with trials
→ its summary. Checked: exit code 0, the files a user looks for, values in range.
(Predict on DICOM/RGB patches/slides, multi-trial inspect/predict and resume after SIGKILL
have their own journey tests: tests/test_predict_*.py, tests/test_inspect_trials.py,
tests/test_reliability.py.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
TINY = ["--config.train.progress=False", "--config.model.features=4", "--config.model.depth=2"]


def run(*args, cwd):
    out = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert out.returncode == 0, f"{' '.join(args)}\n{out.stderr[-4000:]}"
    assert "Traceback" not in out.stderr
    return out


def train(workdir, *overrides, config="configs/default.py", cwd):
    out = run("jaxseg.main", f"--config={REPO / config}", f"--workdir={workdir}", *TINY, *overrides, cwd=cwd)
    finals = [line for line in out.stdout.splitlines() if line.startswith("final: ")]
    assert finals, out.stdout
    records = [json.loads(line) for line in (Path(cwd) / workdir / "metrics.jsonl").read_text().splitlines()] \
        if (Path(cwd) / workdir / "metrics.jsonl").exists() else []
    return finals, records


def assert_a_run(wd: Path, epochs: int):
    records = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, epochs + 1))
    for r in records:
        assert 0.0 <= r["val/dice"] <= 1.0 and np.isfinite(r["train/loss"])
    assert json.loads((wd / "config.json").read_text())["train"]["epochs"] == epochs
    assert any((wd / "checkpoints" / "latest").iterdir()) and any((wd / "checkpoints" / "best").iterdir())
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(wd))
    return records


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("journey")
    finals, _ = train("runs/x", "--config.data.image_size=32", "--config.data.num_train=32",
                      "--config.data.num_val=16", "--config.train.epochs=2", "--config.train.batch_size=8",
                      cwd=root)
    assert "epoch=2" in finals[0] and "val/dice=" in finals[0]
    return root


def test_train_on_the_phantoms(phantom_run):
    assert_a_run(phantom_run / "runs/x", epochs=2)


def test_inspect_a_run(phantom_run):
    out = run("jaxseg.inspect", "runs/x", cwd=phantom_run)
    assert "checkpoints:" in out.stdout and "parameters:" in out.stdout
    summary = json.loads(run("jaxseg.inspect", "runs/x", "--json", cwd=phantom_run).stdout)
    assert summary["epoch"] == 2 and summary["best_metric"] == "val/dice"
    assert sum(row[3] for row in summary["params"]) > 0


def test_predict_png_files(phantom_run):
    scans = phantom_run / "scans"
    scans.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i, size in enumerate((32, 48)):
        Image.fromarray(rng.integers(0, 255, (size, size + 8), np.uint8)).save(scans / f"scan{i}.png")
    run("jaxseg.predict", "--workdir=runs/x", "--input=scans", "--output=preds", cwd=phantom_run)
    for i, size in enumerate((32, 48)):
        mask = np.asarray(Image.open(phantom_run / "preds" / f"scan{i}_mask.png"))
        prob = np.asarray(Image.open(phantom_run / "preds" / f"scan{i}_prob.png"))
        assert mask.shape == prob.shape == (size, size + 8)  # the input's own size
        assert set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask == 255, prob / 65535.0 > 0.5)  # the mask is the thresholded map
        assert (phantom_run / "preds" / f"scan{i}_overlay.png").exists()


def test_report_of_an_arm(phantom_run):
    run("jaxseg.report", "runs/x", "--output=report", cwd=phantom_run)
    table = (phantom_run / "report" / "table.md").read_text()
    assert "| x |" in table and "DSC" in table
    for name in ("table.csv", "curves.png", "predictions.png", "roc_pr.png"):
        assert (phantom_run / "report" / name).stat().st_size > 0


def test_aggregate_runs(phantom_run):
    out = run("jaxseg.aggregate", "runs/x", "--last", "1", "--json", cwd=phantom_run)
    result = json.loads(out.stdout)
    last = json.loads((phantom_run / "runs/x/metrics.jsonl").read_text().splitlines()[-1])
    assert result["val/dice"]["mean"] == pytest.approx(last["val/dice"]) and result["val/dice"]["runs"] == 1


def test_train_on_a_folder_of_images(tmp_path):
    from tests.test_data_folder import make_folder

    make_folder(str(tmp_path / "data"), n=12)
    train("runs/f", "--config.data.name=folder", f"--config.data.root={tmp_path / 'data'}",
          "--config.data.image_size=32", "--config.data.val_fraction=0.25", "--config.train.batch_size=3",
          "--config.train.epochs=1", cwd=tmp_path)
    assert_a_run(tmp_path / "runs/f", epochs=1)


def test_train_on_a_covid_qu_ex_tree(tmp_path):
    from tests.test_data_covid_qu_ex import make_tree

    make_tree(str(tmp_path / "covid"))
    train("runs/c", "--config.data.name=covid_qu_ex", f"--config.data.root={tmp_path / 'covid'}",
          f"--config.data.cache_dir={tmp_path / 'cache'}", "--config.data.image_size=32",
          "--config.train.batch_size=2", "--config.train.epochs=1", cwd=tmp_path)
    assert_a_run(tmp_path / "runs/c", epochs=1)
    assert any((tmp_path / "cache").iterdir())  # prepared once, under the cache dir asked for


def test_train_on_whole_slides(tmp_path):
    from tests.test_data_histopathology import P, make_slide

    make_slide(str(tmp_path / "wsi"))
    train("runs/s", "--config.data.name=histopathology", f"--config.data.root={tmp_path / 'wsi'}",
          f"--config.data.cache_dir={tmp_path / 'cache'}", f"--config.data.patch_size={P}",
          "--config.data.tissue_downsample=8", "--config.data.image_size=64", "--config.data.sampling=all",
          "--config.data.val_fraction=0.25", "--config.data.augment=True", "--config.data.random_pick=True",
          "--config.data.rotation_limit=20", "--config.train.batch_size=3", "--config.train.epochs=1",
          cwd=tmp_path)
    assert_a_run(tmp_path / "runs/s", epochs=1)
    assert json.loads((tmp_path / "runs/s/config.json").read_text())["data"]["name"] == "histopathology"


def test_a_thesis_experiment_with_trials(tmp_path):
    finals, _ = train("runs/exp1", "--config.train.epochs=2", config="configs/unet_variants.py:attunet,smoke",
                      cwd=tmp_path)
    assert len(finals) == 2  # one final line per trial
    wd = tmp_path / "runs/exp1"
    for t in range(2):
        assert_a_run(wd / f"trial_{t}", epochs=2)
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["val/dice"]["runs"] == 2 and 0.0 <= summary["val/dice"]["mean"] <= 1.0
    out = run("jaxseg.aggregate", str(wd / "trial_0"), str(wd / "trial_1"), "--preset", "experiment1", "--json",
              cwd=tmp_path)
    assert json.loads(out.stdout)["val/dice"]["mean"] == pytest.approx(summary["val/dice"]["mean"])
