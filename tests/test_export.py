"""Export for deployment: the ONNX file and the SavedModel give jaxseg.predict's probabilities.

Two tiny trained workdirs: one attention U-Net run (BatchNorm in eval mode, the attention gate's
bilinear resampling, max pooling) trained here, and the 2-trial vectorised run (and its sequential
twin) of tests/test_predict_trials.py (the ensemble: the mean of the members' probabilities).
Each export is run with its runtime (onnxruntime, tf.saved_model.load) on the same images as
``jaxseg.inference``'s library predictors and must agree to 1e-4. ONNX tests need the ``export``
extra and are skipped, saying so, without it. Then the command as a user runs it, and its one-line
errors.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxseg import exporting
from jaxseg.errors import JaxsegError
from jaxseg.exporting import graph, writers
from jaxseg.inference import ensemble, predict
from jaxseg.inference.workdirs import trial_workdirs
from tests.helpers import tiny_config
from tests.test_predict_trials import SIZE, trained_trials

TOL = 1e-4
EXTRA = "the export extra is not installed (pip install -e '.[export]' && pip install --no-deps jax2onnx==0.17.1)"


def needs_onnx():
    for name in ("jax2onnx", "onnx", "onnxruntime"):
        pytest.importorskip(name, reason=EXTRA)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """A one-epoch attention U-Net run with BatchNorm (16×16, 4 features, depth 2)."""
    from jaxseg.training import trials

    c = tiny_config(epochs=1)
    c.model.name = "attunet"
    c.data.image_size, c.data.num_train, c.data.num_val = SIZE, 8, 8
    wd = tmp_path_factory.mktemp("export_single") / "run"
    trials.run(c, wd)
    return wd


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    return trained_trials(tmp_path_factory)  # (vectorised, sequential)


def images(n=3, seed=1):
    return np.random.default_rng(seed).random((n, SIZE, SIZE, 1), np.float32)


# --- the library: what is written computes what jaxseg.predict computes -----------------------

def test_onnx_of_a_run_gives_predicts_probabilities(single, tmp_path):
    needs_onnx()
    import onnx

    result = exporting.export(single, "onnx", tmp_path / "m.onnx")
    x = images()
    got = writers.run_onnx(tmp_path / "m.onnx", x)
    np.testing.assert_allclose(got, predict.Predictor(single)(x), atol=TOL, rtol=0)
    assert result.max_abs_diff <= TOL and result.input_shape == (None, SIZE, SIZE, 1)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["jaxseg.mode"] == "binary" and "[0, 1]" in meta["jaxseg.input"]
    dims = onnx.load(str(tmp_path / "m.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", SIZE, SIZE, 1]  # dynamic batch
    assert writers.run_onnx(tmp_path / "m.onnx", x[:1]).shape == (1, SIZE, SIZE, 1)


def test_savedmodel_of_a_run_gives_predicts_probabilities(single, tmp_path):
    import tensorflow as tf

    exporting.export(single, "savedmodel", tmp_path / "sm")
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    x = images()
    expected = predict.Predictor(single)(x)
    np.testing.assert_allclose(loaded.predict(tf.constant(x)).numpy(), expected, atol=TOL, rtol=0)
    served = loaded.signatures["serving_default"](images=tf.constant(x[:1]))["probabilities"].numpy()
    np.testing.assert_allclose(served, expected[:1], atol=TOL, rtol=0)
    contract = json.loads((tmp_path / "sm" / writers.CONTRACT_FILE).read_text())
    assert contract["threshold"] == 0.5 and contract["members"] == [str(single)]


def test_fixed_batch(single, tmp_path):
    import tensorflow as tf

    result = exporting.export(single, "savedmodel", tmp_path / "sm", batch="2")
    assert result.input_shape == (2, SIZE, SIZE, 1) and result.check_images == 2
    spec = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"].structured_input_signature
    assert spec[1]["images"].shape.as_list() == [2, SIZE, SIZE, 1]


def test_onnx_of_the_ensemble_is_the_mean_of_the_trials(multi, tmp_path):
    needs_onnx()
    vec, seq = multi
    x = images(4)
    exporting.export(vec, "onnx", tmp_path / "all.onnx")
    np.testing.assert_allclose(writers.run_onnx(tmp_path / "all.onnx", x), ensemble.load(vec)(x), atol=TOL, rtol=0)
    exporting.export(seq, "onnx", tmp_path / "one.onnx", trial=1)
    np.testing.assert_allclose(writers.run_onnx(tmp_path / "one.onnx", x), ensemble.load(seq, trial=1)(x),
                               atol=TOL, rtol=0)


def test_savedmodel_of_chosen_members(multi, tmp_path):
    vec, seq = multi
    x = images(2)
    result = exporting.export(seq, "savedmodel", tmp_path / "sm", members="0,1")
    assert len(result.members) == 2
    np.testing.assert_allclose(writers.run_savedmodel(tmp_path / "sm", x), ensemble.load(seq)(x), atol=TOL, rtol=0)
    exporting.export(vec, "savedmodel", tmp_path / "sm1", members=[1])
    np.testing.assert_allclose(writers.run_savedmodel(tmp_path / "sm1", x), ensemble.load(vec, trial=1)(x),
                               atol=TOL, rtol=0)


def test_max_pool_as_slices_is_exact():
    import jax
    import jax.numpy as jnp
    from jax import lax

    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 9, 8, 3)), jnp.float32)
    for window, strides, pad in (((1, 2, 2, 1), (1, 2, 2, 1), "VALID"), ((1, 3, 3, 1), (1, 2, 2, 1), "SAME")):
        want = lax.reduce_window(x, -jnp.inf, lax.max, window, strides, pad)
        staged = graph.staged(lambda p, a: lax.reduce_window(a, -jnp.inf, lax.max, window, strides, pad), None,
                              jax.ShapeDtypeStruct(x.shape, x.dtype))
        assert "reduce_window_max" not in str(jax.make_jaxpr(staged)(x))
        np.testing.assert_array_equal(staged(x), want)


# --- choosing members ---------------------------------------------------------------------------

def test_select_members(multi):
    vec, _ = multi
    trials = trial_workdirs(vec)
    assert ensemble.select_members(trials, None) == trials
    assert ensemble.select_members(trials, "1") == trials[1:] == ensemble.select_members(trials, [1])
    assert ensemble.select_members(trials, " 1, 0 ") == trials  # trial order, spaces allowed
    for members, message in (("0,0", "trial 0 is named twice"), ("7", "has no trial_7/; its trials are 0, 1"),
                             ("a", "give trial numbers separated by commas"), (",", "name at least one trial")):
        with pytest.raises(JaxsegError, match=message):
            ensemble.select_members(trials, members, vec)
    with pytest.raises(JaxsegError, match="is a single run"):
        ensemble.select_members([], "0", "runs/x")


# --- the command --------------------------------------------------------------------------------

def _run(*args, cwd, code="from jaxseg.cli.export import run; run()"):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_export_command_journey(multi, tmp_path):
    needs_onnx()
    vec, _ = multi
    out = subprocess.run([sys.executable, "-m", "jaxseg.export", f"--workdir={vec}", "--format=onnx",
                          "--output=ens.onnx", "--members=0,1"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=600)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert f"float32 (N, {SIZE}, {SIZE}, 1) in [0, 1]" in out.stdout and "mean of 2 trials" in out.stdout
    assert "checked: max |export - jaxseg.predict| = " in out.stdout
    x = images(2)
    np.testing.assert_allclose(writers.run_onnx(tmp_path / "ens.onnx", x), ensemble.load(vec)(x), atol=TOL, rtol=0)
    assert not list(tmp_path.glob(".*partial*"))


def _one_error_line(out, message: str) -> None:
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], out.stderr[-3000:]


@pytest.mark.parametrize("args, message", [
    (["--workdir=missing", "--format=onnx", "--output=m.onnx"], "--workdir=missing does not exist"),
    (["--workdir=.", "--format=tflite", "--output=m.tflite"], "--format must be one of onnx, savedmodel; got 'tflite'"),
    (["--workdir=.", "--format=onnx", "--output=m.onnx", "--batch=0"], "--batch must be 'dynamic' or a whole number"),
    (["--workdir=.", "--format=savedmodel", "--output=sm"], "config.json not found"),
])
def test_user_mistake_is_one_line(tmp_path, args, message):
    _one_error_line(_run(*args, cwd=tmp_path), message)
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "sm").exists()


def test_bad_members_is_one_line(multi, tmp_path):
    vec, _ = multi
    out = _run(f"--workdir={vec}", "--format=savedmodel", "--output=sm", "--members=0,5", cwd=tmp_path)
    _one_error_line(out, "--members=0,5: ")
    assert "has no trial_5/; its trials are 0, 1" in out.stderr and not (tmp_path / "sm").exists()


def test_missing_extra_is_one_line_naming_the_install(single, tmp_path):
    code = "import sys; sys.modules['jax2onnx'] = None; from jaxseg.cli.export import run; run()"
    out = _run(f"--workdir={single}", "--format=onnx", "--output=m.onnx", cwd=tmp_path, code=code)
    _one_error_line(out, "--format=onnx needs jax2onnx")
    assert "pip install -e \".[export]\" && pip install --no-deps \"jax2onnx==0.17.1\"" in out.stderr and not (tmp_path / "m.onnx").exists()


def test_an_export_is_refused_over_another_folder(single, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("keep")
    with pytest.raises(JaxsegError, match="exists and is not a SavedModel"):
        exporting.export(single, "savedmodel", tmp_path / "notes")
    assert (tmp_path / "notes" / "a.txt").read_text() == "keep"
    with pytest.raises(JaxsegError, match="--trial and --members"):
        exporting.load_model(Path(single), trial=0, members="0")


def test_onnx_of_a_bfloat16_run_is_refused_in_one_line(single, tmp_path):
    needs_onnx()
    import shutil

    wd = tmp_path / "bf16"
    shutil.copytree(single, wd)
    config = json.loads((wd / "config.json").read_text())
    config["train"]["dtype"] = "bfloat16"
    (wd / "config.json").write_text(json.dumps(config))
    with pytest.raises(JaxsegError, match="computes in bfloat16 .* use --format=savedmodel"):
        exporting.export(wd, "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
