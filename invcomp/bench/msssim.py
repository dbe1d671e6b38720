"""SSIM and MS-SSIM per image with any odd window and as many scales as the image size allows.

The definition is pytorch-msssim's (Gaussian window with sigma 1.5, 'valid' borders,
K = (0.01, 0.03), negative contrast terms clipped to 0, channels averaged after the product
over scales), computed by the same operations in the same order, so the values are equal to
`pytorch_msssim.ssim(..., size_average=False)` and `pytorch_msssim.ms_ssim(...)`
(tests/bench/test_msssim.py). Unlike `ms_ssim`, any number of scales is allowed, which is how
4 scales are measured at 32 x 32. (`invcomp.metrics.ssim01` is the fast fixed 11 x 11 SSIM of
the inversion loop; this module is the benchmark's reference measurement.)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from invcomp.metrics import to_unit

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_window(size: int, sigma: float = WIN_SIGMA) -> torch.Tensor:
    """The normalised 1-D Gaussian window (float32, `size` taps centred on size // 2)."""
    if size < 1 or size % 2 != 1:
        raise ValueError(f"the SSIM window must have an odd size, not {size}")
    coords = torch.arange(size, dtype=torch.float) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of (N, C, H, W) per channel: along H, then along W."""
    c, size = x.shape[1], win.shape[0]
    if min(x.shape[2:]) < size:
        raise ValueError(f"SSIM with a {size}x{size} window needs images of at least that size, not {tuple(x.shape[2:])}")
    w = win.to(x.device, dtype=x.dtype).view(1, 1, 1, size).repeat(c, 1, 1, 1)
    x = F.conv2d(x, w.transpose(2, 3), groups=c)
    return F.conv2d(x, w, groups=c)


def ssim_cs(x: torch.Tensor, y: torch.Tensor, win_size: int = 11, data_range: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and its contrast-structure term per image and channel, shapes (N, C), of two (N, C, H, W) batches."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"SSIM needs two equal N x C x H x W batches, got {tuple(x.shape)} and {tuple(y.shape)}")
    win = gaussian_window(win_size)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu1, mu2 = _filter(x, win), _filter(y, win)
    mu1_sq, mu2_sq, mu1_mu2 = mu1.pow(2), mu2.pow(2), mu1 * mu2
    sigma1_sq = _filter(x * x, win) - mu1_sq
    sigma2_sq = _filter(y * y, win) - mu2_sq
    sigma12 = _filter(x * y, win) - mu1_mu2
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
    return torch.flatten(ssim_map, 2).mean(-1), torch.flatten(cs_map, 2).mean(-1)


def ssim_per_image(x: torch.Tensor, y: torch.Tensor, win_size: int = 11, data_range: float = 1.0) -> torch.Tensor:
    """SSIM per image (shape N): the mean over channels."""
    return ssim_cs(x, y, win_size, data_range)[0].mean(1)


def ms_ssim_levels(x: torch.Tensor, y: torch.Tensor, win_size: int, weights: tuple[float, ...]) -> torch.Tensor:
    """MS-SSIM per image (shape N, data range 1) with as many scales as `weights`."""
    w = x.new_tensor(weights)
    mcs = []
    for i in range(len(weights)):
        ssim_per_channel, cs = ssim_cs(x, y, win_size)
        if i < len(weights) - 1:
            mcs.append(torch.relu(cs))
            padding = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=padding)
            y = F.avg_pool2d(y, kernel_size=2, padding=padding)
    stacked = torch.stack(mcs + [torch.relu(ssim_per_channel)], dim=0)
    return torch.prod(stacked ** w.view(-1, 1, 1), dim=0).mean(1)


def msssim_settings(side: int) -> tuple[int, tuple[float, ...]] | None:
    """(window, scale weights) for MS-SSIM at this image size, or None where it is undefined.

    The standard 5 scales need a side > 2**4 * (window - 1): 64 px works with a 3 x 3
    window. At 32 px only 4 scales fit (the coarsest is 4 x 4); the first four standard
    weights are renormalised to sum to 1. Below 32 px MS-SSIM is not reported.
    """
    if side >= 64:
        return 3, MSSSIM_WEIGHTS
    if side >= 32:
        w = MSSSIM_WEIGHTS[:4]
        return 3, tuple(x / sum(w) for x in w)
    return None


def msssim_per_image(original: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """MS-SSIM per image of two uint8 (N, H, W, 3) batches at the scales their size allows (NaN below 32 px)."""
    spec = msssim_settings(min(original.shape[1:3]))
    if spec is None:
        return np.full(len(original), np.nan)
    win, weights = spec
    return ms_ssim_levels(to_unit(original), to_unit(decoded), win, weights).numpy().astype(float)
