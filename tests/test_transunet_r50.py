"""TransUNet on its R50-ViT-B/16 hybrid encoder (``config.model.encoder='r50_vit_b16'``), without torch.

The paper's checkpoint layout (Google's ``R50+ViT-B_16.npz``, the keys TransUNet's ``load_from``
reads) is written out here from the reference code, independently of the loader; shapes and
parameter counts use ``jax.eval_shape`` (nothing compiles); one forward pass runs at 32×32.
Agreement with a PyTorch reference network is ``test_transunet_r50_interop.py``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxseg import models
from jaxseg.errors import DataError
from jaxseg.models import encoders
from jaxseg.models.encoders import r50_vit

KEY = jax.random.PRNGKey(0)
HYBRID = dict(name="transunet", encoder="r50_vit_b16", num_classes=2)
HEAD = ("cls", "head/kernel", "head/bias", "pre_logits/kernel", "pre_logits/bias")
# The reference at 224×224 (a 14×14 token grid): R50 root + blocks 11,894,848 (computed from the key
# shapes below), embedding 787,200, position 196·768 = 150,528, 12 ViT-B layers 85,054,464, final LN
# 1,536; test_transunet_r50_interop.py counts the same on the PyTorch reference.
PARAMS_224 = 97_888_576


# --- the paper's npz layout, written from Beckschen/TransUNet's load_from -------------------------

def paper_keys(in_channels=3, grid=14, extras=True):
    """{key: shape} of R50+ViT-B_16.npz (a 1 + grid² position embedding: class token first)."""
    keys = {"conv_root/kernel": (7, 7, in_channels, 64), "gn_root/scale": (64,), "gn_root/bias": (64,)}
    cin = 64
    for b, (units, cout) in enumerate(zip((3, 4, 9), (256, 512, 1024)), 1):
        cmid = cout // 4
        for u in range(1, units + 1):
            p = f"block{b}/unit{u}/"
            keys.update({p + "conv1/kernel": (1, 1, cin, cmid), p + "conv2/kernel": (3, 3, cmid, cmid),
                         p + "conv3/kernel": (1, 1, cmid, cout)})
            for g, c in (("gn1", cmid), ("gn2", cmid), ("gn3", cout)) + ((("gn_proj", cout),) if u == 1 else ()):
                keys.update({f"{p}{g}/scale": (c,), f"{p}{g}/bias": (c,)})
            if u == 1:
                keys[p + "conv_proj/kernel"] = (1, 1, cin, cout)
            cin = cout
    keys.update({"embedding/kernel": (1, 1, 1024, 768), "embedding/bias": (768,),
                 "Transformer/posembed_input/pos_embedding": (1, 1 + grid * grid, 768),
                 "Transformer/encoder_norm/scale": (768,), "Transformer/encoder_norm/bias": (768,)})
    for i in range(12):
        p = f"Transformer/encoderblock_{i}/"
        for ln in ("LayerNorm_0", "LayerNorm_2"):
            keys.update({f"{p}{ln}/scale": (768,), f"{p}{ln}/bias": (768,)})
        for n in ("query", "key", "value"):
            keys.update({f"{p}MultiHeadDotProductAttention_1/{n}/kernel": (768, 12, 64),
                         f"{p}MultiHeadDotProductAttention_1/{n}/bias": (12, 64)})
        keys.update({f"{p}MultiHeadDotProductAttention_1/out/kernel": (12, 64, 768),
                     f"{p}MultiHeadDotProductAttention_1/out/bias": (768,),
                     f"{p}MlpBlock_3/Dense_0/kernel": (768, 3072), f"{p}MlpBlock_3/Dense_0/bias": (3072,),
                     f"{p}MlpBlock_3/Dense_1/kernel": (3072, 768), f"{p}MlpBlock_3/Dense_1/bias": (768,)})
    if extras:  # the ImageNet-21k classifier, which a segmentation model does not use
        keys.update({"cls": (1, 1, 768), "pre_logits/kernel": (768, 768), "pre_logits/bias": (768,),
                     "head/kernel": (768, 21843), "head/bias": (21843,)})
    return keys


def paper_state(keys, seed=0, random=("conv_root/kernel", "Transformer/posembed_input/pos_embedding",
                                       "Transformer/encoderblock_3/MultiHeadDotProductAttention_1/out/kernel")):
    """A distinct constant per key (cheap at ViT-B size) and random values where layout matters."""
    rs = np.random.RandomState(seed)
    return {k: (rs.standard_normal(s).astype(np.float32) if k in random
                else np.full(s, 1e-3 * (i + 1), np.float32)) for i, (k, s) in enumerate(sorted(keys.items()))}


def lazy_state(keys):
    return {k: np.broadcast_to(np.float32(0), s) for k, s in keys.items()}


def model_shapes(size, in_channels=3, **kw):
    model = models.get_model({**HYBRID, **kw})
    x = jnp.zeros((1, size, size, in_channels))
    return model, jax.eval_shape(lambda: model.init_with_output(KEY, x, False))


def encoder_shapes(size, in_channels=3):
    _, (_, v) = model_shapes(size, in_channels)
    return {("params", *k): tuple(s.shape) for k, s in traverse_util.flatten_dict(v["params"]["encoder"]).items()}


# --- structure ----------------------------------------------------------------------------------

def test_parameter_count_equals_the_papers_checkpoint():
    keys = paper_keys()
    in_file = sum(math.prod(s) for k, s in keys.items() if k not in HEAD) - 768  # minus the class token's position
    assert in_file == PARAMS_224
    assert sum(math.prod(s) for s in encoder_shapes(224).values()) == PARAMS_224
    # every leaf is one of the file's keys, under the same name
    assert {"/".join(k[1:]) for k in encoder_shapes(32)} == set(keys) - set(HEAD)


@pytest.mark.parametrize("size", [32, 64])
def test_output_and_feature_shapes(size):
    model, (logits, v) = model_shapes(size)
    assert logits.shape == (1, size, size, 2) and logits.dtype == jnp.float32
    assert set(v["params"]) == {"encoder", "decoder", "head"} and set(v["batch_stats"]) == {"decoder"}
    feats = jax.eval_shape(lambda p, x: r50_vit.R50ViT().apply({"params": p}, x, False), v["params"]["encoder"],
                           jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32))
    widths, strides = r50_vit.channels(), (2, 4, 8, 16)
    assert [f.shape for f in feats] == [(2, size // s, size // s, c) for s, c in zip(strides, widths)]
    assert v["params"]["encoder"]["Transformer"]["posembed_input"]["pos_embedding"].shape == (size // 16, size // 16, 768)
    assert v["params"]["head"]["kernel"].shape == (3, 3, 16, 2)  # the reference's 3×3 SegmentationHead
    cup = v["params"]["decoder"]
    assert cup["conv_more"]["Conv_0"]["kernel"].shape == (3, 3, 768, 512)
    assert [cup[f"block{k}_conv1"]["Conv_0"]["kernel"].shape[2:] for k in range(1, 5)] == \
           [(512 + 512, 256), (256 + 256, 128), (128 + 64, 64), (64, 16)]


def test_input_must_be_divisible_by_16():
    model = models.get_model(HYBRID)
    with pytest.raises(ValueError, match=r"40x40, which must be divisible by 16"):
        jax.eval_shape(lambda: model.init(KEY, jnp.zeros((1, 40, 40, 3)), False))


def test_encoder_option_is_checked_and_kept_apart_from_the_unet_family():
    assert "r50_vit_b16" in encoders.names() and "encoder" in models.options("transunet")
    with pytest.raises(ValueError, match="unknown encoder 'resnet34'; it takes r50_vit_b16"):
        jax.eval_shape(lambda: models.get_model({**HYBRID, "encoder": "resnet34"}).init(
            KEY, jnp.zeros((1, 32, 32, 3)), False))
    unet = models.get_model(dict(name="unet", encoder="r50_vit_b16"))
    with pytest.raises(ValueError, match="TransUNet's R50-ViT-B/16 hybrid: use it with config.model.name='transunet'"):
        jax.eval_shape(lambda: unet.init(KEY, jnp.zeros((1, 32, 32, 3)), False))


# --- weights ------------------------------------------------------------------------------------

def test_npz_round_trip_into_the_model(tmp_path):
    keys = paper_keys()
    state = paper_state(keys)
    state["gn_root/scale"] = state["gn_root/scale"].reshape(1, 1, 1, 64)  # as some BiT-era files store it
    path = tmp_path / "R50+ViT-B_16.npz"
    np.savez(path, **state)
    model, (_, shapes) = model_shapes(32)
    loaded = encoders.load_encoder_weights(shapes, "r50_vit_b16", path)
    enc = loaded["params"]["encoder"]
    np.testing.assert_array_equal(enc["conv_root"]["kernel"], state["conv_root/kernel"])
    np.testing.assert_array_equal(enc["gn_root"]["scale"], state["gn_root/scale"].ravel())
    np.testing.assert_array_equal(enc["block3"]["unit9"]["conv2"]["kernel"], state["block3/unit9/conv2/kernel"])
    blk = enc["Transformer"]["encoderblock_3"]
    np.testing.assert_array_equal(blk["MultiHeadDotProductAttention_1"]["out"]["kernel"],
                                  state["Transformer/encoderblock_3/MultiHeadDotProductAttention_1/out/kernel"])
    np.testing.assert_array_equal(blk["MlpBlock_3"]["Dense_1"]["bias"],
                                  state["Transformer/encoderblock_3/MlpBlock_3/Dense_1/bias"])
    # the reference's loader: class token dropped, 14×14 grid zoomed (scipy, order 1) to the model's 2×2
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    grid = state["Transformer/posembed_input/pos_embedding"][0, 1:].reshape(14, 14, 768)
    want = scipy_ndimage.zoom(grid, (2 / 14, 2 / 14, 1), order=1)
    np.testing.assert_allclose(enc["Transformer"]["posembed_input"]["pos_embedding"], want, rtol=1e-5, atol=1e-6)
    # the decoder and head keep their (here abstract) initial values; the model runs on the loaded weights
    variables = {**loaded, "params": {**loaded["params"], "decoder": _numpy_like(shapes["params"]["decoder"]),
                                      "head": _numpy_like(shapes["params"]["head"])},
                 "batch_stats": _numpy_like(shapes["batch_stats"], fill=1.0)}
    x = np.random.RandomState(1).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)
    logits = model.apply(variables, x, train=False)
    assert logits.shape == (1, 32, 32, 2) and bool(jnp.isfinite(logits).all())


def test_training_checkpoint_prefix_and_grayscale(tmp_path):
    keys = paper_keys(extras=False)
    state = lazy_state(keys)
    state["conv_root/kernel"] = np.random.RandomState(0).standard_normal((7, 7, 3, 64)).astype(np.float32)
    shapes = encoder_shapes(32, in_channels=1)
    flat = r50_vit.convert_npz(state, shapes, "mem")
    np.testing.assert_allclose(flat[("params", "conv_root", "kernel")],
                               state["conv_root/kernel"].sum(axis=2, keepdims=True), rtol=1e-6)
    path = tmp_path / "ckpt.npz"
    small = {"opt/target/conv_root/kernel": state["conv_root/kernel"], "opt/target/embedding/bias": np.ones(768)}
    np.savez(path, **small)
    assert set(r50_vit.read_npz(str(path))) == {"conv_root/kernel", "embedding/bias"}


def test_mismatch_lists_missing_unexpected_and_misshaped_keys(tmp_path):
    state = lazy_state(paper_keys())
    del state["block2/unit3/gn2/bias"]
    state["block4/unit1/conv1/kernel"] = np.zeros((1, 1, 1, 1), np.float32)
    state["Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel"] = np.zeros((768, 1024), np.float32)
    state["Transformer/posembed_input/pos_embedding"] = np.zeros((1, 150, 768), np.float32)  # not a square grid
    with pytest.raises(DataError) as err:
        r50_vit.convert_npz(state, encoder_shapes(32), "mem")
    msg = str(err.value)
    assert msg.startswith("mem: the weights file does not fit the encoder")
    assert "1 missing key(s): block2/unit3/gn2/bias (128,)" in msg
    assert "1 unexpected key(s): block4/unit1/conv1/kernel" in msg
    assert "2 mis-shaped key(s): " in msg
    assert "Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel: file (768, 1024), expected (768, 3072)" in msg
    assert "Transformer/posembed_input/pos_embedding: file (1, 150, 768), expected (1, 197, 768)" in msg
    assert "head/" not in msg and "cls" not in msg  # the classifier is ignored, not unexpected
    # the trainer's hook: a model without the hybrid encoder, a file that is not there
    plain = jax.eval_shape(lambda: models.get_model(dict(name="transunet")).init(KEY, jnp.zeros((1, 32, 32, 3))))
    with pytest.raises(ValueError, match="the model's encoder is not a r50_vit_b16: it has no conv_root/kernel"):
        encoders.load_encoder_weights(plain, "r50_vit_b16", tmp_path / "absent.npz")
    _, (_, hybrid) = model_shapes(32)
    with pytest.raises(DataError, match="absent.npz: no such weights file"):
        encoders.load_encoder_weights(hybrid, "r50_vit_b16", tmp_path / "absent.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz: not a readable .npz"):
        encoders.load_encoder_weights(hybrid, "r50_vit_b16", tmp_path / "bad.npz")


def test_timm_state_dict_is_translated_to_the_papers_layout():
    keys = paper_keys()
    npz = paper_state(keys, random=tuple(k for k in keys if "encoderblock_5/MultiHead" in k or "block2/unit1" in k))
    timm = to_timm(npz)
    assert "patch_embed.backbone.stages.2.blocks.8.norm3.bias" in timm and "blocks.11.attn.qkv.weight" in timm
    back = r50_vit.timm_to_npz(timm, "mem")
    assert set(back) == set(npz) - set(HEAD)  # the class token and classifier are dropped
    for k in back:
        np.testing.assert_array_equal(back[k], npz[k], err_msg=k)
    timm["blocks.0.attn.q_norm.weight"] = np.zeros(64, np.float32)
    timm["blocks.1.attn.qkv.weight"] = np.zeros((9, 3), np.float32)
    with pytest.raises(DataError) as err:
        r50_vit.timm_to_npz(timm, "mem")
    assert "1 unexpected key(s): blocks.0.attn.q_norm.weight" in str(err.value)
    assert "1 mis-shaped key(s): blocks.1.attn.qkv.weight: file (9, 3)" in str(err.value)


def to_timm(npz):
    """The npz layout as timm's vit_base_r50_s16_224 state dict (timm's _load_weights, inverted)."""
    out, hw = {}, lambda a: a.transpose(3, 2, 0, 1)
    bb = "patch_embed.backbone."
    out[bb + "stem.conv.weight"] = hw(npz["conv_root/kernel"])
    out[bb + "stem.norm.weight"], out[bb + "stem.norm.bias"] = npz["gn_root/scale"], npz["gn_root/bias"]
    for k, v in npz.items():
        parts = k.split("/")
        if parts[0].startswith("block") and parts[0] != "block":
            b, u, mod, leaf = int(parts[0][5:]) - 1, int(parts[1][4:]) - 1, parts[2], parts[3]
            name = {"conv_proj": "downsample.conv", "gn_proj": "downsample.norm"}.get(mod, mod.replace("gn", "norm"))
            tail = "weight" if leaf in ("kernel", "scale") else "bias"
            out[f"{bb}stages.{b}.blocks.{u}.{name}.{tail}"] = hw(v) if leaf == "kernel" else v
    out["patch_embed.proj.weight"], out["patch_embed.proj.bias"] = hw(npz["embedding/kernel"]), npz["embedding/bias"]
    out["pos_embed"], out["cls_token"] = npz["Transformer/posembed_input/pos_embedding"], npz["cls"]
    out["norm.weight"], out["norm.bias"] = npz["Transformer/encoder_norm/scale"], npz["Transformer/encoder_norm/bias"]
    for i in range(12):
        p, t = f"Transformer/encoderblock_{i}/", f"blocks.{i}."
        mha = p + "MultiHeadDotProductAttention_1/"
        out[t + "attn.qkv.weight"] = np.concatenate([npz[f"{mha}{n}/kernel"].reshape(768, 768).T
                                                     for n in ("query", "key", "value")])
        out[t + "attn.qkv.bias"] = np.concatenate([npz[f"{mha}{n}/bias"].reshape(-1) for n in ("query", "key", "value")])
        out[t + "attn.proj.weight"] = npz[mha + "out/kernel"].reshape(768, 768).T
        out[t + "attn.proj.bias"] = npz[mha + "out/bias"]
        for a, b in (("norm1", "LayerNorm_0"), ("norm2", "LayerNorm_2")):
            out[f"{t}{a}.weight"], out[f"{t}{a}.bias"] = npz[f"{p}{b}/scale"], npz[f"{p}{b}/bias"]
        for a, b in (("fc1", "Dense_0"), ("fc2", "Dense_1")):
            out[f"{t}mlp.{a}.weight"] = npz[f"{p}MlpBlock_3/{b}/kernel"].T
            out[f"{t}mlp.{a}.bias"] = npz[f"{p}MlpBlock_3/{b}/bias"]
    out["head.weight"], out["head.bias"] = npz["head/kernel"].T, npz["head/bias"]
    return out


def test_resize_linear_is_align_corners_and_scipys_zoom():
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    a = np.random.RandomState(0).standard_normal((1, 5, 3, 2)).astype(np.float32)
    got = r50_vit.resize_linear(a, (10, 6))
    np.testing.assert_allclose(got, scipy_ndimage.zoom(a, (1, 2, 2, 1), order=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[:, [0, -1]][:, :, [0, -1]], a[:, [0, -1]][:, :, [0, -1]])  # corners kept
    np.testing.assert_allclose(np.asarray(r50_vit.resize_linear(jnp.asarray(a), (10, 6))), got, rtol=1e-6)


def _numpy_like(tree, fill=None, seed=0):
    rs = np.random.RandomState(seed)
    return jax.tree_util.tree_map(
        lambda s: jnp.asarray(np.full(s.shape, fill, np.float32) if fill is not None
                              else rs.normal(0, 0.05, s.shape).astype(np.float32)), tree)
