"""Entropy tables of .icza segments: the N(0,1) prior or the segment's own level histogram."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where codes are handled, so that `ls` stays fast
    import numpy as np

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache

from invcomp.errors import InvcompError
from invcomp.formats import arith, varint
from invcomp.formats.icza.blocks import TABLE_GAUSS, TABLE_HISTOGRAM, read_varint


def histogram_cumulative(counts: Sequence[int]) -> tuple[int, ...]:
    """Integer cumulative frequencies (sum 2**16, every level >= 1) from level counts:
    f_i = 1 + c_i * (2**16 - L) // sum(c); the most frequent level (lowest on ties) takes the rest."""
    return arith.cumulative_from_weights([int(c) for c in counts])


def table_cumulative(kind: int, table: bytes, bits: int, latent_range: float) -> tuple[int, ...]:
    if kind == TABLE_GAUSS:
        if table:
            raise InvcompError("corrupt segment header (gauss table has data)")
        return arith.gaussian_cumulative(bits, latent_range)
    if kind == TABLE_HISTOGRAM:
        counts, pos = [], 0
        for _ in range(1 << bits):
            c, pos = read_varint(table, pos)
            counts.append(c)
        if pos != len(table):
            raise InvcompError("corrupt segment header (table length)")
        return _cum_cached(tuple(counts))
    raise InvcompError(f"corrupt segment header (unknown table kind {kind})")


@lru_cache(maxsize=256)
def _cum_cached(counts: tuple[int, ...]) -> tuple[int, ...]:
    return histogram_cumulative(counts)


def _estimated_bits(counts: Sequence[int], cum: tuple[int, ...]) -> float:
    return sum(c * (arith.TOTAL_BITS - math.log2(cum[i + 1] - cum[i])) for i, c in enumerate(counts) if c)


def choose_table(counts: Sequence[int], bits: int, latent_range: float) -> tuple[int, bytes]:
    """The cheaper table for codes with these level counts: the N(0,1) prior (no table bytes)
    or the histogram itself (its counts as varints); ties go to the prior."""
    gauss = _estimated_bits(counts, arith.gaussian_cumulative(bits, latent_range))
    table = b"".join(varint.encode(int(c)) for c in counts)
    hist = _estimated_bits(counts, histogram_cumulative(counts)) + 8 * len(table)
    return (TABLE_HISTOGRAM, table) if hist < gauss else (TABLE_GAUSS, b"")


def level_counts(codes: Iterable[np.ndarray], bits: int) -> np.ndarray:
    import numpy as np

    counts = np.zeros(1 << bits, np.int64)
    for c in codes:
        counts += np.bincount(np.asarray(c, np.int64), minlength=1 << bits)
    return counts


def zeroth_order_entropy_bits(counts: np.ndarray) -> float:
    """Total bits of the codes under their own empirical level distribution (the target bound)."""
    import numpy as np

    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    p = counts[counts > 0] / total
    return float(-(counts[counts > 0] * np.log2(p)).sum()) if total else 0.0
