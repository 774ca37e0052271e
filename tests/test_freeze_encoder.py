"""``config.model.freeze_encoder_epochs``: the encoder's weights stay exactly as loaded for the first
K epochs' steps (no Adam moments, no weight decay gathered), then train like every other weight."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseg.training.optim import build_optimizer, freeze_encoder


def _run(tx, steps):
    params = {"encoder": {"w": jnp.ones((3,))}, "decoder": {"w": jnp.ones((2,))}}
    state = tx.init(params)
    history = [params]
    for _ in range(steps):
        grads = jax.tree_util.tree_map(lambda p: 0.5 * p + 1.0, params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        history.append(params)
    return history


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_encoder_frozen_for_k_steps_then_trains_as_if_fresh(weight_decay):
    inner = build_optimizer({"name": "adam", "learning_rate": 0.1, "weight_decay": weight_decay})
    history = _run(freeze_encoder(inner, 3), 5)
    for p in history[:4]:  # steps 1..3: the encoder as loaded
        chex.assert_trees_all_equal(p["encoder"], {"w": jnp.ones((3,))})
    assert not np.allclose(history[4]["encoder"]["w"], 1.0)
    # the decoder trains from step 1 exactly as without freezing
    free = _run(inner, 5)
    for a, b in zip(history, free):
        chex.assert_trees_all_close(a["decoder"], b["decoder"], rtol=1e-6)


def test_unfrozen_encoder_starts_as_a_fresh_adam():
    """After the freeze the encoder's Adam starts from zero moments and its own step count: its first
    step is Adam's first step, lr·g/(|g| + ε) — as PyTorch's Adam for a parameter that had no gradient."""
    inner = build_optimizer({"name": "adam", "learning_rate": 0.1})
    history = _run(freeze_encoder(inner, 4), 5)
    step = np.asarray(history[5]["encoder"]["w"] - history[4]["encoder"]["w"])
    np.testing.assert_allclose(step, -0.1, rtol=1e-5)


def test_zero_epochs_is_the_optimizer_itself():
    inner = build_optimizer({"name": "adam", "learning_rate": 0.1})
    assert freeze_encoder(inner, 0) is inner
