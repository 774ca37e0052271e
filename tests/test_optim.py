"""Adam as in torch.optim.Adam (the thesis's optimizer), against NumPy written from the formula."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseg.training.optim import build_optimizer


def _numpy_adam(theta, grads, lr, b1, b2, eps, wd, decoupled):
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        if not decoupled:
            g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        step = mhat / (np.sqrt(vhat) + eps)
        if decoupled:
            step = step + wd * theta
        theta = theta - lr * step
    return theta


@pytest.mark.parametrize("name,decoupled", [("adam", False), ("adamw", True)])
def test_adam_matches_formula(name, decoupled):
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(5,)).astype(np.float64)
    grads = [rng.normal(size=(5,)) for _ in range(4)]
    cfg = dict(name=name, learning_rate=0.1, b1=0.8, b2=0.99, weight_decay=0.01)
    tx = build_optimizer(cfg)
    p = jnp.asarray(theta, jnp.float32)
    state = tx.init(p)
    for g in grads:
        upd, state = tx.update(jnp.asarray(g, jnp.float32), state, p)
        p = optax.apply_updates(p, upd)
    expected = _numpy_adam(theta, grads, 0.1, 0.8, 0.99, 1e-8, 0.01, decoupled)
    np.testing.assert_allclose(np.asarray(p), expected, rtol=1e-5, atol=1e-6)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="available: adam, adamw, sgd"):
        build_optimizer(dict(name="lamb"))


@pytest.mark.parametrize("kind", ["cosine", "poly"])
def test_schedules_follow_their_formulas(kind):
    from jaxseg.training.optim import learning_rate_schedule

    lr, T, warm = 0.2, 100, 10
    sched = learning_rate_schedule(dict(learning_rate=lr, schedule=kind, warmup_steps=warm), T)
    for t in (0, 5, 10, 40, 99, 100):
        if t < warm:
            expected = lr * t / warm
        else:
            u = (t - warm) / (T - warm)
            expected = lr * 0.5 * (1 + np.cos(np.pi * u)) if kind == "cosine" else lr * (1 - u) ** 0.9
        np.testing.assert_allclose(float(sched(t)), expected, rtol=1e-5, atol=1e-7)


def test_constant_schedule_is_a_number_and_unknown_is_an_error():
    from jaxseg.training.optim import learning_rate_schedule

    assert learning_rate_schedule(dict(learning_rate=0.1)) == 0.1
    with pytest.raises(ValueError, match="available: constant, cosine, poly"):
        learning_rate_schedule(dict(schedule="step"), 10)
