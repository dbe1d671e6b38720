"""Per-image SSIM and PSNR on images in [0, 1].

SSIM is pytorch-msssim's definition (11-tap Gaussian window, sigma 1.5, 'valid' borders,
K = (0.01, 0.03)), computed faster: the separable Gaussian blur is two matrix products with
a banded matrix (one large GEMM each, instead of 2 x 5 depthwise convolutions, which are
slow on CPU), applied to the five maps x, y, x*x, y*y, x*y stacked in one tensor. During
inversion the target's maps are fixed, so `SSIMTarget` blurs them once and each step only
blurs the three maps that depend on the generated image. Agrees with
`pytorch_msssim.ssim(x, y, data_range=1, size_average=False)` to ~1e-7 (tests/bench/test_speed.py).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

WIN_SIZE = 11
WIN_SIGMA = 1.5
C1 = 0.01**2  # (K1 * data_range) ** 2
C2 = 0.03**2


@lru_cache(maxsize=32)
def _band_on(n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n - 10, n) matrix whose rows are the normalised Gaussian window at each valid offset.

    Cached per device, so a GPU run does not copy it from the host at every step."""
    with torch.inference_mode(False):  # cached: must stay usable by autograd whatever mode built it
        return _band_matrix(n).to(device=device, dtype=dtype)


def _band_matrix(n: int) -> torch.Tensor:
    coords = torch.arange(WIN_SIZE, dtype=torch.float64) - WIN_SIZE // 2
    g = torch.exp(-(coords**2) / (2 * WIN_SIGMA**2))
    g = (g / g.sum()).float()
    out = n - WIN_SIZE + 1
    band = torch.zeros(out, n)
    for i in range(out):
        band[i, i : i + WIN_SIZE] = g
    return band


def _band(n: int, like: torch.Tensor) -> torch.Tensor:
    return _band_on(n, like.device, like.dtype)


def blur(maps: torch.Tensor) -> torch.Tensor:
    """Gaussian-filter the last two dims (H, W) of `maps` ('valid'); returns (..., H-10, W-10) TRANSPOSED.

    The result is the transpose of the filtered map (W' x H'); SSIM only averages elementwise
    combinations of such maps, so the transpose is harmless and saves a copy.
    """
    *lead, h, w = maps.shape
    if h < WIN_SIZE or w < WIN_SIZE:
        raise ValueError(f"SSIM needs images of at least {WIN_SIZE}x{WIN_SIZE}, not {w}x{h}")
    bw, bh = _band(w, maps), _band(h, maps)
    rows = maps.reshape(-1, w) @ bw.T  # (..., h, w') filtered along W
    cols = rows.view(-1, h, w - WIN_SIZE + 1).transpose(1, 2).reshape(-1, h) @ bh.T  # (..., w', h')
    return cols.view(*lead, w - WIN_SIZE + 1, h - WIN_SIZE + 1)


def _ssim_from_moments(mu_x, mu_y, e_xx, e_yy, e_xy) -> torch.Tensor:
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    cs = (2 * (e_xy - mu_xy) + C2) / ((e_xx - mu_xx) + (e_yy - mu_yy) + C2)
    ssim_map = ((2 * mu_xy + C1) / (mu_xx + mu_yy + C1)) * cs
    return ssim_map.flatten(1).mean(1)  # mean over channels and pixels == mean of per-channel means


def ssim01(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM per image (shape N) of two (N, C, H, W) batches in [0, 1]; 11x11 window, sigma 1.5."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim01 needs two equal N x C x H x W batches, got {tuple(x.shape)} and {tuple(y.shape)}")
    moments = blur(torch.stack([x, y, x * x, y * y, x * y], 1))  # (N, 5, C, W', H')
    return _ssim_from_moments(*moments.unbind(1))


class SSIMTarget:
    """SSIM against fixed targets: the targets' blurred moments are computed once."""

    def __init__(self, target: torch.Tensor):
        if target.ndim != 4:
            raise ValueError(f"targets must be N x C x H x W, got {tuple(target.shape)}")
        self.target = target
        mu_y, e_yy = blur(torch.stack([target, target * target], 1)).unbind(1)
        self.mu_y, self.e_yy = mu_y, e_yy

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self.target
        if x.shape != y.shape:
            raise ValueError(f"image batch {tuple(x.shape)} does not match the targets {tuple(y.shape)}")
        mu_x, e_xx, e_xy = blur(torch.stack([x, x * x, x * y], 1)).unbind(1)
        return _ssim_from_moments(mu_x, self.mu_y, e_xx, self.e_yy, e_xy)


def psnr01(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    mse = ((x - y) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


def to_unit(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8, rounding to nearest."""
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def image_quality(original: np.ndarray, decoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSNR (dB) and SSIM per image of two uint8 (N, H, W, 3) batches."""
    a, b = to_unit(original), to_unit(decoded)
    return psnr01(a, b).numpy().astype(float), ssim01(a, b).numpy().astype(float)
