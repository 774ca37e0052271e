"""The experiment configs carry the thesis's appendix tables value by value, and each smoke variant runs."""

import importlib

import pytest

from jaxseg.training.config_check import validate_config


def _config(name, arg=None):
    return importlib.import_module(f"configs.{name}").get_config(arg)


def _adam(c, lr):
    assert (c.optimizer.name, c.optimizer.b1, c.optimizer.b2, c.optimizer.weight_decay) == ("adam", 0.9, 0.999, 0.0)
    assert c.optimizer.learning_rate == lr


@pytest.mark.parametrize("arm", ["unet", "attunet", "resattunet"])
def test_table5_unet_variants(arm):
    c = _config("unet_variants", arm)
    validate_config(c)
    _adam(c, 1e-4)
    assert c.model.name == arm and c.model.weight_init == "torch_default"
    assert c.data.augment and c.data.val_fraction == 0.2 and c.data.task == "infection"
    assert dict(c.loss) == dict(name="focal_tversky", alpha=0.5, beta=0.5, gamma=2.0, batchwise=True)
    assert (c.train.batch_size, c.train.epochs, c.train.num_trials) == (8, 30, 5)
    assert (c.eval.aggregate.last, c.eval.aggregate.reduce) == (5, "median")
    assert set(c.eval.metrics) == {"balanced_accuracy", "roc_auc", "average_precision", "dice", "jaccard", "mahd"}


@pytest.mark.parametrize("name,loss", [("lovasz", "lovasz_softmax"), ("jaccard", "jaccard")])
def test_table6_lovasz_vs_jaccard(name, loss):
    c = _config(name)
    validate_config(c)
    _adam(c, 1e-4)
    assert c.loss.name == loss
    assert c.model.name == "resattunet" and c.model.dropout == 0.5
    assert (c.model.weight_init, c.model.fan_mode) == ("he_normal", "fan_in")
    assert (c.train.batch_size, c.train.epochs, c.train.num_trials) == (8, 30, 5)
    assert c.data.val_fraction == 0.2 and c.eval.aggregate.last == 1


def _histo_common(c):
    assert c.data.name == "histopathology" and c.data.image_size == 256
    assert c.data.random_pick and c.data.rotation_limit == 180 and c.data.sampling == "positives"
    assert c.data.val_fraction == 0.2 and c.model.name == "unet" and c.train.batch_size == 8
    assert (c.eval.aggregate.last, c.eval.aggregate.reduce) == (3, "mean")


@pytest.mark.parametrize("arm,lr,epochs,trials", [("boundary", 1e-5, 100, 1), ("tversky", 1e-4, 200, 5),
                                                  ("constant", 1e-5, 100, 1), ("linear", 1e-5, 100, 1)])
def test_table7_boundary_tversky(arm, lr, epochs, trials):
    c = _config("boundary_tversky", arm)
    validate_config(c)
    _adam(c, lr)
    _histo_common(c)
    assert (c.train.epochs, c.train.num_trials) == (epochs, trials)
    tversky = dict(name="tversky", alpha=0.7, beta=0.3)
    if arm == "boundary":
        assert dict(c.loss) == dict(name="boundary")
    elif arm == "tversky":
        assert dict(c.loss) == tversky
    else:
        terms = [dict(t) for t in c.loss.terms]
        assert terms == [tversky, dict(name="boundary", clamp=128.0, rescale=128.0)]
        assert c.loss.combine == "convex"
        expected = (dict(kind="constant", alpha=0.5) if arm == "constant" else
                    dict(kind="rebalance", alpha=0.5, every=20, step=0.2, floor=0.1))
        assert dict(c.loss.schedule) == expected


@pytest.mark.parametrize("arm,lr,trials", [("boundary", 1e-5, 1), ("bce", 1e-4, 5), ("constant", 1e-5, 1)])
def test_table8_boundary_bce(arm, lr, trials):
    c = _config("boundary_bce", arm)
    validate_config(c)
    _adam(c, lr)
    _histo_common(c)
    assert (c.train.epochs, c.train.num_trials) == (100, trials)
    if arm == "bce":
        assert dict(c.loss) == dict(name="weighted_bce", pos_weight=0.7)
    if arm == "constant":
        assert [dict(t) for t in c.loss.terms] == [dict(name="weighted_bce", pos_weight=0.7),
                                                   dict(name="boundary", clamp=128.0, rescale=128.0)]
        assert dict(c.loss.schedule) == dict(kind="constant", alpha=0.5)


def test_table7_rebalance_weights_follow_the_schedule():
    """0.5/0.5 for epochs 0-19, 0.3/0.7 from 20, 0.1/0.9 from 40 on (regional floor 0.1)."""
    import jax.numpy as jnp
    import numpy as np

    from jaxseg import losses
    from jaxseg.data.sources import synthetic

    loss_fn = losses.build_loss(_config("boundary_tversky", "linear").loss)
    images, masks = synthetic.generate(2, 32, "infection", seed=0)
    batch = {"image": jnp.asarray(images), "mask": jnp.asarray(masks)}
    logits = jnp.zeros_like(batch["mask"])
    for epoch, boundary_weight in ((0, 0.5), (19, 0.5), (20, 0.7), (39, 0.7), (40, 0.9), (99, 0.9)):
        _, aux = loss_fn(logits, batch, jnp.int32(epoch))
        np.testing.assert_allclose(float(aux["alpha"]), boundary_weight, atol=1e-6)


def test_unknown_arm_lists_the_arms():
    with pytest.raises(ValueError, match="available: unet, attunet, resattunet"):
        _config("unet_variants", "vnet")


@pytest.mark.slow
@pytest.mark.parametrize("name,arm", [("unet_variants", "resattunet"), ("boundary_tversky", "linear"),
                                      ("boundary_bce", "constant")])
def test_smoke_variant_trains(name, arm, tmp_path):
    """configs/lovasz.py:smoke and configs/jaccard.py:smoke run in tests/test_launch.py's sweep."""
    from jaxseg.training import trials as experiments

    c = _config(name, f"{arm},smoke" if arm else "smoke")
    c.train.epochs, c.train.num_trials, c.train.progress = 1, 1, False
    record = experiments.run(c, tmp_path)
    for m in c.eval.metrics:
        assert f"val/{m}" in record and record[f"val/{m}"] == record[f"val/{m}"], m  # present, not NaN


ALL_ARMS = [("unet_variants", a) for a in ("unet", "attunet", "resattunet")] + [("lovasz", None), ("jaccard", None)] \
    + [("boundary_tversky", a) for a in ("boundary", "tversky", "constant", "linear")] \
    + [("boundary_bce", a) for a in ("boundary", "bce", "constant")]


@pytest.mark.parametrize("name,arm", ALL_ARMS)
def test_demo_variant_keeps_the_thesis_values_but_the_cpu_scaled_ones(name, arm):
    from configs import default

    thesis = _config(name, arm)
    demo = _config(name, f"{arm},demo" if arm else "demo")
    validate_config(demo)
    # what scales to a CPU, and nothing else
    assert (demo.data.name, demo.model.features, demo.model.depth) == ("synthetic", default.DEMO_FEATURES, 4)
    assert demo.train.epochs == default.DEMO_EPOCHS
    assert demo.train.num_trials == min(thesis.train.num_trials, default.DEMO_TRIALS)
    assert demo.optimizer.learning_rate == pytest.approx(thesis.optimizer.learning_rate * default.DEMO_LR_SCALE)
    # the thesis's values
    for key in ("loss", "eval"):
        t, d = thesis[key].to_dict(), demo[key].to_dict()
        if key == "loss" and t.get("schedule", {}).get("every"):
            assert d["schedule"].pop("every") == round(t["schedule"].pop("every") * default.DEMO_EPOCHS
                                                        / thesis.train.epochs)
        if key == "eval":
            t["aggregate"].pop("last"), d["aggregate"].pop("last")
        assert t == d, key
    assert demo.train.batch_size == thesis.train.batch_size
    assert (demo.optimizer.name, demo.optimizer.b1, demo.optimizer.b2) == \
        (thesis.optimizer.name, thesis.optimizer.b1, thesis.optimizer.b2)
    assert (demo.model.name, demo.model.weight_init) == (thesis.model.name, thesis.model.weight_init)
    # dropout keeps its noise at the thinner width: p'/(1−p') = p/(1−p) · 16/64
    if thesis.model.dropout:
        odds = demo.model.dropout / (1 - demo.model.dropout)
        assert odds == pytest.approx(thesis.model.dropout / (1 - thesis.model.dropout)
                                     * default.DEMO_FEATURES / thesis.model.features, rel=1e-3)
    else:
        assert demo.model.dropout == thesis.model.dropout
    assert (demo.data.augment, demo.data.flips, demo.data.rotation_limit, demo.data.random_pick) == \
        (thesis.data.augment, thesis.data.flips, thesis.data.rotation_limit, thesis.data.random_pick)
