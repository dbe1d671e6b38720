"""DCGAN networks: generator G(z) -> image, discriminator D, and encoder E(image) -> z.

Images are float tensors in [-1, 1], shape (N, 3, S, S) with S = 32 or 64.
Latents are bounded to [-latent_range, latent_range], the range that quantization covers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from invcomp.errors import InvcompError


@dataclass(frozen=True)
class NetConfig:
    resolution: int = 32
    latent_dim: int = 64
    width: int = 64
    latent_range: float = 3.0

    def __post_init__(self) -> None:
        if self.resolution not in (32, 64):
            raise InvcompError(f"resolution must be 32 or 64, not {self.resolution}")
        if not 1 <= self.latent_dim <= 1024:
            raise InvcompError(f"latent size must be 1..1024, not {self.latent_dim}")
        if not 4 <= self.width <= 512:
            raise InvcompError(f"width must be 4..512, not {self.width}")

    @property
    def n_up(self) -> int:
        """Number of stride-2 stages between 4x4 and the output resolution."""
        return {32: 3, 64: 4}[self.resolution]

    def to_dict(self) -> dict:
        return asdict(self)


class Generator(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.width * 2 ** (cfg.n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.latent_dim, ch, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(cfg.n_up - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


def _conv_trunk(cfg: NetConfig) -> tuple[nn.Sequential, int]:
    """Stride-2 conv stack from S x S down to 4 x 4 (shared shape of D and E)."""
    ch = cfg.width
    layers: list[nn.Module] = [nn.Conv2d(3, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for _ in range(cfg.n_up - 1):
        layers += [
            nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ch * 2),
            nn.LeakyReLU(0.2, True),
        ]
        ch *= 2
    return nn.Sequential(*layers), ch


class Discriminator(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        trunk, ch = _conv_trunk(cfg)
        self.net = nn.Sequential(trunk, nn.Conv2d(ch, 1, 4, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class Encoder(nn.Module):
    """Maps an image to a latent inside the quantizer's range (a start point for inversion)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        trunk, ch = _conv_trunk(cfg)
        self.net = nn.Sequential(trunk, nn.Conv2d(ch, cfg.latent_dim, 4, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.cfg.latent_range
        return r * torch.tanh(self.net(x).flatten(1) / r)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
