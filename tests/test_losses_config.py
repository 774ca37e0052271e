"""config.loss -> the trainer's loss_fn: single losses, weighted terms, α schedules, errors."""

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxseg import losses
from jaxseg.losses import combine as C
from jaxseg.losses import regional as R
from jaxseg.losses.boundary import boundary

RNG = np.random.default_rng(0)
BATCH = {"image": np.zeros((2, 8, 8, 1), np.float32),
         "mask": (RNG.random((2, 8, 8, 1)) < 0.3).astype(np.float32)}
LOGITS = RNG.normal(size=(2, 8, 8, 1)).astype(np.float32)

TABLE7_LINEAR = {  # thesis Table 7, "Combined (linear)"
    "terms": [{"name": "tversky", "alpha": 0.7, "beta": 0.3},
              {"name": "boundary", "clamp": 128.0, "rescale": 128.0}],
    "combine": "convex",
    "schedule": {"kind": "rebalance", "alpha": 0.5, "every": 20, "step": 0.2, "floor": 0.1},
}
TABLE8_CONSTANT = {  # thesis Table 8, "Combined (constant)"
    "terms": [{"name": "weighted_bce", "pos_weight": 0.7, "weight": 0.5},
              {"name": "boundary", "clamp": 128.0, "rescale": 128.0, "weight": 0.5}],
}


def test_every_registered_loss_builds_and_runs():
    for name in losses.available():
        loss, aux = jax.jit(losses.build_loss({"name": name}))(LOGITS, BATCH, jnp.int32(0))
        assert loss.shape == () and np.isfinite(float(loss)) and aux == {}, name


def test_single_loss_from_configdict():
    cfg = ml_collections.ConfigDict({"name": "tversky", "alpha": 0.7, "beta": 0.3, "batchwise": True})
    loss, _ = losses.build_loss(cfg)(LOGITS, BATCH, 0)
    chex.assert_trees_all_close(loss, R.tversky(LOGITS, BATCH["mask"], 0.7, 0.3, batchwise=True))


def test_table7_linear_rebalance_is_exact():
    fn = jax.jit(losses.build_loss(ml_collections.ConfigDict(TABLE7_LINEAR)))
    t = R.tversky(LOGITS, BATCH["mask"], 0.7, 0.3)
    b = boundary(LOGITS, BATCH["mask"], clamp=128.0, rescale=128.0)
    for epoch, alpha in [(0, 0.5), (19, 0.5), (20, 0.7), (39, 0.7), (40, 0.9), (60, 0.9), (99, 0.9)]:
        loss, aux = fn(LOGITS, BATCH, jnp.int32(epoch))
        chex.assert_trees_all_close(aux["alpha"], alpha, rtol=1e-6)
        chex.assert_trees_all_close(aux["weight_tversky"], 1 - alpha, atol=1e-6)
        chex.assert_trees_all_close(loss, (1 - alpha) * t + alpha * b, rtol=1e-5)
        chex.assert_trees_all_close((aux["loss_tversky"], aux["loss_boundary"]), (t, b), rtol=1e-6)


def test_table8_constant_weighted_sum_and_precomputed_dist():
    fn = losses.build_loss(TABLE8_CONSTANT)
    dist = RNG.normal(size=BATCH["mask"].shape).astype(np.float32)
    loss, aux = fn(LOGITS, {**BATCH, "dist": dist}, jnp.int32(3))
    w = R.weighted_bce(LOGITS, BATCH["mask"], pos_weight=0.7)
    b = boundary(LOGITS, BATCH["mask"], dist=dist, clamp=128.0, rescale=128.0)
    chex.assert_trees_all_close(loss, 0.5 * w + 0.5 * b, rtol=1e-6)
    assert "alpha" not in aux and float(aux["weight_boundary"]) == 0.5


@pytest.mark.parametrize("schedule,combine,expected", [
    ({"kind": "constant", "alpha": 0.3}, "convex", lambda k: 0.3),
    ({"kind": "linear", "alpha0": 0.01}, "sum", lambda k: 0.01 * k),
    ({"kind": "linear", "alpha0": 0.1, "max": 0.5}, "sum", lambda k: min(0.1 * k, 0.5)),
    ({"kind": "exponential", "beta": 0.2}, "convex", lambda k: 1 - np.exp(-0.2 * k)),
])
def test_schedules_and_combine_forms(schedule, combine, expected):
    cfg = {"terms": [{"name": "dice"}, {"name": "bce", "weight": 2.0}], "combine": combine, "schedule": schedule}
    fn = jax.jit(losses.build_loss(cfg))
    d, c = R.dice(LOGITS, BATCH["mask"]), R.bce(LOGITS, BATCH["mask"])
    for k in (0, 3, 7):
        a = expected(k)
        loss, aux = fn(LOGITS, BATCH, jnp.int32(k))
        ref = (d if combine == "sum" else (1 - a) * d) + a * 2.0 * c
        chex.assert_trees_all_close((loss, aux["alpha"]), (ref, a), rtol=1e-5, atol=1e-7)


def test_schedule_functions_directly():
    ks = jnp.arange(0, 101)
    reb = np.asarray(C.rebalance(ks, alpha=0.5, every=20, step=0.2, floor=0.1))
    np.testing.assert_allclose(reb[[0, 20, 40, 60, 80, 100]], [0.5, 0.7, 0.9, 0.9, 0.9, 0.9], rtol=1e-6)


@pytest.mark.parametrize("cfg,match", [
    ({"name": "dise"}, "available: .*dice"),
    ({"name": "dice", "alpha": 0.3}, "no parameter.*alpha.*parameters"),
    ({"name": "boundary", "dist": 1.0}, "no parameter.*dist"),
    ({"terms": [{"name": "dice", "gamma": 2}]}, "no parameter.*gamma"),
    ({"terms": [{"name": "dice"}, {"name": "bce"}], "combine": "product"}, "available: sum, convex"),
    ({"terms": [{"name": "dice"}, {"name": "bce"}], "schedule": {"kind": "cosine"}}, "available: constant"),
    ({"terms": [{"name": "dice"}], "schedule": {"kind": "linear", "rate": 1}}, "no parameter.*rate"),
    ({"terms": [{"name": "dice"}, {"name": "bce"}], "combine": "convex"}, "needs a schedule"),
    ({"terms": [{"name": "dice"}, {"name": "bce"}], "schedule": {"kind": "rebalance"}}, "convex"),
    ({"name": "dice", "terms": [{"name": "bce"}]}, "terms"),
])
def test_clear_errors(cfg, match):
    with pytest.raises(ValueError, match=match):
        losses.build_loss(cfg)


def test_lovasz_hinge_rejects_multiclass():
    with pytest.raises(ValueError, match="lovasz_softmax"):
        losses.build_loss({"name": "lovasz_hinge"})(np.zeros((1, 4, 4, 3), np.float32),
                                                     {"mask": np.zeros((1, 4, 4, 3), np.float32)}, 0)
