"""The flax encoders against PyTorch: torchvision's ResNet-18/34/50 and ConvNeXt-Tiny, written here
with plain ``torch.nn`` (torchvision itself is not needed) following torchvision's published
definitions and state-dict key names, random weights (BatchNorm running statistics and ConvNeXt's
layer scale randomised too, so they matter), saved as .safetensors and .pth, loaded with
``jaxseg.models.encoders.load_torch_weights`` and compared stage by stage in eval mode on a
1×64×64 input: max |jax − torch| ≤ 1e-5 · max |torch| + 1e-6 for every feature map (measured on
CPU: ≤ 1e-6 relative; the bound is tight enough to catch tanh-approximated GELU, ~1e-4). JAX runs at
"highest" matmul precision so that a GPU's TF32 does not blur the comparison.

Needs torch: ``pip install -e '.[interop]'``; skipped with that reason otherwise.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch interop tests need torch: pip install -e '.[interop]'")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="needs safetensors")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from jaxseg.models import encoders  # noqa: E402

pytestmark = pytest.mark.interop
RTOL, ATOL = 1e-5, 1e-6


# --- torchvision.models.resnet ------------------------------------------------------------------

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # v1.5: stride on the 3×3
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        out = [x]
        x = self.maxpool(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            out.append(x)
        return out


# --- torchvision.models.convnext ----------------------------------------------------------------

class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class CNBlock(nn.Module):
    def __init__(self, dim, layer_scale=1e-6):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim, bias=True), Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim, bias=True), nn.GELU(),
            nn.Linear(4 * dim, dim, bias=True), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)

    def forward(self, x):
        return x + self.layer_scale * self.block(x)  # stochastic depth: identity in eval


class ConvNeXt(nn.Module):
    def __init__(self, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), num_classes=1000):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4, bias=True), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            layers.append(nn.Sequential(*[CNBlock(dim) for _ in range(depth)]))
            if i < 3:
                layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6), nn.Conv2d(dim, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1),
                                        nn.Linear(dims[-1], num_classes))

    def stage_features(self, x):
        out = [None]
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i % 2 == 1:
                out.append(x)
        return out


REFERENCES = {"resnet18": lambda: ResNet(BasicBlock, [2, 2, 2, 2]),
              "resnet34": lambda: ResNet(BasicBlock, [3, 4, 6, 3]),
              "resnet50": lambda: ResNet(Bottleneck, [3, 4, 6, 3]), "convnext_tiny": ConvNeXt}
# torchvision's published parameter counts (weights' meta "num_params"), classifier included
TOTAL = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "convnext_tiny": 28_589_128}
HEAD = ("fc.", "classifier.")


def reference(name, seed=0):
    """The torch network with random weights and BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    net = REFERENCES[name]()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (nn.LayerNorm,)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
            if isinstance(m, CNBlock):
                m.layer_scale.uniform_(0.1, 0.5)
    return net.eval()


def torch_features(net, x_nchw):
    with torch.no_grad():
        feats = net.features(x_nchw) if isinstance(net, ResNet) else net.stage_features(x_nchw)
    return [None if f is None else f.permute(0, 2, 3, 1).numpy() for f in feats]


def jax_features(name, variables, x_nhwc):
    with jax.default_matmul_precision("highest"):
        return encoders.build(name).apply(variables, jnp.asarray(x_nhwc), False)


def assert_close(got, want, what):
    for i, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None, (what, i)
            continue
        g = np.asarray(g)
        assert g.shape == w.shape, (what, i, g.shape, w.shape)
        err = np.abs(g - w).max()
        assert err <= RTOL * np.abs(w).max() + ATOL, f"{what} stride {2 ** (i + 1)}: max error {err:.3g}, " \
                                                     f"max |torch| {np.abs(w).max():.3g}"


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "convnext_tiny"])
def test_features_equal_pytorch(name, tmp_path):
    net = reference(name)
    assert sum(p.numel() for p in net.parameters()) == TOTAL[name]
    state = net.state_dict()
    no_head = sum(p.numel() for k, p in net.named_parameters() if not k.startswith(HEAD))
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.pth")
    x = np.random.RandomState(1).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    want = torch_features(net, torch.from_numpy(x.transpose(0, 3, 1, 2)))
    for fname in ("w.safetensors", "w.pth"):
        variables = encoders.load_torch_weights(name, tmp_path / fname)
        assert sum(v.size for v in _leaves(variables["params"])) == no_head
        assert_close(jax_features(name, variables, x), want, f"{name} from {fname}")


def test_grayscale_resnet_equals_pytorch_on_a_gray_image(tmp_path):
    """A 1-channel input through summed kernels = the RGB network on the gray image repeated."""
    net = reference("resnet18", seed=3)
    safetensors_torch.save_file({k: v.contiguous() for k, v in net.state_dict().items()},
                                str(tmp_path / "w.safetensors"))
    gray = np.random.RandomState(2).uniform(0, 1, (1, 64, 64, 1)).astype(np.float32)
    want = torch_features(net, torch.from_numpy(np.repeat(gray, 3, axis=-1).transpose(0, 3, 1, 2)))
    variables = encoders.load_torch_weights("resnet18", tmp_path / "w.safetensors", in_channels=1)
    assert_close(jax_features("resnet18", variables, gray), want, "resnet18 gray")


def test_timm_convnext_keys_equal_pytorch(tmp_path):
    net = reference("convnext_tiny", seed=5)
    timm = {}
    for k, v in net.state_dict().items():
        parts = k.split(".")
        if parts[0] != "features":
            continue
        f, rest = int(parts[1]), parts[2:]
        if f == 0:
            timm["stem." + ".".join(rest)] = v
        elif f % 2 == 0:
            timm[f"stages.{f // 2}.downsample." + ".".join(rest)] = v
        elif rest[-1] == "layer_scale":
            timm[f"stages.{(f - 1) // 2}.blocks.{rest[0]}.gamma"] = v.flatten()
        else:
            sub = {"0": "conv_dw", "2": "norm", "3": "mlp.fc1", "5": "mlp.fc2"}[rest[2]]
            timm[f"stages.{(f - 1) // 2}.blocks.{rest[0]}.{sub}.{rest[3]}"] = v
    safetensors_torch.save_file({k: v.contiguous() for k, v in timm.items()}, str(tmp_path / "timm.safetensors"))
    x = np.random.RandomState(4).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    want = torch_features(net, torch.from_numpy(x.transpose(0, 3, 1, 2)))
    variables = encoders.load_torch_weights("convnext_tiny", tmp_path / "timm.safetensors")
    assert_close(jax_features("convnext_tiny", variables, x), want, "convnext_tiny (timm keys)")


def _leaves(tree):
    for v in tree.values():
        yield from (_leaves(v) if isinstance(v, dict) else [v])
