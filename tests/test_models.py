"""Model zoo: registry, shapes, errors, parameter counts, init statistics, attention,
dropout, determinism, and that every model learns on the synthetic task.

Kept tiny for the shared CPU: shapes and counts use ``jax.eval_shape`` (traces, compiles
nothing); numerical tests use features=4 and inputs of 32×32 or smaller, and jit-ed
init/apply with "rbg" keys (XLA CPU compiles threefry bit generation for every
parameter shape slowly; the key implementation does not change what is tested).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseg import models
from jaxseg.data.sources.synthetic import generate
from jaxseg.losses.regional import bce, dice
from jaxseg.models.blocks import ConvNormAct

NAMES = ["attunet", "convnext_unet", "fcn", "r2unet", "resattunet", "resunet", "transunet", "unet",
         "unetpp"]
KEY = jax.random.PRNGKey(0)


FAST = {"xla_backend_optimization_level": 0}  # tests: compile time ≫ run time


def rng(seed=0):
    return jax.random.key(seed, impl="rbg")


def fast_jit(fn):
    return jax.jit(fn, compiler_options=FAST)


@functools.lru_cache(maxsize=None)
def _initializer(name, options):
    model = build(name, **dict(options))
    return fast_jit(lambda k, x: model.init(k, x, train=False))


def variables(name, seed=0, shape=(1, 32, 32, 1), **options):
    """Initial variables of ``build(name, **options)``; the compiled init is shared by all tests."""
    return _initializer(name, tuple(sorted(options.items())))(rng(seed), jnp.zeros(shape))


def init(model, x, seed=0):
    return fast_jit(lambda k, x: model.init(k, x, train=False))(rng(seed), x)


def apply_eval(model, variables, x, **kw):
    return fast_jit(lambda v, x: model.apply(v, x, train=False, **kw))(variables, x)


def apply_train(model, variables, x, seed=0):
    """Training-mode logits (BatchNorm on batch statistics, dropout keyed by ``seed``)."""
    fn = fast_jit(lambda v, x, k: model.apply(v, x, train=True, rngs={"dropout": k}, mutable=["batch_stats"])[0])
    return fn(variables, x, rng(seed))


def build(name, **kw):
    cfg = {"name": name, "features": 4, "depth": 2}
    if name == "transunet":
        cfg.update(num_heads=2, num_layers=1)
    cfg.update(kw)
    return models.get_model(cfg)


def abstract_init(model, shape):
    """(output ShapeDtypeStruct, variables ShapeDtypeStructs) without compiling anything."""
    return jax.eval_shape(lambda: model.init_with_output(KEY, jnp.zeros(shape), train=False))


def count(tree):
    return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(tree))


# --- registry -----------------------------------------------------------------------------

def test_registry_lists_every_model():
    assert models.available() == NAMES


def test_unknown_name_lists_known_models():
    with pytest.raises(ValueError, match="unknown model 'vnet'.*attunet.*unetpp"):
        models.get_model({"name": "vnet"})


def test_unknown_option_is_rejected():
    with pytest.raises(ValueError, match="no option.*'widht'"):
        models.get_model({"name": "unet", "widht": 3})


@pytest.mark.parametrize("name", NAMES)
def test_every_model_accepts_the_default_config_options(name):
    # configs/default.py sets these for config.model; switching the name must keep working.
    common = dict(num_classes=1, features=8, depth=4, batch_norm=True, dropout=0.0, upsample="nearest",
                  weight_init="he_normal", fan_mode="fan_in")
    model = models.get_model({"name": name, **common})
    assert model.depth == 4 and model.features == 8


# --- shapes and errors --------------------------------------------------------------------

@pytest.mark.parametrize("depth", [2, 3, 4, 5])
@pytest.mark.parametrize("name", NAMES)
def test_output_shape_non_square_multichannel(name, depth):
    model = build(name, depth=depth, num_classes=3)
    out, _ = abstract_init(model, (2, 16, 48, 3))
    assert out.shape == (2, 16, 48, 3)
    assert out.dtype == jnp.float32


@pytest.mark.parametrize("name", NAMES)
def test_indivisible_input_raises_clear_error(name):
    model = build(name, depth=3)
    with pytest.raises(ValueError, match=r"30x32 must be divisible by 2\^\(depth-1\) = 4"):
        abstract_init(model, (1, 30, 32, 1))


@pytest.mark.parametrize("name", NAMES)
def test_in_channels_option_checks_the_input(name):
    out, _ = abstract_init(build(name, in_channels=3), (1, 8, 8, 3))
    assert out.shape == (1, 8, 8, 1)
    with pytest.raises(ValueError, match="input has 1 channels, in_channels is 3"):
        abstract_init(build(name, in_channels=3), (1, 8, 8, 1))


@pytest.mark.parametrize("name", ["unet", "convnext_unet", "transunet"])
def test_bfloat16_compute_returns_float32_logits(name):
    model = models.get_model({"name": name, "features": 4, "depth": 2,
                              **({"num_heads": 2} if name == "transunet" else {})}, dtype="bfloat16")
    out, variables = abstract_init(model, (1, 16, 16, 1))
    assert out.dtype == jnp.float32
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(variables["params"]))


def test_channel_list_features():
    model = build("unet", features=[4, 6, 10], depth=3)
    _, variables = abstract_init(model, (1, 16, 16, 1))
    assert variables["params"]["encoder"]["enc3"]["ConvNormAct_1"]["Conv_0"]["kernel"].shape == (3, 3, 10, 10)
    with pytest.raises(ValueError, match="lists 2 channel counts but depth is 3"):
        abstract_init(build("unet", features=[4, 6], depth=3), (1, 16, 16, 1))


# --- parameter counts ---------------------------------------------------------------------

def unet_params_by_hand(c0, chans, classes, batch_norm=True):
    """Thesis §4.3.1 U-Net, every C = 3×3 conv (+ BN: scale and shift, no conv bias; without BN:
    conv bias), upconvolution U_{2c,c} = nearest upsampling + C_{2c,c}, head = 1×1 conv + bias."""
    def conv(k, a, b):
        return k * k * a * b + (2 * b if batch_norm else b)
    total = 0
    prev = c0
    for c in chans:                                   # encoder: B_{prev,c} = C_{prev,c}, C_{c,c}
        total += conv(3, prev, c) + conv(3, c, c)
        prev = c
    for c in chans[:-1]:                              # decoder: U_{2c,c}, then B_{2c,c}
        total += conv(3, 2 * c, c) + conv(3, 2 * c, c) + conv(3, c, c)
    return total + chans[0] * classes + classes       # head C_{c_1,classes}, 1×1


def test_thesis_unet_parameter_count_matches_hand_arithmetic():
    # c = 64, 128, 256, 512, 1024; one input channel; one class.
    # Encoder, per level 9·a·b + 9·b·b + 4b:
    #   9·1·64 + 9·64·64 + 256           =     37,696
    #   9·64·128 + 9·128·128 + 512       =    221,696
    #   9·128·256 + 9·256·256 + 1,024    =    885,760
    #   9·256·512 + 9·512·512 + 2,048    =  3,540,992
    #   9·512·1024 + 9·1024·1024 + 4,096 = 14,159,872      → 18,846,016
    # Decoder, per level c (up 18c² + 2c, block 27c² + 4c) = 45c² + 6c:
    #   c = 512: 11,799,552; 256: 2,950,656; 128: 738,048; 64: 184,704  → 15,672,960
    # Head: 64 + 1 = 65.   Total 18,846,016 + 15,672,960 + 65 = 34,519,041.
    assert unet_params_by_hand(1, (64, 128, 256, 512, 1024), 1) == 34_519_041
    model = models.get_model({"name": "unet", "features": 64, "depth": 5, "num_classes": 1})
    _, variables = abstract_init(model, (1, 32, 32, 1))
    assert count(variables["params"]) == 34_519_041
    # BatchNorm running statistics are state, not parameters: mean and variance per BN channel.
    bn_channels = 2 * sum((64, 128, 256, 512, 1024)) + 3 * sum((64, 128, 256, 512))
    assert count(variables["batch_stats"]) == 2 * bn_channels


def test_unet_without_batchnorm_count_and_transpose_upsampling():
    chans = (4, 8, 16)
    _, v = abstract_init(build("unet", depth=3, batch_norm=False), (1, 16, 16, 1))
    assert count(v["params"]) == unet_params_by_hand(1, chans, 1, batch_norm=False)
    assert "batch_stats" not in v
    # transposed 2×2 conv instead of U: 4·2c·c + c (bias) replaces 9·2c·c + 2c
    _, vt = abstract_init(build("unet", depth=3, upsample="transpose"), (1, 16, 16, 1))
    delta = sum((9 * 2 * c * c + 2 * c) - (4 * 2 * c * c + c) for c in chans[:-1])
    assert count(vt["params"]) == unet_params_by_hand(1, chans, 1) - delta


def test_fcn_structure_follows_thesis_formula():
    # d−1 transposed convs T_{classes,classes} and score convs on levels d (f_down) and 2..d−1.
    _, v = abstract_init(build("fcn", depth=4, num_classes=2), (1, 16, 16, 1))
    p = v["params"]
    assert sorted(k for k in p if k.startswith("up")) == ["up1", "up2", "up3"]
    assert sorted(k for k in p if k.startswith("score")) == ["score", "score2", "score3"]
    assert p["up1"]["ConvTranspose_0"]["kernel"].shape == (4, 4, 2, 2)
    assert p["score"]["Conv_0"]["kernel"].shape == (1, 1, 32, 2)


def test_r2unet_recurrent_conv_shares_weights_over_steps():
    _, v2 = abstract_init(build("r2unet", recurrence=2), (1, 8, 8, 1))
    _, v4 = abstract_init(build("r2unet", recurrence=4), (1, 8, 8, 1))
    assert count(v2["params"]) == count(v4["params"])


def test_convnext_block_structure():
    _, v = abstract_init(build("convnext_unet", depth=2), (1, 8, 8, 1))
    blk = v["params"]["encoder"]["enc2"]["ConvNeXtBlock_0"]
    assert blk["dwconv"]["kernel"].shape == (7, 7, 1, 8)        # depthwise 7×7
    assert blk["pwconv1"]["kernel"].shape == (8, 32)            # inverted bottleneck ×4
    assert blk["pwconv2"]["kernel"].shape == (32, 8)
    assert blk["layer_scale"].shape == (8,)
    assert "batch_stats" not in v                               # LayerNorm only by default


# --- initialisation -----------------------------------------------------------------------

@pytest.mark.parametrize("scheme,fan_mode,expected_std", [
    ("he_normal", "fan_in", math.sqrt(2 / (9 * 32))),
    ("he_normal", "fan_out", math.sqrt(2 / (9 * 64))),
    ("torch_default", "fan_in", 1 / math.sqrt(3 * 9 * 32)),  # U(±1/√fan_in)
])
def test_conv_init_statistics(scheme, fan_mode, expected_std):
    layer = ConvNormAct(64, weight_init=scheme, fan_mode=fan_mode)
    v = init(layer, jnp.zeros((1, 4, 4, 32)))
    k = np.asarray(v["params"]["Conv_0"]["kernel"])
    assert k.shape == (3, 3, 32, 64)
    assert abs(k.mean()) < 0.05 * expected_std
    assert k.std() == pytest.approx(expected_std, rel=0.03)
    if scheme == "torch_default":
        assert np.abs(k).max() <= 1 / math.sqrt(9 * 32)


def test_model_passes_init_scheme_to_its_convolutions():
    model = build("resattunet", features=16, weight_init="he_normal", fan_mode="fan_out")
    v = init(model, jnp.zeros((1, 8, 8, 1)))
    k = np.asarray(v["params"]["decoder"]["dec1"]["ConvNormAct_1"]["Conv_0"]["kernel"])  # 16 → 16
    assert k.std() == pytest.approx(math.sqrt(2 / (9 * 16)), rel=0.05)


# --- attention, dropout, determinism ------------------------------------------------------

@pytest.mark.parametrize("name", ["attunet", "resattunet"])
def test_attention_coefficients_in_unit_interval(name):
    model = build(name, depth=3)
    x = jax.random.uniform(KEY, (2, 16, 24, 1))
    v = init(model, x)
    _, state = apply_eval(model, v, x, mutable=["intermediates"])
    inter = state["intermediates"]["decoder"]
    alphas = {k: g["attention"][0] for k, g in inter.items()}
    assert sorted(alphas) == ["gate1", "gate2"]
    assert alphas["gate1"].shape == (2, 16, 24, 1) and alphas["gate2"].shape == (2, 8, 12, 1)
    for a in alphas.values():
        a = np.asarray(a)
        assert a.min() >= 0.0 and a.max() <= 1.0
        assert a.std() > 0  # data-dependent, not a constant


@pytest.mark.parametrize("name", NAMES)
def test_dropout_active_only_in_training(name):
    x = jax.random.uniform(KEY, (2, 32, 32, 1))
    model, plain = build(name, dropout=0.5), build(name, dropout=0.0)
    v = variables(name)  # dropout has no parameters: the same variables serve both models

    @fast_jit
    def outputs(v, x, k1, k2):
        def train(k):
            return model.apply(v, x, train=True, rngs={"dropout": k}, mutable=["batch_stats"])[0]
        return (model.apply(v, x, train=False), plain.apply(v, x, train=False),
                train(k1), train(k2), train(k1))

    evaluated, evaluated_plain, a, b, a_again = outputs(v, x, rng(1), rng(2))
    # Evaluation: no dropout at all — the same as the dropout-free model with these weights.
    np.testing.assert_allclose(evaluated, evaluated_plain, rtol=1e-6)
    # Training: a different mask per dropout key, the same mask for the same key.
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, a_again)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_parameters(name):
    p0, p0b, p1 = (variables(name, seed)["params"] for seed in (0, 0, 1))
    jax.tree_util.tree_map(np.testing.assert_array_equal, p0, p0b)
    leaves0, leaves1 = jax.tree_util.tree_leaves(p0), jax.tree_util.tree_leaves(p1)
    assert any(not np.array_equal(a, b) for a, b in zip(leaves0, leaves1))


def test_transunet_runs_at_a_size_other_than_init():
    model = build("transunet", depth=3)
    v = init(model, jnp.zeros((1, 16, 16, 1)))
    assert v["params"]["transformer"]["position"].shape == (4, 4, 16)
    assert apply_eval(model, v, jnp.ones((1, 8, 24, 1))).shape == (1, 8, 24, 1)


# --- UNet++ deep supervision --------------------------------------------------------------

def test_unetpp_deep_supervision_outputs():
    model = build("unetpp", depth=3, deep_supervision=True, num_classes=2)
    x = jax.random.uniform(KEY, (2, 8, 8, 1))
    v = init(model, x)
    heads = apply_train(model, v, x)
    assert heads.shape == (2, 2, 8, 8, 2)                   # (d−1 heads, N, H, W, C)
    out, state = apply_eval(model, v, x, mutable=["intermediates"])
    sown = state["intermediates"]["heads"][0]
    assert out.shape == (2, 8, 8, 2)
    np.testing.assert_allclose(out, sown[-1], rtol=1e-6)
    mean_model = build("unetpp", depth=3, deep_supervision=True, num_classes=2, ds_eval="mean")
    np.testing.assert_allclose(apply_eval(mean_model, v, x), sown.mean(0), rtol=1e-5, atol=1e-6)
    single, _ = abstract_init(build("unetpp", depth=3), (2, 8, 8, 1))
    assert single.shape == (2, 8, 8, 1)


def test_deep_supervision_loss_averages_heads():
    labels = (jax.random.uniform(KEY, (2, 8, 8, 1)) > 0.5).astype(jnp.float32)
    heads = jax.random.normal(jax.random.PRNGKey(3), (3, 2, 8, 8, 1))
    per_head = [float(dice(heads[k], labels)) for k in range(3)]
    ds_dice = models.deep_supervision_loss(dice)
    assert float(ds_dice(heads, labels)) == pytest.approx(np.mean(per_head), rel=1e-6)
    assert float(ds_dice(heads[0], labels)) == pytest.approx(per_head[0], rel=1e-6)  # pass-through
    weighted = models.deep_supervision_loss(dice, weights=[0.0, 0.0, 1.0])
    assert float(weighted(heads, labels, batchwise=False)) == pytest.approx(per_head[2], rel=1e-6)
    # the trainer's form: loss_fn(logits, batch, epoch) -> (loss, aux)
    trainer_loss = models.deep_supervision_loss(lambda lg, b, e: (dice(lg, b["mask"]), {"d": dice(lg, b["mask"])}))
    loss, aux = trainer_loss(heads, {"mask": labels}, 0)
    assert float(loss) == pytest.approx(np.mean(per_head), rel=1e-6)
    assert float(aux["d"]) == pytest.approx(np.mean(per_head), rel=1e-6)
    with pytest.raises(ValueError, match="2 weights for 3 heads"):
        models.deep_supervision_loss(dice, weights=[1, 1])(heads, labels)


# --- learning -----------------------------------------------------------------------------

def _train_losses(model, init_variables, images, masks, steps, loss):
    params, batch_stats = init_variables["params"], init_variables.get("batch_stats", {})
    tx = optax.adam(1e-2)
    opt_state = tx.init(params)

    @fast_jit
    def step(params, batch_stats, opt_state, key):
        def objective(p):
            v = {"params": p, **({"batch_stats": batch_stats} if batch_stats else {})}
            logits, upd = model.apply(v, images, train=True, mutable=["batch_stats"], rngs={"dropout": key})
            return loss(logits, masks), upd

        (value, upd), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), upd.get("batch_stats", batch_stats), opt_state, value

    values = []
    for i in range(steps):
        params, batch_stats, opt_state, value = step(params, batch_stats, opt_state, rng(i))
        values.append(float(value))
    return values


@pytest.mark.parametrize("name", NAMES)
def test_every_model_lowers_its_loss_on_synthetic_phantoms(name):
    images, masks = generate(4, 32, "lung", seed=0)
    kw = {"deep_supervision": True} if name == "unetpp" else {}
    model = build(name, **kw)
    loss = models.deep_supervision_loss(lambda lg, y: bce(lg, y) + dice(lg, y))
    values = _train_losses(model, variables(name, **kw), jnp.asarray(images), jnp.asarray(masks), steps=10,
                           loss=loss)
    assert all(np.isfinite(values))
    assert values[-1] < 0.9 * values[0], values
