"""bfloat16 training: bf16 activations, float32 parameters/optimizer state/loss; converges like float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import losses, models
from jaxseg import training as train
from jaxseg.training.optim import build_optimizer
from tests.helpers import tiny_config


def test_bf16_keeps_float32_master_weights_and_loss():
    model = models.get_model(dict(name="unet", features=4, depth=2), "bfloat16")
    tx = build_optimizer(dict(name="adam", learning_rate=1e-3))
    state = train.create_train_state(model, tx, jax.random.PRNGKey(0), (16, 16, 1))
    x = jnp.ones((2, 16, 16, 1))
    logits = model.apply({"params": state.params, "batch_stats": state.batch_stats}, x)
    assert logits.dtype == jnp.float32
    assert {l.dtype for l in jax.tree_util.tree_leaves(state.params)} == {jnp.dtype(jnp.float32)}
    inner = jax.make_jaxpr(lambda p: model.apply({"params": p, "batch_stats": state.batch_stats}, x))(state.params)
    assert "bf16" in str(inner)  # the convolutions run in bfloat16
    step = jax.jit(train.make_train_step(model, tx, losses.build_loss(dict(name="dice"))))
    new, out = step(state, {"image": x, "mask": jnp.ones((2, 16, 16, 1))}, jnp.int32(0))
    assert out["loss"].dtype == jnp.float32 and bool(out["finite"])
    assert {l.dtype for l in jax.tree_util.tree_leaves(new.opt_state)} <= {jnp.dtype(jnp.float32), jnp.dtype(jnp.int32)}


@pytest.mark.slow
def test_bf16_training_converges_like_float32(tmp_path):
    results = {}
    for dtype in ("float32", "bfloat16"):
        c = tiny_config(epochs=6, dtype=dtype)
        c.data.task, c.data.num_train, c.data.num_val = "lung", 64, 16
        c.optimizer.learning_rate = 3e-3
        results[dtype] = train.train_and_evaluate(c, tmp_path / dtype)
    assert results["float32"]["val/dice"] > 0.65
    assert results["bfloat16"]["val/dice"] > 0.65
    assert abs(results["bfloat16"]["val/dice"] - results["float32"]["val/dice"]) < 0.1
    assert np.isfinite(results["bfloat16"]["train/loss"])
