"""Uniform scalar quantization of latents over [-R, R] with 2**bits levels."""
from __future__ import annotations

import torch

from invcomp.formats.icz import MAX_BITS, MIN_BITS  # noqa: F401 - the format's limits, re-exported


def step_size(bits: int, latent_range: float) -> float:
    return 2 * latent_range / (2**bits - 1)


def quantize(z: torch.Tensor, bits: int, latent_range: float) -> torch.Tensor:
    """Integer codes in 0 .. 2**bits - 1 (int64) for latents, clamped to the range first."""
    step = step_size(bits, latent_range)
    return torch.round((z.clamp(-latent_range, latent_range) + latent_range) / step).long()


def dequantize(codes: torch.Tensor, bits: int, latent_range: float) -> torch.Tensor:
    return codes.float() * step_size(bits, latent_range) - latent_range


def fake_quantize(z: torch.Tensor, bits: int, latent_range: float) -> torch.Tensor:
    """Quantized value in the forward pass, identity gradient (straight-through) in the backward."""
    zq = dequantize(quantize(z, bits, latent_range), bits, latent_range).to(z.dtype)
    return z + (zq - z).detach()
