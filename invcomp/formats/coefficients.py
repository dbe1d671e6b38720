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

import numpy as np

from invcomp.errors import InvcompError
from invcomp.formats.adaptive import BYPASS, BitDecoder, BitEncoder

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
    """Every binary decision of the syntax in coding order: its bit and its context (BYPASS for bypass bits).

    Built with array operations: each decision gets a sort key (its block, then its phase and position in
    the block's syntax: coded flag, significance and last flags, magnitude and sign), and one stable sort
    by key gives the coding order."""
    a = np.asarray(coefs, dtype=np.int64)
    channels, rows, cols, size = a.shape
    ct = np.array([int(chroma[c]) for c in range(channels)], dtype=np.int64)[:, None, None]
    nonzero = a != 0
    coded = nonzero.any(-1)
    near = np.zeros(coded.shape, dtype=np.int64)
    near[:, 1:, :] += coded[:, :-1, :]
    near[:, :, 1:] += coded[:, :, :-1]
    blocks = np.arange(channels * rows * cols, dtype=np.int64).reshape(coded.shape)
    # sort key within a block: 0 the coded flag, 1 + 2 pos (+1) the significance (last) flag at pos,
    # 1 + 2 size + pos * per + j the j-th magnitude or sign decision of the coefficient at pos
    mag = np.abs(a)
    wide = np.maximum(mag - UNARY_MAX, 1)
    width = np.zeros_like(mag)
    width[mag > UNARY_MAX] = [int(n).bit_length() for n in wide[mag > UNARY_MAX]]  # exp-Golomb widths (rare)
    per = int(UNARY_MAX + 2 * width.max(initial=0) + 1)
    stride = 1 + 2 * size + size * per

    keys = [blocks.ravel() * stride]
    bits = [coded.ravel().astype(np.int64)]
    ctxs = [(_CBF + 3 * ct + near).ravel()]

    pos = np.arange(size, dtype=np.int64)
    last = size - 1 - np.argmax(nonzero[..., ::-1], axis=-1)
    bands = np.array([band(i) for i in range(size)], dtype=np.int64)
    sig = coded[..., None] & (pos <= last[..., None]) & (pos < size - 1)
    c_i, r_i, q_i, p_i = np.nonzero(sig)
    base = blocks[c_i, r_i, q_i] * stride + 1 + 2 * p_i
    keys.append(base)
    bits.append(nonzero[c_i, r_i, q_i, p_i].astype(np.int64))
    ctxs.append(_SIG + BANDS * ct[c_i, 0, 0] + bands[p_i])
    flag = nonzero[c_i, r_i, q_i, p_i]
    keys.append(base[flag] + 1)
    bits.append((p_i == last[c_i, r_i, q_i])[flag].astype(np.int64))
    ctxs.append(_LAST + BANDS * ct[c_i[flag], 0, 0] + bands[p_i[flag]])

    big_before = np.cumsum(mag > 1, axis=-1) - (mag > 1)  # earlier non-zero coefficients above 1 in the block
    c_i, r_i, q_i, p_i = np.nonzero(nonzero)
    m, w, b = mag[c_i, r_i, q_i, p_i], width[c_i, r_i, q_i, p_i], big_before[c_i, r_i, q_i, p_i]
    unary = np.where(m > 1, np.minimum(m, UNARY_MAX) - 1, 0)  # decisions |v| > k for k = 2 .. min(|v|, 15)
    golomb = np.where(m > UNARY_MAX, 2 * w - 1, 0)
    count = 1 + unary + golomb + 1
    row = np.repeat(np.arange(len(m)), count)
    j = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    m_r, u_r, w_r, ct_r = m[row], unary[row], w[row], ct[c_i[row], 0, 0]
    n_r = np.maximum(m_r - UNARY_MAX, 1)
    k = j + 1  # the unary decisions' k
    g = j - u_r - 1  # index within the exp-Golomb bits
    shift = np.clip(2 * w_r - 2 - g, 0, 62)
    bit = np.where(j == 0, m_r > 1,
                   np.where(j <= u_r, m_r > k,
                            np.where(j < count[row] - 1, (g >= w_r - 1) & ((n_r >> shift) & 1 == 1),
                                     a[c_i, r_i, q_i, p_i][row] < 0)))
    ctx = np.where(j == 0, _GT1 + 5 * ct_r + np.minimum(4, b[row]),
                   np.where(j <= u_r, _LEVEL + 4 * ct_r + np.minimum(k - 2, 3), BYPASS))
    keys.append(blocks[c_i, r_i, q_i][row] * stride + 1 + 2 * size + p_i[row] * per + j)
    bits.append(bit.astype(np.int64))
    ctxs.append(ctx)

    order = np.argsort(np.concatenate(keys), kind="stable")
    return np.concatenate(bits)[order].tolist(), np.concatenate(ctxs)[order].tolist()


def decode(data: bytes, shape: tuple[int, int, int, int], chroma: tuple[bool, ...]) -> list:
    """The coefficients `encode` wrote, as nested lists (channels, rows, cols, n*n). Bounded work:
    at most a fixed number of decisions per coefficient, whatever the bytes."""
    dec = BitDecoder(data, START)
    bit, bypass = dec.bit, dec.bypass
    channels, rows, cols, size = shape
    out = []
    for c in range(channels):
        ct = int(chroma[c])
        sig_ctx = [_SIG + BANDS * ct + band(pos) for pos in range(size)]
        last_ctx = [_LAST + BANDS * ct + band(pos) for pos in range(size)]
        gt1_ctx = [_GT1 + 5 * ct + min(4, big) for big in range(size + 1)]
        level_ctx = [_LEVEL + 4 * ct + min(k - 2, 3) for k in range(UNARY_MAX + 1)]
        coded = [[False] * cols for _ in range(rows)]
        plane = []
        for r in range(rows):
            row = []
            for q in range(cols):
                block = [0] * size
                near = (r > 0 and coded[r - 1][q]) + (q > 0 and coded[r][q - 1])
                if bit(_CBF + 3 * ct + near):
                    coded[r][q] = True
                    nz = []
                    for pos in range(size):
                        if pos == size - 1:
                            nz.append(pos)
                            break
                        if bit(sig_ctx[pos]):
                            nz.append(pos)
                            if bit(last_ctx[pos]):
                                break
                    big = 0
                    for pos in nz:
                        mag = _read_magnitude(dec, gt1_ctx[big], level_ctx)
                        big += mag > 1
                        block[pos] = -mag if bypass() else mag
                row.append(block)
            plane.append(row)
        out.append(plane)
    return out


def _read_magnitude(dec: BitDecoder, gt1: int, level: list[int]) -> int:
    """|v| from its unary decisions under contexts gt1 (|v| > 1) and level[k] (|v| > k), then exp-Golomb."""
    if not dec.bit(gt1):
        return 1
    for k in range(2, UNARY_MAX + 1):
        if not dec.bit(level[k]):
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
