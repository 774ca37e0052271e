"""The thesis U-Net (§4.3.1) in PyTorch — the benchmark baseline only; torch is never a jaxseg dependency.

Same layers as ``jaxseg.models.UNet`` with ``batch_norm=True, upsample='nearest'``:
B = (conv3×3 no bias → BN → ReLU) ×2; max-pool 2×2; U = nearest ×2 → conv3×3 → BN → ReLU;
concatenate (skip | up); final 1×1 conv with bias.
"""

import torch
from torch import nn


def _cnr(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class TorchUNet(nn.Module):
    def __init__(self, in_channels=1, num_classes=1, features=64, depth=5):
        super().__init__()
        chans = [features * 2**i for i in range(depth)]
        self.down = nn.ModuleList()
        cin = in_channels
        for c in chans:
            self.down.append(nn.Sequential(*_cnr(cin, c), *_cnr(c, c)))
            cin = c
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for level in range(depth - 2, -1, -1):
            self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_cnr(chans[level + 1], chans[level])))
            self.dec.append(nn.Sequential(*_cnr(2 * chans[level], chans[level]), *_cnr(chans[level], chans[level])))
        self.head = nn.Conv2d(chans[0], num_classes, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
            x = dec(torch.cat([skip, up(x)], dim=1))
        return self.head(x)
