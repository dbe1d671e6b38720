"""Quantized transform coefficients to bits and back: the syntax of an enhancement part's payload
(docs/FORMAT.md, "Enhancement parts"). Integers only; every decision is coded with the adaptive
binary coder (`adaptive.py`) under a context chosen from what was already coded, never from pixels.

Per channel, per block in raster order, coefficients in zigzag order:
  coded flag   (context: luma or chroma, and how many of the left and upper blocks were coded)
  significance of each position up to the last non-zero one, each followed, when significant, by
  a last flag (contexts: luma/chroma and the position's band); the last position needs no flag
  magnitude    |v| > 1, then |v| > 2 ... |v| > 15 (contexts), above that exp-Golomb (bypass bits)
  sign         a bypass bit
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from invcomp.errors import InvcompError
from invcomp.formats.adaptive import BYPASS, BitDecoder, BitEncoder

if TYPE_CHECKING:
    import numpy as np

BANDS = 12
_CBF, _SIG, _LAST, _GT1, _LEVEL = 0, 6, 6 + 2 * BANDS, 6 + 4 * BANDS, 6 + 4 * BANDS + 10
CONTEXTS = _LEVEL + 8
UNARY_MAX = 15  # magnitudes above this continue as exp-Golomb
MAX_EG_BITS = 20  # an exp-Golomb prefix longer than this is corrupt (|v| < 2^20 + 16)


def band(pos: int) -> int:
    return pos if pos < 6 else min(BANDS - 1, 6 + (pos - 6) // 5)


def zigzag(n: int) -> list[int]:
    """Raster indices of an n x n block in zigzag order (JPEG's)."""
    order = sorted((i + j, i if (i + j) % 2 else j, i * n + j) for i in range(n) for j in range(n))
    return [k for _, _, k in order]


# The contexts' starting probabilities (of a 0 bit, in 1/65536): part of the format, never changed (a
# new table would be a new part kind). Made by `python scripts/context_table.py` (the mean adapted
# state after coding residuals of 60 training airplanes at four steps); pinned by tests/formats/test_adaptive.py.
START = (
    30562, 22599, 18861, 29963, 18302, 14378, 16252, 22801, 21021, 23173, 24228, 27161, 24965, 32111, 30856, 32284,
    39834, 40597, 12597, 29245, 20704, 27369, 30081, 32242, 35796, 40731, 39861, 40239, 43507, 41956, 50008, 48327,
    48174, 47479, 46920, 46102, 59495, 57895, 56844, 55684, 52325, 50491, 47501, 47656, 45486, 44943, 44116, 43758,
    47306, 45913, 43704, 41337, 39911, 37015, 23785, 31411, 32234, 32291, 46144, 29598, 40003, 38208, 37751, 43730,
    34967, 28905, 26413, 25908, 35297, 29614, 28208, 27818,
)


def encode(coefs: np.ndarray, chroma: tuple[bool, ...]) -> bytes:
    """coefs: (channels, rows, cols, n*n) integers, each block in zigzag order."""
    enc = BitEncoder(START)
    enc.code(*decisions(coefs, chroma))
    return enc.finish()


def adapted_states(coefs: np.ndarray, chroma: tuple[bool, ...], start: tuple[int, ...]) -> list[int]:
    """The contexts' probabilities after coding `coefs` from `start` (scripts/context_table.py)."""
    enc = BitEncoder(start)
    enc.code(*decisions(coefs, chroma))
    return enc.p


def decisions(coefs: np.ndarray, chroma: tuple[bool, ...]) -> tuple[list[int], list[int]]:
    """Every binary decision of the syntax in coding order: its bit and its context (BYPASS for bypass bits)."""
    bits: list[int] = []
    ctxs: list[int] = []
    put, ctx_of = bits.append, ctxs.append
    channels, rows, cols, size = coefs.shape
    for c in range(channels):
        ct = int(chroma[c])
        sig_ctx = [_SIG + BANDS * ct + band(pos) for pos in range(size)]
        last_ctx = [_LAST + BANDS * ct + band(pos) for pos in range(size)]
        coded = [[False] * cols for _ in range(rows)]
        blocks = coefs[c].tolist()
        for r in range(rows):
            for q in range(cols):
                block = blocks[r][q]
                nz = [i for i, v in enumerate(block) if v]
                near = (r > 0 and coded[r - 1][q]) + (q > 0 and coded[r][q - 1])
                put(1 if nz else 0)
                ctx_of(_CBF + 3 * ct + near)
                if not nz:
                    continue
                coded[r][q] = True
                last = nz[-1]
                for pos in range(last + 1):
                    if pos < size - 1:
                        if block[pos]:
                            bits += (1, 1 if pos == last else 0)
                            ctxs += (sig_ctx[pos], last_ctx[pos])
                        else:
                            put(0)
                            ctx_of(sig_ctx[pos])
                big = 0
                for pos in nz:
                    v = block[pos]
                    mag = -v if v < 0 else v
                    _magnitude(bits, ctxs, mag, ct, big)
                    big += mag > 1
                    put(1 if v < 0 else 0)
                    ctx_of(BYPASS)
    return bits, ctxs


def _magnitude(bits: list[int], ctxs: list[int], mag: int, ct: int, big: int) -> None:
    bits.append(1 if mag > 1 else 0)
    ctxs.append(_GT1 + 5 * ct + min(4, big))
    if mag == 1:
        return
    for k in range(2, UNARY_MAX + 1):
        bits.append(1 if mag > k else 0)
        ctxs.append(_LEVEL + 4 * ct + min(k - 2, 3))
        if mag == k:
            return
    n = mag - UNARY_MAX  # >= 1: exp-Golomb of n - 1
    width = n.bit_length()
    bits += [0] * (width - 1) + [(n >> i) & 1 for i in range(width - 1, -1, -1)]
    ctxs += [BYPASS] * (2 * width - 1)


def decode(data: bytes, shape: tuple[int, int, int, int], chroma: tuple[bool, ...]) -> list:
    """The coefficients `encode` wrote, as nested lists (channels, rows, cols, n*n). Bounded work:
    at most a fixed number of decisions per coefficient, whatever the bytes."""
    dec = BitDecoder(data, START)
    channels, rows, cols, size = shape
    out = []
    for c in range(channels):
        ct = int(chroma[c])
        coded = [[False] * cols for _ in range(rows)]
        plane = []
        for r in range(rows):
            row = []
            for q in range(cols):
                block = [0] * size
                near = (r > 0 and coded[r - 1][q]) + (q > 0 and coded[r][q - 1])
                if dec.bit(_CBF + 3 * ct + near):
                    coded[r][q] = True
                    nz = []
                    for pos in range(size):
                        if pos == size - 1:
                            nz.append(pos)
                            break
                        if dec.bit(_SIG + BANDS * ct + band(pos)):
                            nz.append(pos)
                            if dec.bit(_LAST + BANDS * ct + band(pos)):
                                break
                    big = 0
                    for pos in nz:
                        mag = _read_magnitude(dec, ct, big)
                        big += mag > 1
                        block[pos] = -mag if dec.bypass() else mag
                row.append(block)
            plane.append(row)
        out.append(plane)
    return out


def _read_magnitude(dec: BitDecoder, ct: int, big: int) -> int:
    if not dec.bit(_GT1 + 5 * ct + min(4, big)):
        return 1
    for k in range(2, UNARY_MAX + 1):
        if not dec.bit(_LEVEL + 4 * ct + min(k - 2, 3)):
            return k
    zeros = 0
    while not dec.bypass():
        zeros += 1
        if zeros > MAX_EG_BITS:
            raise InvcompError("corrupt enhancement part (coefficient too large)")
    n = 1
    for _ in range(zeros):
        n = (n << 1) | dec.bypass()
    return UNARY_MAX + n
