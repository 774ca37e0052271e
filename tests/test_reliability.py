"""Surviving SIGKILL, corrupt checkpoints and degenerate batches; nothing unpickled."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.training import checkpoint as ckpt_lib
from jaxseg import losses
from jaxseg import training as train
from jaxseg.training.run_log import MetricsLog
from tests.helpers import comparable, tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _cli(workdir, epochs=3):
    return [sys.executable, "-m", "jaxseg.main", "--config=configs/default.py:smoke", f"--workdir={workdir}",
            f"--config.train.epochs={epochs}", "--config.train.progress=False"]


@pytest.mark.slow
def test_sigkill_at_any_moment_then_rerun_equals_an_uninterrupted_run(tmp_path):
    from configs import default

    reference = default.get_config("smoke")  # what _cli runs, trained in this process
    reference.train.epochs, reference.train.progress = 3, False
    train.train_and_evaluate(reference, tmp_path / "full")
    victim = subprocess.Popen(_cli(tmp_path / "killed"), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    for line in victim.stderr:  # wait (without sleeping) until epoch 1 is evaluated, then kill -9
        if line.startswith("epoch 1:"):
            victim.send_signal(signal.SIGKILL)
            break
    victim.wait(timeout=600)
    assert victim.returncode == -signal.SIGKILL
    again = subprocess.run(_cli(tmp_path / "killed"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    a = [comparable(r) for r in MetricsLog.read(tmp_path / "full" / "metrics.jsonl")]
    b = [comparable(r) for r in MetricsLog.read(tmp_path / "killed" / "metrics.jsonl")]
    assert [r["epoch"] for r in b] == [1, 2, 3]
    assert a == b
    # TensorBoard agrees with metrics.jsonl: each evaluated step once, however the kill fell
    tb = [(e.step, v.simple_value) for f in sorted((tmp_path / "killed").glob("events.out.tfevents.*"))
          for e in _events(f) for v in e.summary.value if v.tag == "val/dice"]
    assert sorted(tb) == sorted((r["step"], pytest.approx(r["val/dice"])) for r in
                                MetricsLog.read(tmp_path / "killed" / "metrics.jsonl"))


def _events(path):
    import tensorflow as tf

    return list(tf.compat.v1.train.summary_iterator(str(path)))


def _corrupt(step_dir: Path):
    for f in (step_dir / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\x00garbage")


def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    train.train_and_evaluate(tiny_config(epochs=2), tmp_path)
    latest = tmp_path / "checkpoints" / "latest"
    steps = sorted(int(p.name) for p in latest.iterdir() if p.name.isdigit())
    assert steps == [2, 4]
    _corrupt(latest / "4")
    record = train.train_and_evaluate(tiny_config(epochs=3), tmp_path)
    err = capsys.readouterr().err
    assert re.search(r"checkpoint .*latest/4 is unreadable", err) and "trying an older one" in err
    assert "Resuming from" in err and "at step 2" in err
    assert [r["epoch"] for r in MetricsLog.read(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    assert record["epoch"] == 3


def test_no_usable_checkpoint_is_an_error(tmp_path):
    config = tiny_config(epochs=1)
    train.train_and_evaluate(config, tmp_path)
    for d in (tmp_path / "checkpoints").glob("*/*"):
        if d.name.isdigit():
            _corrupt(d)
    with pytest.raises(RuntimeError, match="no usable checkpoint"):  # a CheckpointError (a JaxsegError)
        train.train_and_evaluate(config, tmp_path)


@pytest.mark.parametrize("name", losses.available())
def test_every_loss_is_finite_on_degenerate_batches_in_float32_and_bf16(name):
    params = {"lovasz_softmax": dict(classes=(1,))}.get(name, {})
    loss_fn = losses.build_loss(dict(name=name, **params))

    @jax.jit
    def values_and_grads(logits, masks):
        def one(lg, m):
            return jax.value_and_grad(lambda z: loss_fn(z, {"image": m, "mask": m}, jnp.int32(0))[0])(lg)
        return jax.vmap(one)(logits, masks)

    rng = np.random.default_rng(0)
    shape = (2, 16, 16, 1)
    masks = jnp.stack([jnp.zeros(shape), jnp.ones(shape)])  # all background, all foreground
    for dtype in (jnp.float32, jnp.bfloat16):
        logits = jnp.asarray(rng.normal(0, 8, (2,) + shape), dtype)  # saturating sigmoids too
        value, grad = values_and_grads(logits, masks)
        assert bool(jnp.all(jnp.isfinite(value))), (name, dtype)
        assert bool(jnp.all(jnp.isfinite(grad.astype(jnp.float32)))), (name, dtype)


def test_the_package_never_unpickles():
    """No unpickling anywhere; the one exception is torch's restricted loader for .pth encoder weights,
    ``torch.load(..., weights_only=True)`` (tensors and plain containers only, no code)."""
    pattern = re.compile(r"\bimport pickle\b|\bpickle\.load|\bcloudpickle\b|\bdill\b|allow_pickle\s*=\s*True|"
                         r"joblib\.load")
    offenders = [f"{p}:{i}" for p in (ROOT / "jaxseg").rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line) or ("torch.load" in line and "weights_only=True" not in line)]
    assert offenders == []
