"""The persistent compilation cache the commands turn on (jaxseg.runtime.enable_compilation_cache)."""

import os
import subprocess
import sys

import pytest

from jaxseg.runtime import enable_compilation_cache


def test_default_folder_is_under_the_user_cache():
    env = {"HOME": "/home/u"}
    assert enable_compilation_cache(env) == "/home/u/.cache/jaxseg/xla"
    assert env["JAX_COMPILATION_CACHE_DIR"] == "/home/u/.cache/jaxseg/xla"
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0.5"
    env = {"HOME": "/home/u", "XDG_CACHE_HOME": "/c"}
    assert enable_compilation_cache(env) == "/c/jaxseg/xla"


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_turned_off(value):
    env = {"HOME": "/home/u", "JAXSEG_COMPILATION_CACHE": value}
    assert enable_compilation_cache(env) is None and "JAX_COMPILATION_CACHE_DIR" not in env


def test_named_folder_and_the_users_jax_setting():
    env = {"JAXSEG_COMPILATION_CACHE": "/tmp/mine"}
    assert enable_compilation_cache(env) == "/tmp/mine" == env["JAX_COMPILATION_CACHE_DIR"]
    env = {"JAXSEG_COMPILATION_CACHE": "/tmp/mine", "JAX_COMPILATION_CACHE_DIR": "/theirs"}
    assert enable_compilation_cache(env) == "/theirs" == env["JAX_COMPILATION_CACHE_DIR"]


@pytest.mark.parametrize("jax_first", [False, True], ids=["before-jax", "after-jax"])
def test_compiled_programs_land_in_the_folder(tmp_path, jax_first):
    """Whether or not JAX was imported before configure_process, a compiled program is stored."""
    code = ("import jax\n" if jax_first else "") + (
        "from jaxseg import runtime\nruntime.configure_process()\n"
        "import jax, jax.numpy as jnp\nprint(float(jax.jit(lambda x: jnp.sin(x) * 3)(jnp.ones(3))[0]))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.update(JAXSEG_COMPILATION_CACHE=str(tmp_path / "xla"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(p.name.startswith("jit_") for p in (tmp_path / "xla").iterdir())
