"""Losses of masked fits: SSIM weighted per window, MSE and an edge (LoG) term, all on what the
decoder will show (G(z) with the kept pixels blended in), and region quality for reports."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from invcomp.errors import InvcompError
from invcomp.inversion.invert import InversionConfig
from invcomp.masks import assistant
from invcomp.metrics import to_unit

LOSSES = ("ssim", "ssim+mse", "ssim+mse+edge")


def _gauss1d(size: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable valid convolution of every channel with the 1-D kernel g."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM per 11x11 Gaussian (sigma 1.5) window, averaged over channels: (N, 1, H-10, W-10).

    Same constants and valid windows as pytorch-msssim, so its mean is `ssim.ssim01`."""
    g = _gauss1d(11, 1.5, x.device, x.dtype)
    c1, c2 = 0.01**2, 0.03**2
    mx, my = _filter(x, g), _filter(y, g)
    sxx = _filter(x * x, g) - mx**2
    syy = _filter(y * y, g) - my**2
    sxy = _filter(x * y, g) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return (((2 * mx * my + c1) / (mx**2 + my**2 + c1)) * cs).mean(1, keepdim=True)


def weighted_ssim(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """SSIM per image with each window weighted by the weight mass under it; weights (N,1,H,W)."""
    g = _gauss1d(11, 1.5, x.device, x.dtype)
    w = _filter(weights, g)
    return (ssim_map(x, y) * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-12)


def _log_kernel(device, dtype) -> torch.Tensor:
    """Laplacian of Gaussian (sigma 1, 7x7), zero-sum."""
    x = torch.arange(-3, 4, device=device, dtype=dtype)
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    k = (r2 - 2) * torch.exp(-r2 / 2)
    return (k - k.mean())[None, None]


def log_response(x: torch.Tensor) -> torch.Tensor:
    """LoG of the grey image (N,1,H,W) of (N,3,H,W) in [0, 1]."""
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return F.conv2d(F.pad(grey, (3, 3, 3, 3), mode="replicate"), _log_kernel(x.device, x.dtype))


def _wmean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    w = weights.expand_as(values)
    return (values * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-12)


def masked_loss(assist: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor, variant: str, paste_pixels: bool,
                sigma: float, edge_weight: float = 1.0) -> Callable:
    """A `loss_fn` for invert(): the chosen loss on what decoding shows, weighted per pixel.

    assist (N,3,S,S) in [0,1], mask and weights (N,1,S,S); batches of k x N images (restarts,
    bit depths) are matched by tiling. paste_pixels=False scores G(z) itself (edge schemes,
    whose positions depend on the fitted z, and fits with no stored pixels)."""
    if variant not in LOSSES:
        raise InvcompError(f"unknown loss {variant!r}; choose from {', '.join(LOSSES)}")
    n = assist.shape[0]

    def loss_fn(generated: torch.Tensor, targets: torch.Tensor, z: torch.Tensor, cfg: InversionConfig) -> torch.Tensor:
        reps = generated.shape[0] // n
        a, m, w = (t.to(generated.device).repeat(reps, 1, 1, 1) for t in (assist, mask, weights))
        out = (generated + 1) / 2
        if paste_pixels:
            out = assistant.blend(out, a, m, sigma)
        loss = 1 - weighted_ssim(out, targets, w)
        if variant != "ssim":
            loss = loss + cfg.mse_weight * _wmean((out - targets) ** 2, w)
        if variant == "ssim+mse+edge":
            loss = loss + edge_weight * _wmean((log_response(out) - log_response(targets)).abs(), w)
        return loss + cfg.prior_weight * z.pow(2).mean(1)

    return loss_fn


def region_quality(original: np.ndarray, decoded: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of one image restricted to a region (SSIM windows weighted by the region)."""
    diff = (original.astype(np.float64) - decoded.astype(np.float64))[mask]
    mse = max(float((diff**2).mean()) / 255**2, 1e-12)
    w = torch.from_numpy(mask.astype(np.float32))[None, None]
    s = weighted_ssim(to_unit(decoded[None]), to_unit(original[None]), w)
    return 10 * math.log10(1 / mse), float(s[0])
