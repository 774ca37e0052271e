"""Data parallelism: a step sharded over 2 (fake CPU) devices equals the 1-device step,
on-device augmentation included."""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jaxseg import losses, models
    from jaxseg import training as train
    from jaxseg.training import parallel
    from jaxseg.data.sources import synthetic
    from jaxseg.data.augment.affine import AugmentConfig
    from jaxseg.data.augment.device import make_device_augment
    from jaxseg.training.optim import build_optimizer

    assert jax.device_count() == 2, jax.devices()
    model = models.get_model(dict(name="unet", features=4, depth=2))
    # plain SGD: the update is linear in the gradient, so the comparison is well-conditioned
    # (Adam's first steps are ~lr·sign(g) and amplify rounding in near-zero gradients)
    tx = build_optimizer(dict(name="sgd", learning_rate=0.1, momentum=0.0))
    loss_fn = losses.build_loss(dict(name="dice", batchwise=True))
    images, masks = synthetic.generate(4, 32, "lung", seed=0)
    batch = {"image": images, "mask": masks}
    augment = make_device_augment(AugmentConfig(augment=True, augment_on="device", crop_size=24, random_pick=True,
                                                rotation_limit=90.0, flips="horizontal", brightness=0.1), seed=0)
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
        mesh = parallel.make_mesh(devices)
        state = parallel.put_replicated(
            train.create_train_state(model, tx, jax.random.PRNGKey(0), (32, 32, 1)), mesh)
        step = jax.jit(train.make_train_step(model, tx, loss_fn, augment))
        b = parallel.put_batch(batch, parallel.batch_sharding(mesh))
        assert len(b["image"].sharding.device_set) == len(devices)
        for _ in range(2):
            state, out = step(state, b, jnp.int32(0))
        results.append(jax.device_get((state.params, state.batch_stats, out["loss"])))
    for a, b in zip(jax.tree_util.tree_leaves(results[0]), jax.tree_util.tree_leaves(results[1])):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    print("OK", float(results[0][2]), float(results[1][2]))
""")


@pytest.mark.slow
def test_two_device_step_equals_one_device_step():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("OK")


def test_batch_must_divide_over_devices():
    import jax

    from jaxseg.training import parallel

    mesh = parallel.make_mesh(jax.devices()[:1])
    parallel.check_batch_divisible(3, mesh)  # one device divides anything
    fake = type("M", (), {"devices": __import__("numpy").empty(4)})()
    with pytest.raises(ValueError, match="not divisible by the 4 devices"):
        parallel.check_batch_divisible(6, fake)
