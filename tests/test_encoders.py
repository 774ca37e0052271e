"""Pretrained-weight encoders (``jaxseg.models.encoders``) and the U-Nets on them, without torch.

Key names and shapes are checked against torchvision's state-dict layout written out here
independently of the loader; shapes and parameter counts use ``jax.eval_shape`` (nothing
compiles); the one real forward pass runs resnet18 at 64×64. Agreement of the features with
PyTorch itself is ``test_encoders_interop.py``.
"""

import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxseg import models
from jaxseg.errors import DataError
from jaxseg.models import encoders
from jaxseg.models.encoders import convnext, torch_weights

save_file = pytest.importorskip("safetensors.numpy", reason="needs safetensors (pip install safetensors)").save_file
KEY = jax.random.PRNGKey(0)
NAMES = ["convnext_tiny", "resnet18", "resnet34", "resnet50"]
# torchvision's parameter counts without the classifier: resnet18 11,689,512 − fc 513,000;
# resnet34 21,797,672 − 513,000; resnet50 25,557,032 − fc 2,049,000; convnext_tiny 28,589,128 −
# classifier 770,536 (its LayerNorm 1,536 + Linear 769,000). test_encoders_interop.py counts the
# same on the PyTorch reference networks.
PARAMS = {"resnet18": 11_176_512, "resnet34": 21_284_672, "resnet50": 23_508_032, "convnext_tiny": 27_818_592}
WIDTHS = {"resnet18": (64, 64, 128, 256, 512), "resnet34": (64, 64, 128, 256, 512),
          "resnet50": (64, 256, 512, 1024, 2048), "convnext_tiny": (None, 96, 192, 384, 768)}
LAYERS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
          "resnet50": ("bottleneck", (3, 4, 6, 3))}
TINY = ((3, 3, 9, 3), (96, 192, 384, 768))


# --- torchvision's state-dict layout, written from torchvision.models.{resnet,convnext} ----------

def _bn(keys, name, c):
    keys.update({f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
                 f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()})


def tv_resnet_keys(block, layers, in_channels=3):
    keys = {"conv1.weight": (64, in_channels, 7, 7)}
    _bn(keys, "bn1", 64)
    inplanes = 64
    for i, n in enumerate(layers):
        planes = 64 * 2**i
        for j in range(n):
            p, stride = f"layer{i + 1}.{j}", (2 if i > 0 and j == 0 else 1)
            if block == "basic":
                convs, out = [(planes, inplanes, 3), (planes, planes, 3)], planes
            else:
                convs, out = [(planes, inplanes, 1), (planes, planes, 3), (4 * planes, planes, 1)], 4 * planes
            for k, (o, ci, ks) in enumerate(convs, 1):
                keys[f"{p}.conv{k}.weight"] = (o, ci, ks, ks)
                _bn(keys, f"{p}.bn{k}", o)
            if stride != 1 or inplanes != out:
                keys[f"{p}.downsample.0.weight"] = (out, inplanes, 1, 1)
                _bn(keys, f"{p}.downsample.1", out)
            inplanes = out
    keys.update({"fc.weight": (1000, inplanes), "fc.bias": (1000,)})
    return keys


def tv_convnext_keys(depths, dims):
    keys = {"features.0.0.weight": (dims[0], 3, 4, 4), "features.0.0.bias": (dims[0],),
            "features.0.1.weight": (dims[0],), "features.0.1.bias": (dims[0],)}
    for i, (depth, d) in enumerate(zip(depths, dims)):
        if i > 0:
            keys.update({f"features.{2 * i}.0.weight": (dims[i - 1],), f"features.{2 * i}.0.bias": (dims[i - 1],),
                         f"features.{2 * i}.1.weight": (d, dims[i - 1], 2, 2), f"features.{2 * i}.1.bias": (d,)})
        for j in range(depth):
            p = f"features.{2 * i + 1}.{j}"
            keys.update({f"{p}.block.0.weight": (d, 1, 7, 7), f"{p}.block.0.bias": (d,),
                         f"{p}.block.2.weight": (d,), f"{p}.block.2.bias": (d,),
                         f"{p}.block.3.weight": (4 * d, d), f"{p}.block.3.bias": (4 * d,),
                         f"{p}.block.5.weight": (d, 4 * d), f"{p}.block.5.bias": (d,), f"{p}.layer_scale": (d, 1, 1)})
    keys.update({"classifier.0.weight": (dims[-1],), "classifier.0.bias": (dims[-1],),
                 "classifier.2.weight": (1000, dims[-1]), "classifier.2.bias": (1000,)})
    return keys


def tv_to_timm(key):
    """torchvision ConvNeXt key → timm's."""
    parts = key.split(".")
    if parts[0] == "classifier":
        return "head." + ".".join(parts[1:])
    f, rest = int(parts[1]), parts[2:]
    if f == 0:
        return "stem." + ".".join(rest)
    if f % 2 == 0:
        return f"stages.{f // 2}.downsample." + ".".join(rest)
    j, sub = rest[0], ".".join(rest[1:])
    sub = {"block.0": "conv_dw", "block.2": "norm", "block.3": "mlp.fc1", "block.5": "mlp.fc2"}.get(
        sub.rsplit(".", 1)[0], sub)
    leaf = "" if rest[-1] == "layer_scale" else "." + rest[-1]
    return f"stages.{(f - 1) // 2}.blocks.{j}.{'gamma' if rest[-1] == 'layer_scale' else sub}{leaf}"


def tv_keys(name):
    return tv_convnext_keys(*TINY) if name == "convnext_tiny" else tv_resnet_keys(*LAYERS[name])


def random_state(keys, seed=0):
    rs = np.random.RandomState(seed)
    return {k: (np.asarray(7, np.int64) if k.endswith("num_batches_tracked")
                else rs.standard_normal(s).astype(np.float32)) for k, s in keys.items()}


def lazy_state(keys):
    """Zero-cost arrays of the right shapes (read-only broadcast views)."""
    return {k: np.broadcast_to(np.float32(0), s) for k, s in keys.items()}


def _convert(name, state, in_channels=3):
    fam = encoders.family(name)
    key_of = (torch_weights.resnet_key if fam == "resnet"
              else lambda p: torch_weights.convnext_key(p, torch_weights.convnext_format(state)))
    return torch_weights.convert(state, encoders.variable_shapes(name, in_channels), key_of,
                                 ("params", *encoders.FIRST_CONV[fam]), "mem")


def numpy_init(model, x, seed=0):
    """Random variables of ``model`` made with NumPy (flax's init draws every shape with its own
    compiled sampler: tens of seconds for a ResNet on a shared CPU); BatchNorm statistics (0, 1)."""
    rs = np.random.RandomState(seed)
    shapes = jax.eval_shape(lambda: model.init(KEY, x, train=False))
    flat = traverse_util.flatten_dict(shapes)
    return traverse_util.unflatten_dict({
        k: jnp.asarray(np.full(s.shape, float(k[-1] == "var"), np.float32) if k[0] == "batch_stats"
                       else rs.normal(0, 0.05, s.shape).astype(np.float32)) for k, s in flat.items()})


def count(tree):
    return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(tree))


# --- encoders ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_feature_strides_and_widths(name):
    module = encoders.build(name)
    feats, _ = jax.eval_shape(lambda: module.init_with_output(KEY, jnp.zeros((2, 64, 64, 3)), False))
    assert encoders.channels(name) == WIDTHS[name]
    for i, (f, c) in enumerate(zip(feats, WIDTHS[name])):
        if c is None:
            assert f is None
        else:
            assert f.shape == (2, 64 // 2 ** (i + 1), 64 // 2 ** (i + 1), c), (i, f.shape)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_equal_torchvision(name):
    shapes = encoders.variable_shapes(name)
    assert sum(math.prod(s) for k, s in shapes.items() if k[0] == "params") == PARAMS[name]
    tv = {k: s for k, s in tv_keys(name).items() if not torch_weights.IGNORED.search(k)
          and not k.endswith(("running_mean", "running_var"))}
    assert sum(math.prod(s) for s in tv.values()) == PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_every_torchvision_key_maps_to_one_flax_leaf(name):
    flat = _convert(name, lazy_state(tv_keys(name)))  # raises on any missing/unexpected/mis-shaped key
    assert set(flat) == set(encoders.variable_shapes(name))


def test_timm_convnext_keys_are_read_too():
    state = lazy_state({tv_to_timm(k): (s[:1] if k.endswith("layer_scale") else s)
                        for k, s in tv_convnext_keys(*TINY).items()})
    assert "stages.2.blocks.8.mlp.fc2.weight" in state and "stem.1.bias" in state
    assert torch_weights.convnext_format(state) == "timm"
    assert set(_convert("convnext_tiny", state)) == set(encoders.variable_shapes("convnext_tiny"))


def test_resnet_safetensors_round_trip(tmp_path):
    state = random_state(tv_resnet_keys("basic", (2, 2, 2, 2)))
    path = tmp_path / "resnet18.safetensors"
    save_file(state, str(path))
    v = encoders.load_torch_weights("resnet18", path)
    assert set(v) == {"params", "batch_stats"}
    p, s = v["params"], v["batch_stats"]
    np.testing.assert_array_equal(p["conv1"]["kernel"], state["conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(p["bn1"]["scale"], state["bn1.weight"])
    np.testing.assert_array_equal(p["layer3"]["block0"]["downsample_conv"]["kernel"],
                                  state["layer3.0.downsample.0.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(s["layer4"]["block1"]["bn2"]["var"], state["layer4.1.bn2.running_var"])
    np.testing.assert_array_equal(s["layer2"]["block0"]["downsample_bn"]["mean"],
                                  state["layer2.0.downsample.1.running_mean"])
    assert count(p) == PARAMS["resnet18"]


def test_convnext_layouts_depthwise_linear_layer_scale():
    depths, dims = (1, 1, 2, 1), (8, 16, 24, 32)
    state = random_state(tv_convnext_keys(depths, dims))
    module = convnext.ConvNeXt(depths, dims)
    tree = jax.eval_shape(lambda: module.init(KEY, jnp.zeros((1, 32, 32, 3))))
    shapes = {k: v.shape for k, v in traverse_util.flatten_dict(tree).items()}
    timm = {tv_to_timm(k): (v.ravel() if k.endswith("layer_scale") else v) for k, v in state.items()}
    for fmt, st in (("torchvision", state), ("timm", timm)):
        flat = torch_weights.convert(st, shapes, lambda p: torch_weights.convnext_key(p, fmt),
                                     ("params", "stem_conv", "kernel"), "mem")
        blk = ("params", "stage2", "block1")
        np.testing.assert_array_equal(flat[(*blk, "dwconv", "kernel")],
                                      state["features.5.1.block.0.weight"].transpose(2, 3, 1, 0))
        assert flat[(*blk, "dwconv", "kernel")].shape == (7, 7, 1, 24)
        np.testing.assert_array_equal(flat[(*blk, "pwconv1", "kernel")], state["features.5.1.block.3.weight"].T)
        np.testing.assert_array_equal(flat[(*blk, "layer_scale")], state["features.5.1.layer_scale"].ravel())
        np.testing.assert_array_equal(flat[("params", "downsample3", "norm", "scale")], state["features.6.0.weight"])
        np.testing.assert_array_equal(flat[("params", "stem_norm", "bias")], state["features.0.1.bias"])


def test_mismatch_lists_missing_unexpected_and_misshaped_keys():
    state = lazy_state(tv_resnet_keys("basic", (2, 2, 2, 2)))
    del state["layer2.1.bn1.running_var"]
    state["layer5.0.conv1.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    state["layer1.0.conv2.weight"] = np.zeros((64, 64, 5, 5), np.float32)
    with pytest.raises(DataError) as err:
        _convert("resnet18", state)
    msg = str(err.value)
    assert msg.startswith("mem: ")
    assert "1 missing key(s): layer2.1.bn1.running_var (128,)" in msg
    assert "1 unexpected key(s): layer5.0.conv1.weight" in msg
    assert "1 mis-shaped key(s): layer1.0.conv2.weight: file (64, 64, 5, 5), expected (64, 64, 3, 3)" in msg
    assert "fc." not in msg and "num_batches_tracked" not in msg  # ignored, not unexpected


@pytest.mark.parametrize("in_channels", [1, 2, 3, 4])
def test_first_convolution_for_other_input_channels(in_channels):
    state = random_state({"conv1.weight": (64, 3, 7, 7)})
    rgb = state["conv1.weight"]
    full = lazy_state(tv_resnet_keys("basic", (2, 2, 2, 2)))
    full["conv1.weight"] = rgb
    kernel = _convert("resnet18", full, in_channels)[("params", "conv1", "kernel")]
    assert kernel.shape == (7, 7, in_channels, 64)
    if in_channels == 1:  # smp: the RGB kernels summed
        want = rgb.sum(axis=1, keepdims=True)
    else:  # smp: repeated cyclically, scaled by 3 / in_channels
        want = np.stack([rgb[:, i % 3] for i in range(in_channels)], axis=1) * 3 / in_channels
    np.testing.assert_allclose(kernel, want.transpose(2, 3, 1, 0), rtol=1e-6)


def test_file_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="no such weights file"):
        encoders.load_torch_weights("resnet18", tmp_path / "absent.safetensors")
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(DataError, match="unknown weights format '.npz'"):
        encoders.load_torch_weights("resnet18", tmp_path / "w.npz")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="bad.safetensors: not a readable safetensors file"):
        encoders.load_torch_weights("resnet18", tmp_path / "bad.safetensors")
    (tmp_path / "w.pth").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(DataError, match=r"needs torch .*\.safetensors"):
        encoders.load_torch_weights("resnet18", tmp_path / "w.pth")
    with pytest.raises(ValueError, match="unknown encoder 'resnet19'; available: convnext_tiny, resnet18"):
        encoders.build("resnet19")


# --- the U-Nets on an encoder -------------------------------------------------------------------

def _model(name="unet", encoder="resnet18", **kw):
    return models.get_model({"name": name, "encoder": encoder, "num_classes": 2, **kw})


@pytest.mark.parametrize("name", ["unet", "attunet", "resunet", "resattunet", "r2unet"])
@pytest.mark.parametrize("encoder", ["resnet50", "convnext_tiny"])
def test_encoder_unet_shapes(name, encoder):
    out, v = jax.eval_shape(lambda: _model(name, encoder).init_with_output(KEY, jnp.zeros((2, 64, 96, 1)),
                                                                           train=False))
    assert out.shape == (2, 64, 96, 2) and out.dtype == jnp.float32
    assert sorted(v["params"]) == ["decoder", "encoder", "head"]
    assert count(v["params"]["encoder"]) == PARAMS[encoder] - (
        2 * 64 * 7 * 7 if encoder == "resnet50" else 2 * 96 * 4 * 4)  # one input channel, not three
    gates = sorted(k for k in v["params"]["decoder"] if k.startswith("gate"))
    if "att" in name:  # a gate on every skip; ConvNeXt has no stride-2 skip
        assert gates == (["gate3", "gate4", "gate5"] if encoder == "convnext_tiny" else
                         ["gate2", "gate3", "gate4", "gate5"])
    else:
        assert not gates


def test_unet_resnet34_has_smps_size():
    # smp.Unet('resnet34', classes=1) has 24,436,369 parameters with its 3×3 head (16·9 + 1 = 145);
    # this head is a 1×1 convolution (16 + 1)
    v = jax.eval_shape(lambda: models.get_model({"name": "unet", "encoder": "resnet34"}).init(
        KEY, jnp.zeros((1, 64, 64, 3))))
    assert count(v["params"]) == 24_436_369 - 145 + 17


def test_input_must_be_divisible_by_32():
    with pytest.raises(ValueError, match=r"input shape \(1, 48, 64, 3\) has H x W = 48x64, which must be "
                                         r"divisible by 32"):
        _model().init(KEY, jnp.zeros((1, 48, 64, 3)))


def test_options_are_checked():
    with pytest.raises(ValueError, match="model 'unetpp' takes no pretrained encoder .* models that do: "
                                         "attunet, r2unet, resattunet, resunet, transunet, unet"):
        models.get_model({"name": "unetpp", "encoder": "resnet18"})
    with pytest.raises(ValueError, match="decoder_features lists 3 widths"):
        jax.eval_shape(lambda: _model(decoder_features=[8, 8, 8]).init(KEY, jnp.zeros((1, 32, 32, 1))))
    m = _model(decoder_features=[32, 16, 16, 8, 8])  # a config list becomes a (hashable) tuple
    assert m.decoder_features == (32, 16, 16, 8, 8)
    with pytest.raises(ValueError, match="unknown encoder"):
        jax.eval_shape(lambda: _model(encoder="vgg16").init(KEY, jnp.zeros((1, 32, 32, 1))))


def test_plain_unet_is_unchanged():
    m = models.get_model({"name": "unet", "features": 4, "depth": 2})
    v = jax.eval_shape(lambda: m.init(KEY, jnp.zeros((1, 32, 32, 1))))
    assert sorted(v["params"]) == ["decoder", "encoder", "head"]
    assert sorted(v["params"]["encoder"]) == ["enc1", "enc2"]  # max pooling has no parameters


def test_forward_jit_and_not_and_loading_weights(tmp_path):
    model = _model("attunet", decoder_features=[32, 16, 16, 8, 8])
    x = jax.random.uniform(jax.random.PRNGKey(1), (1, 64, 64, 1))
    variables = numpy_init(model, x)
    state = random_state(tv_resnet_keys("basic", (2, 2, 2, 2)))
    save_file(state, str(tmp_path / "r18.safetensors"))
    loaded = encoders.load_encoder_weights(variables, "resnet18", tmp_path / "r18.safetensors")
    enc = loaded["params"]["encoder"]
    np.testing.assert_allclose(enc["conv1"]["kernel"][..., 0, :],
                               state["conv1.weight"].sum(axis=1).transpose(1, 2, 0), rtol=1e-6)
    np.testing.assert_array_equal(loaded["batch_stats"]["encoder"]["layer1"]["block0"]["bn1"]["mean"],
                                  state["layer1.0.bn1.running_mean"])
    assert loaded["params"]["decoder"] is variables["params"]["decoder"]
    eager = model.apply(loaded, x, train=False)
    fast = {"xla_backend_optimization_level": 0}  # tests: compile time ≫ run time
    jitted = jax.jit(lambda v, x: model.apply(v, x, train=False), compiler_options=fast)(loaded, x)
    assert eager.shape == (1, 64, 64, 2) and np.isfinite(np.asarray(eager)).all()
    np.testing.assert_allclose(eager, jitted, rtol=1e-4, atol=1e-4)
    _, upd = model.apply(loaded, x, train=True, mutable=["batch_stats"])
    assert sorted(upd["batch_stats"]) == ["decoder", "encoder"]


def test_load_encoder_weights_checks_the_model(tmp_path):
    save_file(random_state(tv_resnet_keys("basic", (2, 2, 2, 2))), str(tmp_path / "r18.safetensors"))
    r34 = jax.eval_shape(lambda: _model(encoder="resnet34").init(KEY, jnp.zeros((1, 32, 32, 3))))
    with pytest.raises(ValueError, match=r"the model's encoder does not match resnet18's weights \(80 leaves\): "
                                         r"batch_stats/layer1/block2/bn1/mean not in resnet18's weights"):
        encoders.load_encoder_weights(r34, "resnet18", tmp_path / "r18.safetensors")
    plain = jax.eval_shape(lambda: models.get_model({"name": "unet", "features": 4, "depth": 2}).init(
        KEY, jnp.zeros((1, 32, 32, 3))))
    with pytest.raises(ValueError, match="not a resnet18: it has no conv1/kernel"):
        encoders.load_encoder_weights(plain, "resnet18", tmp_path / "r18.safetensors")
