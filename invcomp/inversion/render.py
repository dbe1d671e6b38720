"""Latent codes to pixels: the decoder's one forward pass of G, shared by decoding and by the
encoders that must see exactly what decoding will show (masked fits, rate control)."""
from __future__ import annotations

import numpy as np
import torch

from invcomp.inversion.quantize import dequantize
from invcomp.metrics import to_uint8
from invcomp.models.zoo import Model


@torch.no_grad()
def render(model: Model, codes: torch.Tensor | np.ndarray, bits: int) -> np.ndarray:
    """(N, D) integer codes at one bit depth -> (N, S, S, 3) uint8, on the model's device."""
    codes = torch.as_tensor(np.asarray(codes, np.int64)) if isinstance(codes, np.ndarray) else codes
    device = next(model.generator.parameters()).device
    z = dequantize(codes, bits, model.config.latent_range).to(device)
    return to_uint8((model.generator(z) + 1) / 2)
