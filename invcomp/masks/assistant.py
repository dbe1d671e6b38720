"""Assistant pixels: original pixel values kept under a mask, quantized, packed, and pasted into G(z).

Quantization is per RGB channel to `bits` (1..8) levels: code = round(v (L-1) / 255), value =
round(code 255 / (L-1)), L = 2**bits, so the error is at most 255 / (2 (L-1)) + 0.5 per channel.

Packing: the codes of the kept pixels (raster order, R G B per pixel) are predicted by the same
quantization of G(z) (rounded to uint8, which both sides have), and the residuals are
arithmetic-coded (arith.py) under a two-sided geometric table built in integers; the table's
decay is one byte in the payload. Raw bit packing is the fallback; the smaller one is kept.

Pasting (blend): kept pixels take their stored value; around them, the residual (stored - G)
is spread by normalized convolution with a Gaussian and faded in with the Gaussian's weight,
so colour corrections diffuse into G(z) instead of leaving hard seams. It is differentiable
(torch), so the inversion can fit z to exactly what the decoder will show.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from invcomp.errors import InvcompError
from invcomp.formats import arith, bitpack

MIN_BITS, MAX_BITS = 1, 8
PACK_RAW = 0  # codes bit-packed MSB first
PACK_GEOMETRIC = 1  # residuals vs quantized G(z), arithmetic-coded; next byte = decay index
# Decays (of 256) of the residual table f(r) ~ (d / 256)^|r|, in increasing flatness.
DECAYS = (8, 24, 48, 80, 112, 144, 170, 192, 210, 224, 234, 242, 248, 252)
BLEND_SIGMA = 1.5


def check_bits(bits: int) -> int:
    if not MIN_BITS <= bits <= MAX_BITS:
        raise InvcompError(f"--assist-bits must be {MIN_BITS}..{MAX_BITS}, not {bits}")
    return bits


def quantize(values: np.ndarray, bits: int) -> np.ndarray:
    """uint8 values -> integer codes 0..2**bits-1 (same shape)."""
    levels = (1 << check_bits(bits)) - 1
    return (np.asarray(values, np.int64) * (2 * levels) + 255) // 510  # round(v L / 255), halves up


def dequantize(codes: np.ndarray, bits: int) -> np.ndarray:
    levels = (1 << check_bits(bits)) - 1
    return ((np.asarray(codes, np.int64) * 510 + levels) // (2 * levels)).astype(np.uint8)


def max_error(bits: int) -> float:
    """Largest |value - dequantize(quantize(value))| over 0..255 (a property the tests check)."""
    v = np.arange(256)
    return float(np.abs(dequantize(quantize(v, bits), bits).astype(int) - v).max())


def residual_table(bits: int, decay_index: int) -> tuple[int, ...]:
    """Cumulative integer frequencies (sum 2**16) of residuals -(L-1)..(L-1), symbol = residual + L - 1."""
    levels = 1 << bits
    nsym = 2 * levels - 1
    d = DECAYS[decay_index]
    w, weights = 1 << 24, []
    for _ in range(levels):
        weights.append(w)
        w = w * d // 256
    # the centre (residual 0) has the unique largest weight, so it takes the rounding remainder
    return arith.cumulative_from_weights([weights[abs(s - (levels - 1))] for s in range(nsym)])


def _cost_bits(symbols: np.ndarray, cum: tuple[int, ...]) -> float:
    freqs = np.diff(np.asarray(cum, np.float64))
    return float(-np.log2(freqs[symbols] / arith.TOTAL).sum())


def pack(codes: np.ndarray, predicted: np.ndarray, bits: int) -> bytes:
    """Codes (n,) with their predictions (n,) -> the smaller of raw packing and geometric coding."""
    codes = np.asarray(codes, np.int64).ravel()
    raw = bytes([PACK_RAW]) + bitpack.pack(codes, bits)
    symbols = codes - np.asarray(predicted, np.int64).ravel() + (1 << bits) - 1
    best = min(range(len(DECAYS)), key=lambda i: _cost_bits(symbols, residual_table(bits, i)))
    coded = bytes([PACK_GEOMETRIC, best]) + arith.encode(symbols.tolist(), residual_table(bits, best))
    return min([raw, coded], key=len)


def unpack(data: bytes, predicted: np.ndarray, bits: int) -> np.ndarray:
    predicted = np.asarray(predicted, np.int64).ravel()
    n = predicted.size
    if not data:
        raise InvcompError("corrupt assistant pixels (empty)")
    if data[0] == PACK_RAW:
        return bitpack.unpack(data[1:], n, bits, "assistant pixels")
    if data[0] == PACK_GEOMETRIC:
        if len(data) < 2 or data[1] >= len(DECAYS):
            raise InvcompError("corrupt assistant pixels (bad table)")
        cum = residual_table(bits, data[1])
        body = data[2:]
        if len(body) > (n * (bits + 1) + 7) // 8 + 8:
            raise InvcompError("corrupt assistant pixels (too long)")
        symbols = arith.decode(body, n, cum)
        if arith.encode(symbols, cum) != body:
            raise InvcompError("corrupt assistant pixels (do not re-encode to the file)")
        codes = np.asarray(symbols, np.int64) + predicted - (1 << bits) + 1
        if codes.size and (codes.min() < 0 or codes.max() >= 1 << bits):
            raise InvcompError("corrupt assistant pixels (values out of range)")
        return codes
    raise InvcompError(f"corrupt assistant pixels (unknown packing {data[0]})")


# --- pasting -------------------------------------------------------------------------------

def _kernel(sigma: float, device, dtype) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, device=device, dtype=dtype)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g[:, None] * g[None, :])[None, None]  # peak 1: an isolated kept pixel has weight 1 on itself


def blend(generated: torch.Tensor, assist: torch.Tensor, mask: torch.Tensor, sigma: float = BLEND_SIGMA) -> torch.Tensor:
    """G(z) (N,3,S,S) with assistant pixels pasted in; all in [0, 1]; mask (N,1,S,S) of 0/1.

    out = mask * assist + (1 - mask) * (G + alpha * D), with D = (k * (mask (assist - G))) / (k * mask)
    the residual spread from the kept pixels and alpha = min(1, k * mask), k a Gaussian of peak 1."""
    k = _kernel(sigma, generated.device, generated.dtype)
    pad = k.shape[-1] // 2
    n, c, h, w = generated.shape
    resid = (mask * (assist - generated)).reshape(n * c, 1, h, w)
    num = F.conv2d(resid, k, padding=pad).reshape(n, c, h, w)
    den = F.conv2d(mask, k, padding=pad)
    spread = num / den.clamp_min(1e-6)
    alpha = den.clamp(max=1.0)
    return mask * assist + (1 - mask) * (generated + alpha * spread)
