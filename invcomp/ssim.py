"""Per-image SSIM and PSNR on images in [0, 1] (pytorch-msssim's Gaussian-window SSIM)."""
from __future__ import annotations

import numpy as np
import torch
from pytorch_msssim import ssim as _ssim


def ssim01(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM per image (shape N) of two (N, 3, H, W) batches in [0, 1]; 11x11 window, sigma 1.5."""
    return _ssim(x, y, data_range=1.0, size_average=False, win_size=11)


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
