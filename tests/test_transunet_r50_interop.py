"""TransUNet on the R50-ViT-B/16 hybrid against PyTorch: the paper's network written here in plain
``torch.nn`` following Beckschen/TransUNet (``networks/vit_seg_modeling_resnet_skip.py``: StdConv2d,
PreActBottleneck, ResNetV2 with its unpadded max pooling and zero-padded skip;
``networks/vit_seg_modeling.py``: Embeddings, Block, Encoder, DecoderCup, SegmentationHead), real
widths, random weights (GroupNorm/LayerNorm affines, BatchNorm statistics and the position embedding
randomised too, so they matter), its state written into the paper's ``.npz`` layout exactly as the
reference's ``load_from`` reads it, loaded with ``encoders.load_encoder_weights`` and compared in
eval mode on a 1×32×32×3 input: the encoder's skips (strides 2, 4, 8) and transformer output, and the
logits of the whole model (the decoder and head copied over by hand): max |jax − torch| ≤
1e-4 · max |torch| (measured on CPU: 4e-7, 2e-6, 7e-6, 3e-5, logits 6e-7 — twelve float32 layers;
tanh-approximated GELU would still pass there, at 1e-4, so one transformer layer is also compared
alone at 1e-5: measured 2e-7, and 4e-5 with tanh GELU). JAX runs at "highest" matmul precision so that a GPU's TF32 does not blur it.

Needs torch: ``pip install -e '.[interop]'``; skipped with that reason otherwise.
"""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch interop tests need torch: pip install -e '.[interop]'")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from jaxseg import models  # noqa: E402
from jaxseg.models import encoders  # noqa: E402

pytestmark = pytest.mark.interop
RTOL = 1e-4
HIDDEN, HEADS = 768, 12


# --- the reference: networks/vit_seg_modeling_resnet_skip.py ---------------------------------------

class StdConv2d(nn.Conv2d):
    def forward(self, x):
        v, m = torch.var_mean(self.weight, dim=[1, 2, 3], keepdim=True, unbiased=False)
        w = (self.weight - m) / torch.sqrt(v + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class PreActBottleneck(nn.Module):
    def __init__(self, cin, cout, cmid, stride=1):
        super().__init__()
        self.gn1 = nn.GroupNorm(32, cmid, eps=1e-6)
        self.conv1 = StdConv2d(cin, cmid, 1, bias=False)
        self.gn2 = nn.GroupNorm(32, cmid, eps=1e-6)
        self.conv2 = StdConv2d(cmid, cmid, 3, stride, 1, bias=False)
        self.gn3 = nn.GroupNorm(32, cout, eps=1e-6)
        self.conv3 = StdConv2d(cmid, cout, 1, bias=False)
        if stride != 1 or cin != cout:
            self.downsample = StdConv2d(cin, cout, 1, stride, bias=False)
            self.gn_proj = nn.GroupNorm(cout, cout)

    def forward(self, x):
        residual = self.gn_proj(self.downsample(x)) if hasattr(self, "downsample") else x
        y = F.relu(self.gn1(self.conv1(x)))
        y = F.relu(self.gn2(self.conv2(y)))
        return F.relu(residual + self.gn3(self.conv3(y)))


class ResNetV2(nn.Module):
    def __init__(self, units=(3, 4, 9), width=64):
        super().__init__()
        self.root = nn.Sequential(StdConv2d(3, width, 7, 2, 3, bias=False), nn.GroupNorm(32, width, eps=1e-6),
                                  nn.ReLU())
        blocks = []
        for i, n in enumerate(units):
            cin, cout = (width if i == 0 else width * 4 * 2 ** (i - 1)), width * 4 * 2**i
            blocks.append(nn.Sequential(*[PreActBottleneck(cin if j == 0 else cout, cout, cout // 4,
                                                           (1 if i == 0 else 2) if j == 0 else 1)
                                          for j in range(n)]))
        self.body = nn.Sequential(*blocks)

    def forward(self, x):
        b, _, in_size, _ = x.shape
        x = self.root(x)
        features = [x]
        x = nn.MaxPool2d(kernel_size=3, stride=2, padding=0)(x)
        for i in range(len(self.body) - 1):
            x = self.body[i](x)
            right = in_size // 4 // (i + 1)
            if x.shape[2] != right:
                feat = torch.zeros((b, x.shape[1], right, right))
                feat[:, :, :x.shape[2], :x.shape[3]] = x
            else:
                feat = x
            features.append(feat)
        return self.body[-1](x), features[::-1]


# --- networks/vit_seg_modeling.py -------------------------------------------------------------------

class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.query, self.key, self.value, self.out = (nn.Linear(HIDDEN, HIDDEN) for _ in range(4))

    def forward(self, x):
        def heads(t):
            return t.view(*t.shape[:-1], HEADS, HIDDEN // HEADS).permute(0, 2, 1, 3)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS), dim=-1)
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(*x.shape)
        return self.out(ctx)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention_norm, self.ffn_norm = nn.LayerNorm(HIDDEN, eps=1e-6), nn.LayerNorm(HIDDEN, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(HIDDEN, 3072), nn.Linear(3072, HIDDEN)
        self.attn = Attention()

    def forward(self, x):
        x = x + self.attn(self.attention_norm(x))
        return x + self.fc2(F.gelu(self.fc1(self.ffn_norm(x))))


class Transformer(nn.Module):
    """Embeddings (hybrid) + Encoder; returns (encoded tokens, [s8, s4, s2])."""

    def __init__(self, img_size=32, layers=12):
        super().__init__()
        self.hybrid_model = ResNetV2()
        self.patch_embeddings = nn.Conv2d(1024, HIDDEN, 1, 1)
        self.position_embeddings = nn.Parameter(torch.zeros(1, (img_size // 16) ** 2, HIDDEN))
        self.layer = nn.ModuleList(Block() for _ in range(layers))
        self.encoder_norm = nn.LayerNorm(HIDDEN, eps=1e-6)

    def forward(self, x):
        x, features = self.hybrid_model(x)
        x = self.patch_embeddings(x).flatten(2).transpose(-1, -2) + self.position_embeddings
        for blk in self.layer:
            x = blk(x)
        return self.encoder_norm(x), features


def conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class DecoderCup(nn.Module):
    def __init__(self, channels=(256, 128, 64, 16), skips=(512, 256, 64, 0)):
        super().__init__()
        self.conv_more = conv_bn_relu(HIDDEN, 512)
        ins = (512, *channels[:-1])
        self.blocks = nn.ModuleList(nn.ModuleList([conv_bn_relu(i + s, o), conv_bn_relu(o, o)])
                                    for i, o, s in zip(ins, channels, skips))

    def forward(self, tokens, features):
        b, n, d = tokens.shape
        h = int(math.sqrt(n))
        x = self.conv_more(tokens.permute(0, 2, 1).reshape(b, d, h, h))
        for i, (c1, c2) in enumerate(self.blocks):
            x = nn.UpsamplingBilinear2d(scale_factor=2)(x)
            if i < 3:
                x = torch.cat([x, features[i]], dim=1)
            x = c2(c1(x))
        return x


class VisionTransformer(nn.Module):
    def __init__(self, num_classes=2, img_size=32):
        super().__init__()
        self.transformer = Transformer(img_size)
        self.decoder = DecoderCup()
        self.segmentation_head = nn.Conv2d(16, num_classes, 3, padding=1)

    def forward(self, x):
        tokens, features = self.transformer(x)
        return self.segmentation_head(self.decoder(tokens, features)), tokens, features


def reference(seed=0):
    torch.manual_seed(seed)
    net = VisionTransformer()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
        net.transformer.position_embeddings.normal_(0, 0.5)
    return net.eval()


# --- its state in the paper's npz layout (the inverse of the reference's load_from) -----------------

def to_npz(t):
    """The reference Transformer's weights under Google's R50+ViT-B_16.npz keys and layouts."""
    hwio = lambda w: w.detach().numpy().transpose(2, 3, 1, 0)  # noqa: E731
    vec = lambda w: w.detach().numpy()  # noqa: E731
    r = t.hybrid_model
    out = {"conv_root/kernel": hwio(r.root[0].weight), "gn_root/scale": vec(r.root[1].weight),
           "gn_root/bias": vec(r.root[1].bias)}
    for b, block in enumerate(r.body, 1):
        for u, unit in enumerate(block, 1):
            p = f"block{b}/unit{u}/"
            mods = [("conv1", unit.conv1, "gn1", unit.gn1), ("conv2", unit.conv2, "gn2", unit.gn2),
                    ("conv3", unit.conv3, "gn3", unit.gn3)]
            if hasattr(unit, "downsample"):
                mods.append(("conv_proj", unit.downsample, "gn_proj", unit.gn_proj))
            for cn, conv, gn, norm in mods:
                out.update({f"{p}{cn}/kernel": hwio(conv.weight), f"{p}{gn}/scale": vec(norm.weight),
                            f"{p}{gn}/bias": vec(norm.bias)})
    out.update({"embedding/kernel": hwio(t.patch_embeddings.weight), "embedding/bias": vec(t.patch_embeddings.bias),
                "Transformer/posembed_input/pos_embedding": vec(t.position_embeddings),
                "Transformer/encoder_norm/scale": vec(t.encoder_norm.weight),
                "Transformer/encoder_norm/bias": vec(t.encoder_norm.bias)})
    for i, blk in enumerate(t.layer):
        out.update({f"Transformer/encoderblock_{i}/{k}": v for k, v in block_npz(blk).items()})
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def block_npz(blk):
    """One reference Block's weights under the npz keys of an encoderblock (relative to it)."""
    vec = lambda w: w.detach().numpy()  # noqa: E731
    hd, mha, out = (HEADS, HIDDEN // HEADS), "MultiHeadDotProductAttention_1/", {}
    for n in ("query", "key", "value"):
        lin = getattr(blk.attn, n)
        out[f"{mha}{n}/kernel"] = vec(lin.weight).T.reshape(HIDDEN, *hd)
        out[f"{mha}{n}/bias"] = vec(lin.bias).reshape(hd)
    out[mha + "out/kernel"] = vec(blk.attn.out.weight).T.reshape(*hd, HIDDEN)
    out[mha + "out/bias"] = vec(blk.attn.out.bias)
    for ln, norm in (("LayerNorm_0", blk.attention_norm), ("LayerNorm_2", blk.ffn_norm)):
        out[f"{ln}/scale"], out[f"{ln}/bias"] = vec(norm.weight), vec(norm.bias)
    for dn, lin in (("Dense_0", blk.fc1), ("Dense_1", blk.fc2)):
        out[f"MlpBlock_3/{dn}/kernel"], out[f"MlpBlock_3/{dn}/bias"] = vec(lin.weight).T, vec(lin.bias)
    return out


def decoder_variables(net):
    """The reference's DecoderCup and head as the flax model's 'decoder'/'head' variables."""
    def cbr(seq):
        conv, bn = seq[0], seq[1]
        p = {"Conv_0": {"kernel": jnp.asarray(conv.weight.detach().numpy().transpose(2, 3, 1, 0))},
             "BatchNorm_0": {"scale": jnp.asarray(bn.weight.detach().numpy()), "bias": jnp.asarray(bn.bias.detach().numpy())}}
        return p, {"BatchNorm_0": {"mean": jnp.asarray(bn.running_mean.numpy()), "var": jnp.asarray(bn.running_var.numpy())}}

    params, stats = {}, {}
    params["conv_more"], stats["conv_more"] = cbr(net.decoder.conv_more)
    for k, (c1, c2) in enumerate(net.decoder.blocks, 1):
        params[f"block{k}_conv1"], stats[f"block{k}_conv1"] = cbr(c1)
        params[f"block{k}_conv2"], stats[f"block{k}_conv2"] = cbr(c2)
    head = net.segmentation_head
    params_head = {"kernel": jnp.asarray(head.weight.detach().numpy().transpose(2, 3, 1, 0)),
                   "bias": jnp.asarray(head.bias.detach().numpy())}
    return params, stats, params_head


def assert_close(got, want, what):
    got = np.asarray(got)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = np.abs(got - want).max()
    assert err <= RTOL * np.abs(want).max(), f"{what}: max error {err:.3g}, max |torch| {np.abs(want).max():.3g}"


def test_encoder_and_logits_equal_the_transunet_reference(tmp_path):
    net = reference()
    t = net.transformer
    # the reference encoder's size: PARAMS_224 of test_transunet_r50.py less the 14×14 − 2×2 positions
    assert sum(p.numel() for p in t.parameters()) == 97_888_576 - (196 - 4) * HIDDEN
    np.savez(tmp_path / "R50+ViT-B_16.npz", **to_npz(t))
    x = np.random.RandomState(1).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    with torch.no_grad():
        logits, tokens, features = net(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    model = models.get_model(dict(name="transunet", encoder="r50_vit_b16", num_classes=2))
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)), False))
    loaded = encoders.load_encoder_weights(shapes, "r50_vit_b16", tmp_path / "R50+ViT-B_16.npz")
    dec_params, dec_stats, head = decoder_variables(net)
    variables = {"params": {"encoder": loaded["params"]["encoder"], "decoder": dec_params, "head": head},
                 "batch_stats": {"decoder": dec_stats}}
    with jax.default_matmul_precision("highest"):
        got, inter = model.apply(variables, jnp.asarray(x), False,
                                 capture_intermediates=lambda mdl, _: mdl.name == "encoder")
    feats = inter["intermediates"]["encoder"]["__call__"][0]
    want = [f.permute(0, 2, 3, 1).numpy() for f in features[::-1]] + [tokens.numpy().reshape(1, 2, 2, HIDDEN)]
    for f, w, what in zip(feats, want, ("stride-2 root", "stride-4 block1 (zero-padded)", "stride-8 block2",
                                        "transformer output")):
        assert_close(f, w, what)
    assert_close(got, logits.permute(0, 2, 3, 1).numpy(), "logits")


def test_one_transformer_layer_equals_the_reference_block_tightly():
    """Exact (erf) GELU, the attention's head split and scaling, pre-LN order: one layer at 1e-5."""
    from flax import traverse_util

    from jaxseg.models.encoders import r50_vit

    torch.manual_seed(2)
    blk = Block().eval()
    with torch.no_grad():
        for norm in (blk.attention_norm, blk.ffn_norm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0, 0.1)
    z = np.random.RandomState(3).standard_normal((2, 5, HIDDEN)).astype(np.float32)
    with torch.no_grad():
        want = blk(torch.from_numpy(z)).numpy()
    params = traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v) for k, v in block_npz(blk).items()})
    with jax.default_matmul_precision("highest"):
        got = r50_vit.EncoderBlock().apply({"params": params}, jnp.asarray(z), False)
    err = np.abs(np.asarray(got) - want).max()
    assert err <= 1e-5 * np.abs(want).max(), f"max error {err:.3g}, max |torch| {np.abs(want).max():.3g}"
