"""The residual transform of an enhancement part: what G(z) missed, in YCbCr, as n x n DCT blocks,
quantized with one step for luma and a larger one for chroma. Pure numpy, float64.

The decoder's pixels depend on float arithmetic (as G's do), so they may differ by one level on
another machine; the coefficients are integers decoded from integer-only entropy coding, so they
never differ."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from invcomp.enhance.presets import step_size
from invcomp.formats.coefficients import zigzag

# JPEG's RGB -> YCbCr (without offsets: it acts on residuals)
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_RGB = np.linalg.inv(_YCC)
CHROMA = (False, True, True)
CHROMA_LEVELS = 16  # chroma index j: chroma step = step * 2 ** (j / 4)
# The quantizer (the encoder's choice alone; decoders only see levels): level = floor(|c| / step + 0.5 - LEVEL_DEADZONE),
# and a level 1 becomes 0 below |c| / step = 0.5 + ZERO_DEADZONE (a zero saves more bits than a smaller level)
LEVEL_DEADZONE = 0.2
ZERO_DEADZONE = 0.2


@lru_cache(maxsize=4)
def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix."""
    m = np.array([[math.cos(math.pi * (2 * j + 1) * i / (2 * n)) for j in range(n)] for i in range(n)])
    m[0] *= math.sqrt(1 / n)
    m[1:] *= math.sqrt(2 / n)
    return m


def _blocks(plane: np.ndarray, n: int) -> np.ndarray:
    """(H, W) -> (H/n, W/n, n, n)."""
    h, w = plane.shape
    return plane.reshape(h // n, n, w // n, n).transpose(0, 2, 1, 3)


def _unblocks(blocks: np.ndarray) -> np.ndarray:
    r, c, n, _ = blocks.shape
    return blocks.transpose(0, 2, 1, 3).reshape(r * n, c * n)


def _steps(step_index: int, chroma_index: int) -> tuple[float, float, float]:
    s = step_size(step_index)
    return s, s * 2.0 ** (chroma_index / 4), s * 2.0 ** (chroma_index / 4)


def forward(residual: np.ndarray, n: int, step_index: int, chroma_index: int) -> np.ndarray:
    """(H, W, 3) float residual (pixel levels) -> (3, H/n, W/n, n*n) int64 quantized coefficients, zigzag."""
    d, order = dct_matrix(n), zigzag(n)
    ycc = residual @ _YCC.T
    out = []
    for c, step in enumerate(_steps(step_index, chroma_index)):
        coef = d @ _blocks(ycc[..., c], n) @ d.T
        flat = coef.reshape(*coef.shape[:2], n * n)[..., order]
        scaled = np.abs(flat) / step
        level = np.floor(scaled + 0.5 - LEVEL_DEADZONE).clip(0)
        level[(level == 1) & (scaled < 0.5 + ZERO_DEADZONE)] = 0
        out.append(np.sign(flat) * level)
    return np.stack(out).astype(np.int64)


def inverse(coefs: np.ndarray, n: int, step_index: int, chroma_index: int) -> np.ndarray:
    """The float residual (H, W, 3) that quantized coefficients stand for."""
    d, order = dct_matrix(n), zigzag(n)
    planes = []
    for c, step in enumerate(_steps(step_index, chroma_index)):
        flat = np.zeros(coefs.shape[1:], np.float64)
        flat[..., order] = coefs[c] * step
        blocks = d.T @ flat.reshape(*flat.shape[:2], n, n) @ d
        planes.append(_unblocks(blocks))
    return np.stack(planes, -1) @ _RGB.T


def to_pixels(recon: np.ndarray) -> np.ndarray:
    return np.clip(np.round(recon), 0, 255).astype(np.uint8)


def deblock(recon: np.ndarray, n: int, step: float) -> np.ndarray:
    """The deblocking filter of parts of kind 1 (docs/FORMAT.md): at every n x n block edge, first the
    horizontal edges and then the vertical ones, per RGB channel, the two pixels beside the edge move
    towards each other by clip((4 (q0 - p0) - (q1 - p1)) / 8, -t, t) with t = step / 2, unless
    |q0 - p0| >= step (a real edge, kept). Float64 elementwise arithmetic only."""
    out = recon.astype(np.float64, copy=True)
    t = step / 2
    for axis in (0, 1):
        v = np.moveaxis(out, axis, 0)  # a view: edges along the first axis
        b = np.arange(n, v.shape[0], n)
        p1, p0, q0, q1 = v[b - 2], v[b - 1], v[b], v[b + 1]
        delta = np.clip((4 * (q0 - p0) - (q1 - p1)) / 8, -t, t) * (np.abs(q0 - p0) < 2 * t)
        v[b - 1], v[b] = p0 + delta, q0 - delta
    return out
