"""Each command turns a user's mistake into one ``error:`` line, a non-zero exit code and no traceback,
and leaves nothing behind that a corrected rerun would trip over."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SMOKE = f"--config={REPO}/configs/default.py:smoke"


def _run(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=600,
                          env=None if env is None else {**os.environ, **env})


def _one_error_line(out, code: int, message: str) -> None:
    assert out.returncode == code, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], out.stderr[-3000:]


@pytest.mark.parametrize("args, message, code", [
    (["jaxseg.inspect", "missing_dir"], "missing_dir does not exist", 1),
    (["jaxseg.inspect", "."], "no orbax checkpoints found under", 1),
    (["jaxseg.predict", "--workdir=.", "--input=.", "--output=out"], "config.json not found", 1),
    (["jaxseg.report", "."], "holds no metrics.jsonl", 1),
    (["jaxseg.aggregate", "missing_dir"], "missing_dir does not exist", 1),
    (["jaxseg.aggregate", "."], "holds no metrics.jsonl records", 1),
    (["jaxseg.main", SMOKE, "--workdir=wd", "--config.data.name=nope"],
     "config.data.name='nope' is not a dataset", 2),
    (["jaxseg.main", SMOKE, "--workdir=wd", "--config.data.val_fraction=1.5"],
     "config.data.val_fraction=1.5 must be between 0 and 1", 2),
    (["jaxseg.main", SMOKE, "--workdir=wd", "--config.data.task=bogus"],
     "config.data.task='bogus' is not a synthetic task; available: infection, lung, lung_infection, lung_and_infection", 2),
    (["jaxseg.main", SMOKE, "--workdir=wd", "--config.data.sampling=bogus"],
     "config.data.sampling='bogus'; use one of all, positives, weighted", 2),
    (["jaxseg.main", SMOKE, "--workdir=wd", "--config.data.augment=True", "--config.data.crop_size=18"],
     "config.data.crop_size=18 is not divisible by 2^(depth-1)=4", 2),
    (["jaxseg.main", SMOKE, "--workdir=wd", "--config.data.num_train=4"],
     "the training set has 4 examples, fewer than one batch of 8 (config.train.batch_size)", 2),
])
def test_user_mistake_is_one_line_without_traceback(tmp_path, args, message, code):
    out = _run(*args, cwd=tmp_path)
    _one_error_line(out, code, message)
    wd = tmp_path / "wd"
    assert not (wd / "checkpoints").exists() and not (wd / "config.json").exists()  # nothing to trip over


def test_batch_not_divisible_by_the_devices(tmp_path):
    out = _run("jaxseg.main", SMOKE, "--workdir=wd", "--config.train.batch_size=7", cwd=tmp_path,
               env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0"})
    _one_error_line(out, 2, "config.train.batch_size=7 is not divisible by the 2 devices; use a multiple of 2")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-epoch smoke run, trained once for the tests below."""
    root = tmp_path_factory.mktemp("trained")
    out = _run("jaxseg.main", SMOKE, "--workdir=wd", "--config.train.epochs=1", "--config.train.progress=False",
               cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    return root / "wd"


def test_resuming_with_a_changed_model_names_what_changed(trained):
    before = (trained / "config.json").read_text()
    out = _run("jaxseg.main", SMOKE, f"--workdir={trained}", "--config.train.epochs=2", "--config.model.features=8",
               cwd=trained.parent)
    _one_error_line(out, 2, "holds a checkpoint of a different config (model.features: 4 -> 8)")
    assert (trained / "config.json").read_text() == before  # the run's record is untouched


def test_no_usable_checkpoint_is_one_line(trained, tmp_path):
    import shutil

    wd = tmp_path / "wd"
    shutil.copytree(trained, wd)
    for f in (wd / "checkpoints").rglob("*"):
        if f.is_file() and "state" in f.parts:
            f.write_bytes(b"\x00garbage")
    out = _run("jaxseg.main", SMOKE, f"--workdir={wd}", "--config.train.epochs=2", "--config.train.progress=False",
               cwd=tmp_path)
    _one_error_line(out, 1, "no usable checkpoint in")
