"""Building blocks shared by every model family (thesis §4.2-4.4).

Notation of thesis §4.3.1: C_{a,b} is a convolution followed by (optional)
normalisation and an activation; B_{a,b} is the convolutional block of one
level (two C's in the original U-Net); P is 2×2 pooling; U is 2× nearest
upsampling and the upconvolution is U_{a,b} = C_{a,b} ∘ U.

The block families of §4.3.3 are one module, ``ConvBlock``, whose ``kind``
selects the variant: plain (U-Net), residual (ResUNet / Residual Attention
U-Net), recurrent residual (R2U-Net) or ConvNeXt. Normalisation is a
parameter too (``norm``: 'batch' | 'layer' | 'none').
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.models.initializers import kernel_init

Dtype = Any
NORMS = ("batch", "layer", "none")
BLOCK_KINDS = ("double", "residual", "recurrent", "convnext")


def channel_list(features: int | Sequence[int], depth: int) -> tuple[int, ...]:
    """Channels c_1..c_d: an explicit list, or base width doubled at every level."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if isinstance(features, (int, np.integer)):
        return tuple(int(features) * 2**i for i in range(depth))
    feats = tuple(int(f) for f in features)
    if len(feats) != depth:
        raise ValueError(f"features lists {len(feats)} channel counts but depth is {depth}")
    return feats


def check_divisible(shape: Sequence[int], levels: int, model: str) -> None:
    """Raises a clear error when H or W cannot be halved ``levels`` times."""
    factor = 2**levels
    h, w = shape[1], shape[2]
    if h % factor or w % factor:
        raise ValueError(
            f"{model}: input size {h}x{w} must be divisible by 2^(depth-1) = {factor}; "
            f"resize or crop to a multiple of {factor}, or lower the depth")


def make_norm(norm: str, train: bool, dtype: Dtype, name: Optional[str] = None):
    """The normalisation layer named ``norm``, or None for 'none'.

    'batch': BatchNorm with PyTorch's defaults (momentum 0.1 ≙ flax 0.9, ε = 1e-5),
    statistics in the ``batch_stats`` collection; 'layer': LayerNorm over channels
    (ε = 1e-6, ConvNeXt's channels-last LayerNorm).
    """
    if norm == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                            name=name)
    if norm == "layer":
        return nn.LayerNorm(epsilon=1e-6, dtype=dtype, name=name)
    if norm == "none":
        return None
    raise ValueError(f"unknown norm {norm!r}; use one of {', '.join(NORMS)}")


def upsample_nearest(x):
    """U: replaces every pixel with a 2×2 grid of copies (thesis §4.3.1)."""
    n, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
    return x.reshape(n, 2 * h, 2 * w, c)


def max_pool(x):
    """P: 2×2 max pooling with stride 2."""
    return nn.max_pool(x, (2, 2), strides=(2, 2))


def bilinear_upsampling_init(key, shape, dtype=jnp.float32):
    """Transposed-conv kernel (k, k, C, C) that performs bilinear upsampling per channel.

    The initialisation of FCN's upsampling layers (Long et al. 2015, §3.3).
    """
    del key
    k, _, cin, cout = shape
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = np.arange(k)
    filt1d = 1 - np.abs(og - center) / factor
    filt = np.outer(filt1d, filt1d)
    kernel = np.zeros(shape, np.float32)
    for c in range(min(cin, cout)):
        kernel[:, :, c, c] = filt
    return jnp.asarray(kernel, dtype)


class ConvNormAct(nn.Module):
    """C_{a,b}: k×k convolution, optional norm, activation, optional dropout.

    The convolution has no bias when a norm follows (the norm's shift replaces it).
    ``activation=None`` leaves the output linear; ``groups`` > 1 gives a grouped
    (``groups == features``: depthwise) convolution.
    """

    features: int
    kernel_size: int = 3
    strides: int = 1
    groups: int = 1
    norm: str = "batch"
    dropout: float = 0.0
    activation: Optional[Callable] = nn.relu
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        k, s = self.kernel_size, self.strides
        x = nn.Conv(self.features, (k, k), strides=(s, s), padding="SAME",
                    feature_group_count=self.groups, use_bias=self.norm == "none",
                    kernel_init=kernel_init(self.weight_init, self.fan_mode), dtype=self.dtype)(x)
        norm = make_norm(self.norm, train, self.dtype)
        if norm is not None:
            x = norm(x)
        if self.activation is not None:
            x = self.activation(x)
        if self.dropout > 0:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return x


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block (Liu et al. 2022, "A ConvNet for the 2020s", thesis §7):

        y = x + γ ⊙ W₂ GELU(W₁ LN(DWConv₇ₓ₇(x)))

    depthwise 7×7 convolution, LayerNorm, inverted bottleneck (1×1 to
    ``expansion``·C, GELU, 1×1 back to C), learnable per-channel layer scale γ
    (initialised to ``layer_scale_init``), residual connection. Dropout (if any)
    acts on the residual branch.
    """

    kernel_size: int = 7
    expansion: int = 4
    layer_scale_init: float = 1e-6
    dropout: float = 0.0
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        c = x.shape[-1]
        init = kernel_init(self.weight_init, self.fan_mode)
        k = self.kernel_size
        y = nn.Conv(c, (k, k), padding="SAME", feature_group_count=c, kernel_init=init,
                    dtype=self.dtype, name="dwconv")(x)
        y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="norm")(y)
        y = nn.Dense(self.expansion * c, kernel_init=init, dtype=self.dtype, name="pwconv1")(y)
        y = nn.gelu(y)
        y = nn.Dense(c, kernel_init=init, dtype=self.dtype, name="pwconv2")(y)
        if self.layer_scale_init > 0:
            gamma = self.param("layer_scale", nn.initializers.constant(self.layer_scale_init), (c,))
            y = y * gamma.astype(y.dtype)
        if self.dropout > 0:
            y = nn.Dropout(self.dropout, deterministic=not train)(y)
        return x + y


class ConvBlock(nn.Module):
    """B_{a,b}: the convolutional block of one level; ``kind`` picks the family.

    * ``double`` (U-Net, thesis §4.3.1): B = C_{b,b}^{n-1} ∘ C_{a,b}, n = ``num_convs`` (2).
    * ``residual`` (ResNet basic block, He et al. 2016, as used by the Residual
      (Attention) U-Net, Chen et al. 2020): B(x) = ReLU(S(x) + N(conv(C^{n-1}(x)))),
      S = identity when a = b, else 1×1 conv + norm.
    * ``recurrent`` (RRCNN block of R2U-Net, Alom et al. 2018): x' = conv₁ₓ₁(x),
      B(x) = x' + R^n(x'), with the recurrent convolutional layer
      R(z): h₀ = C(z), h_{k} = C(z + h_{k−1}) for k = 1..t (t = ``recurrence``;
      one C, weights shared over the t+1 applications).
    * ``convnext`` (Liu et al. 2022): a 1×1 projection when a ≠ b, then
      ``num_convs`` ConvNeXt blocks.

    Dropout (rate ``dropout``) follows every convolution in training.
    """

    features: int
    kind: str = "double"
    num_convs: int = 2
    recurrence: int = 2
    norm: str = "batch"
    dropout: float = 0.0
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Dtype = jnp.float32

    def _conv(self, **kw):
        args = dict(norm=self.norm, dropout=self.dropout, weight_init=self.weight_init,
                    fan_mode=self.fan_mode, dtype=self.dtype)
        args.update(kw)
        return ConvNormAct(self.features, **args)

    def _projection(self, x):
        return nn.Conv(self.features, (1, 1), kernel_init=kernel_init(self.weight_init, self.fan_mode),
                       dtype=self.dtype, name="projection")(x)

    @nn.compact
    def __call__(self, x, train: bool):
        if self.kind == "double":
            for _ in range(self.num_convs):
                x = self._conv()(x, train)
            return x
        if self.kind == "residual":
            y = x
            for i in range(self.num_convs):
                last = i == self.num_convs - 1
                y = self._conv(activation=None if last else nn.relu)(y, train)
            if x.shape[-1] != self.features:
                x = self._conv(kernel_size=1, activation=None, dropout=0.0, name="shortcut")(x, train)
            return nn.relu(x + y)
        if self.kind == "recurrent":
            x = self._projection(x)
            y = x
            for i in range(self.num_convs):
                conv = self._conv(name=f"recurrent_conv{i}")
                h = conv(y, train)
                for _ in range(self.recurrence):
                    h = conv(y + h, train)
                y = h
            return x + y
        if self.kind == "convnext":
            if x.shape[-1] != self.features:
                x = self._projection(x)
            for _ in range(self.num_convs):
                x = ConvNeXtBlock(dropout=self.dropout, weight_init=self.weight_init,
                                  fan_mode=self.fan_mode, dtype=self.dtype)(x, train)
            return x
        raise ValueError(f"unknown block kind {self.kind!r}; use one of {', '.join(BLOCK_KINDS)}")


class Downsample(nn.Module):
    """Halves H and W: ``max`` = P (2×2 max pooling, thesis §4.3.1); ``conv`` = norm
    then a 2×2 stride-2 convolution to ``features`` channels (ConvNeXt's downsampling
    layer; the strided-convolution alternative of thesis §4.3.3)."""

    features: int
    mode: str = "max"
    norm: str = "layer"
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        if self.mode == "max":
            return max_pool(x)
        if self.mode == "conv":
            norm = make_norm(self.norm, train, self.dtype)
            if norm is not None:
                x = norm(x)
            return nn.Conv(self.features, (2, 2), strides=(2, 2), padding="VALID",
                           kernel_init=kernel_init(self.weight_init, self.fan_mode), dtype=self.dtype)(x)
        raise ValueError(f"unknown downsampling mode {self.mode!r}; use 'max' or 'conv'")


class UpConv(nn.Module):
    """Doubles H and W. ``nearest``: the upconvolution U_{a,b} = C_{a,b} ∘ U (nearest
    upsampling, then a k×k ConvNormAct, k = 3); ``transpose``: a k×k stride-2
    transposed convolution (k = 2 unless ``kernel_size`` says otherwise; linear, with
    bias). ``transpose_init='bilinear'`` starts it as bilinear interpolation (FCN)."""

    features: int
    mode: str = "nearest"  # 'nearest' | 'transpose'
    kernel_size: Optional[int] = None
    norm: str = "batch"
    activation: Optional[Callable] = nn.relu
    transpose_init: str = "scheme"  # 'scheme' (= weight_init) | 'bilinear'
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        if self.mode == "nearest":
            return ConvNormAct(self.features, kernel_size=self.kernel_size or 3, norm=self.norm,
                               activation=self.activation, weight_init=self.weight_init,
                               fan_mode=self.fan_mode, dtype=self.dtype)(upsample_nearest(x), train)
        if self.mode == "transpose":
            k = self.kernel_size or 2
            init = (bilinear_upsampling_init if self.transpose_init == "bilinear"
                    else kernel_init(self.weight_init, self.fan_mode))
            return nn.ConvTranspose(self.features, (k, k), strides=(2, 2), padding="SAME",
                                    kernel_init=init, dtype=self.dtype)(x)
        raise ValueError(f"unknown upsampling mode {self.mode!r}; use 'nearest' or 'transpose'")


class AttentionGate(nn.Module):
    """Attention block AB_i of thesis §4.3.2 (Oktay et al. 2018, "Attention U-Net"):

        g  = GS(y) = C_{c_{i+1},c_i}(y)                 gating signal (1×1 conv, norm, ReLU)
        q  = ReLU(W_x ∗ x + W_g ∗ g + b)                 W_x: 2×2 stride-2 conv to g's grid,
                                                          W_g: 1×1 conv (F_int channels each)
        α  = Resample(σ(ψ ∗ q + b_ψ))                    ψ: 1×1 conv to one channel,
                                                          bilinear resampling to x's grid
        AB(y) = α ⊙ x

    x is the skip x^{(i)}, y the decoder data one level lower (half resolution).
    The coefficients α ∈ [0, 1], shape (N, H, W, 1), are sown into
    ``intermediates/attention``. F_int = ``inter_features`` or max(c_i // 2, 1).
    """

    inter_features: Optional[int] = None
    norm: str = "batch"
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, y, train: bool):
        c = x.shape[-1]
        inter = self.inter_features or max(c // 2, 1)
        init = kernel_init(self.weight_init, self.fan_mode)
        g = ConvNormAct(c, kernel_size=1, norm=self.norm, weight_init=self.weight_init,
                        fan_mode=self.fan_mode, dtype=self.dtype, name="gating")(y, train)
        theta_x = nn.Conv(inter, (2, 2), strides=(2, 2), padding="VALID", use_bias=False,
                          kernel_init=init, dtype=self.dtype, name="theta_x")(x)
        phi_g = nn.Conv(inter, (1, 1), kernel_init=init, dtype=self.dtype, name="phi_g")(g)
        q = nn.relu(theta_x + phi_g)
        psi = nn.Conv(1, (1, 1), kernel_init=init, dtype=self.dtype, name="psi")(q)
        alpha = nn.sigmoid(psi.astype(jnp.float32))
        n, h, w, _ = x.shape
        alpha = jax.image.resize(alpha, (n, h, w, 1), method="bilinear")  # convex weights: stays in [0, 1]
        self.sow("intermediates", "attention", alpha)
        return x * alpha.astype(x.dtype)

