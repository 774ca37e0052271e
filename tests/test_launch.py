"""launch/: usage errors, and a whole experiment sweep (smoke variants) ending in its report."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("script", ["single_gpu.sh", "multi_gpu.sh", "sweep.sh", "cv.sh"])
def test_usage_errors(script):
    proc = subprocess.run(["bash", os.path.join(ROOT, "launch", script)], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_unknown_experiment(tmp_path):
    proc = subprocess.run(["bash", os.path.join(ROOT, "launch", "sweep.sh"), "exp9", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown experiment 'exp9'" in proc.stderr


@pytest.mark.slow
def test_sweep_of_experiment2_smoke(tmp_path):
    env = dict(os.environ, PY=sys.executable)
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "launch", "sweep.sh"), "exp2", str(tmp_path), "--smoke",
         "--config.train.epochs=1", "--config.train.num_trials=1", "--config.train.progress=False"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / "report" / "table.md").read_text().splitlines()
    assert table[0] == "| | loss | val loss | AUC | DSC | Jaccard | AP |"
    assert [row.split("|")[1].strip() for row in table[2:]] == ["lovasz", "jaccard"]
    assert (tmp_path / "report" / "predictions.png").exists()


def test_gpu_benchmark_script_dry_run(tmp_path):
    """bench/gpu.sh runs every part end to end (tiny sizes, on the CPU here) and writes its files."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               JAXSEG_BENCH_NO_TORCH="1")
    proc = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu.sh"), "--dry-run", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    result = json.loads((tmp_path / "gpu_unet.json").read_text())
    assert result["config"]["dtype"] == "bfloat16" and result["jaxseg"]["images_per_s"] > 0
    assert result["jaxseg"]["flops_per_step"] > 0 and 0 < result["jaxseg"]["mfu"] < 1
    assert (tmp_path / "gpu_unet.txt").read_text().count("images/s") == 2
    assert "lovasz_hinge fwd+bwd (2, 32, 32): jaxseg" in (tmp_path / "gpu_lovasz.txt").read_text()
    assert "modified_average_hausdorff of one 32² image" in (tmp_path / "gpu_eval.txt").read_text()
    assert "signed distance map  jaxseg vs scipy" in (tmp_path / "gpu_edt.txt").read_text()


@pytest.mark.parametrize("flag, variant", [("--smoke", "smoke"), ("--demo", "demo")])
def test_sweep_passes_the_size_variant_to_every_arm(tmp_path, flag, variant):
    proc = subprocess.run(["bash", os.path.join(ROOT, "launch", "sweep.sh"), "exp3-bce", str(tmp_path), flag],
                          capture_output=True, text=True, env={**os.environ, "PY": "echo"})
    assert proc.returncode == 0, proc.stderr
    for arm in ("boundary", "bce", "constant"):
        assert f"configs/boundary_bce.py:{arm},{variant} --workdir={tmp_path}/{arm}" in proc.stdout


def test_sweep_with_folds_cross_validates_every_arm(tmp_path):
    proc = subprocess.run(["bash", os.path.join(ROOT, "launch", "sweep.sh"), "exp2", str(tmp_path), "--demo",
                           "--folds=3", "--config.train.epochs=1"],
                          capture_output=True, text=True, env={**os.environ, "PY": "echo"})
    assert proc.returncode == 0, proc.stderr
    for arm, spec in (("lovasz", "lovasz.py:demo"), ("jaccard", "jaccard.py:demo")):
        for k in range(3):
            assert (f"configs/{spec} --workdir={tmp_path}/{arm}/fold_{k} --config.data.num_folds=3 "
                    f"--config.data.fold={k} --config.train.epochs=1") in proc.stdout
        assert f"-m jaxseg.aggregate {tmp_path}/{arm}" in proc.stdout


def test_cv_refuses_a_bad_fold_count(tmp_path):
    proc = subprocess.run(["bash", os.path.join(ROOT, "launch", "cv.sh"), "configs/default.py", str(tmp_path), "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "K must be an integer ≥ 2, got '1'" in proc.stderr
