"""The YNNPACK flag: added only when safe, opt-out works, and gradients match the default XLA:CPU path."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxseg import xla_cpu
from jaxseg.xla_cpu import FLAG, enable_fast_cpu_kernels

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
import jax, jax.numpy as jnp, numpy as np
import jaxseg
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
