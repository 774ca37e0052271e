"""Trainer: one step learns, bad steps are not applied, resume equals an uninterrupted run."""

import json
import os
import signal

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import losses, models
from jaxseg import training as train
from jaxseg.data.sources import synthetic
from jaxseg.training.guards import NonFiniteError
from jaxseg.training.optim import build_optimizer
from tests.helpers import comparable, tiny_config


def _tiny_setup(loss_fn=None, lr=1e-2):
    model = models.get_model(dict(name="unet", features=4, depth=2))
    tx = build_optimizer(dict(name="adam", learning_rate=lr))
    state = train.create_train_state(model, tx, jax.random.PRNGKey(0), (32, 32, 1))
    loss_fn = loss_fn or losses.build_loss(dict(name="dice", batchwise=True))
    step = jax.jit(train.make_train_step(model, tx, loss_fn))
    images, masks = synthetic.generate(4, 32, "lung", seed=0)
    return state, step, {"image": jnp.asarray(images), "mask": jnp.asarray(masks)}


def test_train_steps_lower_the_loss_on_a_fixed_batch():
    state, step, batch = _tiny_setup()
    state, first = step(state, batch, jnp.int32(0))
    for _ in range(8):
        state, out = step(state, batch, jnp.int32(0))
    assert bool(first["finite"]) and int(state.step) == 9
    assert float(out["loss"]) < float(first["loss"]) - 0.01


def test_batch_stats_are_updated_in_training():
    state, step, batch = _tiny_setup()
    new, _ = step(state, batch, jnp.int32(0))
    before = jax.tree_util.tree_leaves(state.batch_stats)
    after = jax.tree_util.tree_leaves(new.batch_stats)
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_a_nonfinite_step_is_not_applied():
    def nan_loss(logits, batch, epoch):
        return jnp.mean(logits) * jnp.nan, {}

    state, step, batch = _tiny_setup(nan_loss)
    params = jax.device_get(state.params)
    new, out = step(state, batch, jnp.int32(0))
    assert not bool(out["finite"]) and int(out["step"]) == 0
    chex.assert_trees_all_close(jax.device_get(new.params), params)
    assert int(new.step) == 1


def _records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [comparable(json.loads(line)) for line in f]


def _final_params(config, workdir):
    """The params of the newest checkpoint in ``workdir``."""
    from jaxseg.training import checkpoint as ckpt_lib
    from jaxseg.data import get_source

    src = get_source(config)
    model = models.get_model(config.model)
    tx = build_optimizer(config.optimizer)
    state = train.create_train_state(model, tx, jax.random.PRNGKey(0), src.image_shape)
    c = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"))
    restored, meta = c.restore(ckpt_lib.abstract_like(state))
    c.close()
    return jax.device_get(restored.params), meta


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("full"))
    config = tiny_config(epochs=3)
    final = train.train_and_evaluate(config, wd)
    return config, wd, final


def test_outputs_of_a_run(uninterrupted):
    config, wd, final = uninterrupted
    records = _records(wd)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["step"] for r in records] == [2, 4, 6]
    for key in ("train/loss", "val/loss", "val/dice", "val/jaccard"):
        assert all(np.isfinite(r[key]) for r in records), key
    assert json.load(open(os.path.join(wd, "config.json")))["train"]["epochs"] == 3
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(wd))
    assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == ["best", "latest"]
    assert final["epoch"] == 3


def test_resume_after_a_crash_equals_the_uninterrupted_run(uninterrupted, tmp_path, monkeypatch):
    config, wd_full, _ = uninterrupted
    wd = str(tmp_path)
    train.train_and_evaluate(tiny_config(epochs=1), wd)  # "crash" after epoch 1
    with open(os.path.join(wd, "metrics.jsonl"), "a") as f:  # a record the crash left behind
        f.write(json.dumps({"epoch": 2, "step": 4, "train/loss": 123.0}) + "\n{\"epoch\": 3, \"st")
    train.train_and_evaluate(config, wd)
    assert _records(wd) == _records(wd_full)
    p_full, _ = _final_params(config, wd_full)
    p_resumed, _ = _final_params(config, wd)
    chex.assert_trees_all_close(p_resumed, p_full, atol=0, rtol=0)


def test_sigterm_mid_epoch_saves_and_resumes_exactly(uninterrupted, tmp_path, monkeypatch):
    """SIGTERM arrives as the 1st batch of epoch 2 is loaded: checkpoint after step 3, then resume."""
    from jaxseg.data.pipeline import ArraySource

    config, wd_full, _ = uninterrupted
    original = ArraySource.train_batches
    calls = {"n": 0}

    def preempting(self, epoch, start_step=0):
        for i, batch in enumerate(original(self, epoch, start_step), start=start_step):
            if epoch == 1 and i == 0 and calls["n"] == 0:
                calls["n"] += 1
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    monkeypatch.setattr(ArraySource, "train_batches", preempting)
    out = train.train_and_evaluate(config, str(tmp_path))
    assert out["preempted"] and out["signal"] == signal.SIGTERM
    _, meta = _final_params(config, str(tmp_path))
    assert (meta["epoch"], meta["epoch_step"]) == (1, 1)
    monkeypatch.setattr(ArraySource, "train_batches", original)
    train.train_and_evaluate(config, str(tmp_path))
    assert _records(str(tmp_path)) == _records(wd_full)
    chex.assert_trees_all_close(_final_params(config, str(tmp_path))[0],
                                _final_params(config, wd_full)[0], atol=0, rtol=0)


def test_nonfinite_policy_stop_names_the_step(tmp_path, monkeypatch):
    config = tiny_config(epochs=1)
    config.optimizer.learning_rate = 1e30  # blows up after the first update
    with pytest.raises(NonFiniteError, match=r"non-finite loss or gradient at step \d+"):
        train.train_and_evaluate(config, str(tmp_path))


def test_nonfinite_policy_skip_counts_skipped_steps(tmp_path):
    config = tiny_config(epochs=1, nonfinite="skip")
    config.optimizer.learning_rate = 1e30
    record = train.train_and_evaluate(config, str(tmp_path))
    assert record["train/nonfinite_steps"] >= 1


def test_the_trainer_scores_the_loss_in_the_models_mode(tmp_path):
    """A multilabel run's loss is sigmoid per channel (not the C>1 softmax default)."""
    import jax.numpy as jnp
    import numpy as np

    from configs import default
    from jaxseg.losses import regional
    from jaxseg.training import loop

    c = default.get_config("smoke")
    c.data.task, c.model.mode, c.model.num_classes = "lung_and_infection", "multilabel", 2
    run = loop.set_up(c, tmp_path, None)
    batch = next(iter(run.source.eval_batches()))
    logits = jnp.asarray(np.random.default_rng(0).normal(size=batch["mask"].shape), jnp.float32)
    got = float(run.loss_fn(logits, {"mask": jnp.asarray(batch["mask"])}, 0)[0])
    want = float(regional.dice(logits, jnp.asarray(batch["mask"]), batchwise=True, mode="multilabel"))
    softmax = float(regional.dice(logits, jnp.asarray(batch["mask"]), batchwise=True))
    assert got == pytest.approx(want, rel=1e-6) and abs(got - softmax) > 1e-3
