"""The YNNPACK flag: added only when safe, opt-out works, gradients match the default XLA:CPU path,
and importing the library changes no process-wide setting."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxseg import runtime as xla_cpu
from jaxseg.runtime import FLAG, enable_fast_cpu_kernels

KNOWN = xla_cpu._jaxlib_release() in xla_cpu.KNOWN_JAXLIB


@pytest.mark.skipif(not KNOWN, reason="jaxlib release without the YNN flag")
def test_adds_flag_to_existing_flags():
    env = {"XLA_FLAGS": "--xla_backend_optimization_level=0"}
    assert enable_fast_cpu_kernels(env, backend_started=False)
    assert env["XLA_FLAGS"].split() == ["--xla_backend_optimization_level=0", FLAG]
    assert enable_fast_cpu_kernels(env, backend_started=False)  # idempotent
    assert env["XLA_FLAGS"].count("ynn") == 1


@pytest.mark.parametrize("env", [
    {"JAXSEG_XLA_CPU_FAST": "0"},
    {"JAXSEG_XLA_CPU_FAST": "off", "XLA_FLAGS": "--a=1"},
    {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=dot"},  # the user's own choice stands
])
def test_leaves_flags_alone(env):
    before = dict(env)
    assert not enable_fast_cpu_kernels(env, backend_started=False)
    assert env == before


def test_no_effect_once_backend_started():
    env = {}
    assert not enable_fast_cpu_kernels(env, backend_started=True)
    assert env == {}


def test_unknown_jaxlib_is_left_alone(monkeypatch):
    monkeypatch.setattr(xla_cpu, "_jaxlib_release", lambda: (9, 99))
    env = {}
    assert not enable_fast_cpu_kernels(env, backend_started=False)
    assert env == {}


_GRADS = r"""
import json, sys, os
import jaxseg.runtime
jaxseg.runtime.configure_process()
import jax, jax.numpy as jnp, numpy as np
from jaxseg import losses, models
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(2, 32, 32, 1)).astype(np.float32))
y = jnp.asarray((rng.random((2, 32, 32, 1)) < 0.3).astype(np.float32))
model = models.get_model(dict(name="unet", features=4, depth=2), "float32")
v = model.init(jax.random.PRNGKey(0), x, train=False)
loss_fn = losses.build_loss(dict(name="dice"))
def loss(p):
    return loss_fn(model.apply({**v, "params": p}, x, train=False), {"image": x, "mask": y}, 0)[0]
value, grads = jax.jit(jax.value_and_grad(loss))(v["params"])
leaves = [np.asarray(g).ravel().tolist() for g in jax.tree_util.tree_leaves(grads)]
print(json.dumps({"flags": os.environ.get("XLA_FLAGS", ""), "loss": float(value), "grads": leaves}))
"""


def _run(fast: str):
    env = dict(os.environ, XLA_FLAGS="--xla_backend_optimization_level=0")
    env["JAXSEG_XLA_CPU_FAST"] = fast
    out = subprocess.run([sys.executable, "-c", _GRADS], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not KNOWN, reason="jaxlib release without the YNN flag")
def test_ynn_gradients_match_default_xla():
    fast, plain = _run("1"), _run("0")
    assert FLAG in fast["flags"].split() and "ynn" not in plain["flags"]
    np.testing.assert_allclose(fast["loss"], plain["loss"], rtol=1e-5)
    for a, b in zip(fast["grads"], plain["grads"]):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * max(1.0, np.abs(b).max()))


_IMPORT_ALL = r"""
import json, os, pkgutil, importlib
before = {k: os.environ.get(k) for k in ("XLA_FLAGS", "CUDA_VISIBLE_DEVICES")}  # (jax itself sets TF_CPP_MIN_LOG_LEVEL)
import jaxseg
for m in pkgutil.walk_packages(jaxseg.__path__, "jaxseg."):
    importlib.import_module(m.name)
after = {k: os.environ.get(k) for k in before}
import tensorflow as tf
print(json.dumps({"before": before, "after": after,
                  "tf_gpu_hidden": tf.config.get_visible_devices("GPU") == [] and
                  bool(tf.config.list_physical_devices("GPU"))}))
"""


def test_importing_the_library_changes_nothing_global():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "TF_CPP_MIN_LOG_LEVEL")}
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALL], env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["after"] == result["before"]
    assert not result["tf_gpu_hidden"]  # TensorFlow's devices are the user's until configure_process


def test_configure_process_sets_the_commands_settings(monkeypatch):
    monkeypatch.setattr(xla_cpu, "_backend_started", lambda: False)  # as in a command, before JAX starts
    env = {}
    xla_cpu.configure_process(environ=env)
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert (FLAG in env.get("XLA_FLAGS", "")) == KNOWN
