"""Train state and the pure train/eval steps (jit them): what one step of training or evaluation does.

* ``TrainState``: step, params, batch_stats, opt_state and the run's dropout key;
  ``create_train_state`` initialises one (or T stacked ones: vectorised trials).
* ``make_train_step``: loss, gradients and the optimizer update; a step whose loss
  or gradients are not finite keeps the previous state (``finite`` is False).
* ``make_eval_step``: per-image loss sums and the streaming metric statistics.

Randomness: dropout at global step s uses ``fold_in(state.rng, s)``; trial t's
key is ``fold_in(PRNGKey(seed), t)`` (``trial_key``).
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxseg import metrics
from jaxseg.losses.regional import probabilities


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array  # dropout key of this run; step ``s`` uses fold_in(rng, s)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
                       image_shape: tuple[int, ...]) -> TrainState:
    """Initialises a run from ``rng`` on a one-image batch of ``image_shape`` (H, W, C).

    ``rng`` splits into the parameter-init key and the dropout key; a stack of keys
    (shape (T, 2)) gives T stacked states (vectorised trials). Compiled as one XLA
    program at backend optimisation level 0: initialisation runs once, and the
    unrolled threefry hashes of every parameter tensor otherwise cost ~10 s of LLVM
    optimisation on a CPU (level 0: under 2 s; same values).
    """

    def init(key):
        init_key, dropout_key = jax.random.split(key)
        variables = model.init({"params": init_key}, jnp.zeros((1,) + tuple(image_shape), jnp.float32),
                               train=False)
        params = variables["params"]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                          rng=dropout_key)

    fn = jax.vmap(init) if jnp.ndim(rng) == 2 else init
    compiled = jax.jit(fn).lower(rng).compile(compiler_options={"xla_backend_optimization_level": 0})
    return compiled(rng)


def with_pretrained_encoder(state: TrainState, encoder_name: str, path: str, trials: int | None) -> TrainState:
    """``state`` with its ``encoder`` parameters and BatchNorm statistics read from a torchvision/timm
    state dict (``config.model.encoder_weights``; ``models.encoders.load_encoder_weights``: the file and
    its mismatched keys are named on error). Vectorised trials all start from the same weights.
    The optimizer state depends only on the parameters' shapes, so it stays as initialised."""
    from jaxseg.errors import ConfigError
    from jaxseg.models import encoders

    def one(params, batch_stats):
        variables = {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}
        try:
            loaded = encoders.load_encoder_weights(variables, encoder_name, path)
        except ValueError as e:  # the model's encoder is not the file's (a DataError names a bad file)
            raise ConfigError(f"config.model.encoder_weights={path}: {e}") from None
        return loaded["params"], loaded.get("batch_stats", batch_stats)

    if trials is None:
        params, batch_stats = one(state.params, state.batch_stats)
    else:  # stacked: load into trial 0's slice, then broadcast the encoder to every trial
        first = jax.tree_util.tree_map(lambda x: x[0], (state.params, state.batch_stats))
        params0, stats0 = one(*first)
        params, batch_stats = jax.tree_util.tree_map(
            lambda new, old: jnp.broadcast_to(new, old.shape).astype(old.dtype), (params0, stats0),
            (state.params, state.batch_stats))
    return state.replace(params=params, batch_stats=batch_stats)


def trial_key(seed: int, trial: int) -> jax.Array:
    """The key of trial ``trial``: trials differ in initialisation and dropout, not in data order."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), trial)


def model_variables(state: TrainState) -> dict:
    v = {"params": state.params}
    if state.batch_stats:
        v["batch_stats"] = state.batch_stats
    return v


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, loss_fn: Callable,
                    augment: Callable | None = None) -> Callable:
    """``step(state, batch, epoch) -> (state, {'loss', 'finite', 'step', **aux})``, pure (jit it).

    A step whose loss or gradients are not finite leaves params, batch_stats and the
    optimizer state unchanged (``finite`` is False); the step counter still advances.
    ``augment(batch, step) -> batch`` (``jaxseg.data.augment.device``) runs first, on device.
    """

    def step(state: TrainState, batch: dict, epoch: jax.Array):
        rng = jax.random.fold_in(state.rng, state.step)
        if augment is not None:
            batch = augment(batch, state.step)

        def objective(params):
            logits, updates = model.apply(
                model_variables(state.replace(params=params)), batch["image"], train=True,
                mutable=["batch_stats"], rngs={"dropout": rng})
            loss, aux = loss_fn(logits, batch, epoch)
            return loss, (updates, aux)

        (loss, (updates, aux)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        finite = jnp.isfinite(loss) & _all_finite(grads)
        opt_updates, opt_state = tx.update(grads, state.opt_state, state.params)
        candidate = (optax.apply_updates(state.params, opt_updates),
                     updates.get("batch_stats", state.batch_stats), opt_state)
        kept = jax.tree_util.tree_map(lambda new, old: jnp.where(finite, new, old), candidate,
                                      (state.params, state.batch_stats, state.opt_state))
        new_state = state.replace(step=state.step + 1, params=kept[0], batch_stats=kept[1],
                                  opt_state=kept[2])
        return new_state, {"loss": loss, "finite": finite, "step": state.step, **aux}

    return step


def make_eval_step(model: nn.Module, loss_fn: Callable, collection: metrics.MetricCollection,
                   mode: str | None = None) -> Callable:
    """``eval_step(state, batch, acc, epoch) -> acc``: per-image loss sums + metric statistics.

    Probabilities by ``mode`` (``losses.regional.probabilities``); the collection predicts masks from
    them by the same rule as ``jaxseg.predict`` (``metrics.predict_masks``). A batch's ``pixel_weight``
    (the ignore label) reaches the loss through the batch and the metrics through ``update``.
    """

    def per_image_loss(logits, batch, epoch):
        one = jax.tree_util.tree_map(lambda x: x[None], batch)
        return loss_fn(logits[None], one, epoch)[0]

    def eval_step(state: TrainState, batch: dict, acc: dict, epoch: jax.Array):
        logits = model.apply(model_variables(state), batch["image"], train=False)
        valid = batch["valid"]
        image_batch = {k: v for k, v in batch.items() if k != "valid"}
        losses_ = jax.vmap(per_image_loss, in_axes=(0, 0, None))(logits, image_batch, epoch)
        w = valid.astype(jnp.float32)
        return {
            "loss_sum": acc["loss_sum"] + jnp.sum(jnp.where(valid, losses_, 0.0)),
            "count": acc["count"] + jnp.sum(w),
            "metrics": collection.update(acc["metrics"], probabilities(logits, mode=mode), batch["mask"], valid,
                                         batch.get("pixel_weight")),
        }

    return eval_step
