"""An adaptive binary arithmetic coder: every decision is one bit under a context whose probability
adapts as bits are coded, in integer arithmetic only (so the decoder's probabilities never depend on
floating point: the same bits decode to the same decisions on every machine).

The interval arithmetic is `arith.py`'s (Witten-Neal-Cleary, 32-bit `low`/`high`, pending bits, the
same termination). A context is an integer p0 in [PROB_MIN, TOTAL - PROB_MIN], the probability of a
0 bit in 1/65536; after each bit it moves 1/2^RATE of the way towards the bit just seen (integer shift).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from invcomp.formats.arith import TOTAL, TOTAL_BITS, first_value, renormalize, unpack_bits

_PRECISION = 32
_FULL = (1 << _PRECISION) - 1
_HALF = 1 << (_PRECISION - 1)
_QUARTER = 1 << (_PRECISION - 2)
RATE = 4  # adaptation speed: small files (a few thousand decisions) want fast adaptation
PROB_MIN = 1 << 6
HALF_PROB = TOTAL // 2
BYPASS = -1  # the context of a bypass bit in `BitEncoder.code`
_PROB_MAX = TOTAL - PROB_MIN


def _adapt(p0: int, bit: int) -> int:
    p0 = p0 - (p0 >> RATE) if bit else p0 + ((TOTAL - p0) >> RATE)
    return min(max(p0, PROB_MIN), TOTAL - PROB_MIN)


class BitEncoder:
    """Bits in, bytes out. `contexts` is the list of starting probabilities (changed in place)."""

    def __init__(self, contexts: Sequence[int]):
        self.p = list(contexts)
        self.low, self.high, self.pending = 0, _FULL, 0
        self.out: list[int] = []

    def _code(self, bit: int, p0: int) -> None:
        span = self.high - self.low + 1
        split = self.low + (span * p0 >> TOTAL_BITS) - 1
        if bit:
            self.low = split + 1
        else:
            self.high = split
        low, high, out = self.low, self.high, self.out
        while True:
            if high < _HALF:
                out.append(0)
                out.extend([1] * self.pending)
                self.pending = 0
            elif low >= _HALF:
                out.append(1)
                out.extend([0] * self.pending)
                self.pending = 0
                low -= _HALF
                high -= _HALF
            elif low >= _QUARTER and high < _HALF + _QUARTER:
                self.pending += 1
                low -= _QUARTER
                high -= _QUARTER
            else:
                break
            low, high = 2 * low, 2 * high + 1
        self.low, self.high = low, high

    def bit(self, bit: int, ctx: int) -> None:
        self._code(bit, self.p[ctx])
        self.p[ctx] = _adapt(self.p[ctx], bit)

    def bypass(self, bit: int) -> None:
        self._code(bit, HALF_PROB)

    def code(self, bits: Sequence[int], ctxs: Sequence[int]) -> None:
        """`bit(b, c)` for each pair, `bypass(b)` where c is BYPASS: the same output, in one loop with
        everything in locals (about 3x faster than a method call per decision)."""
        p, out, pending = self.p, self.out, self.pending
        low, high = self.low, self.high
        rate, lo_p, hi_p = RATE, PROB_MIN, TOTAL - PROB_MIN
        for bit, ctx in zip(bits, ctxs):
            p0 = HALF_PROB if ctx < 0 else p[ctx]
            split = low + ((high - low + 1) * p0 >> TOTAL_BITS) - 1
            if bit:
                low = split + 1
            else:
                high = split
            if ctx >= 0:
                p0 = p0 - (p0 >> rate) if bit else p0 + ((TOTAL - p0) >> rate)
                p[ctx] = lo_p if p0 < lo_p else hi_p if p0 > hi_p else p0
            while True:
                if high < _HALF:
                    out.append(0)
                    if pending:
                        out.extend([1] * pending)
                        pending = 0
                elif low >= _HALF:
                    out.append(1)
                    if pending:
                        out.extend([0] * pending)
                        pending = 0
                    low -= _HALF
                    high -= _HALF
                elif low >= _QUARTER and high < _HALF + _QUARTER:
                    pending += 1
                    low -= _QUARTER
                    high -= _QUARTER
                else:
                    break
                low, high = 2 * low, 2 * high + 1
        self.low, self.high, self.pending = low, high, pending

    def finish(self) -> bytes:
        self.pending += 1
        bit = 0 if self.low < _QUARTER else 1
        out = self.out + [bit] + [1 - bit] * self.pending
        while out and out[-1] == 0:  # the decoder reads missing bits as zeros
            out.pop()
        return np.packbits(np.array(out, dtype=np.uint8)).tobytes()  # pads the last byte with zeros


class BitDecoder:
    """Bytes in, bits out; reads past the end as zero bits (a decoder always terminates: the caller
    decodes a bounded number of decisions)."""

    def __init__(self, data: bytes, contexts: Sequence[int]):
        self.p = [*contexts, HALF_PROB]  # the last one: bypass decisions'
        self._bypass = len(self.p) - 1
        self.bits = unpack_bits(data)
        self.value, self.pos = first_value(self.bits)
        self.low, self.high = 0, _FULL

    def bit(self, ctx: int) -> int:
        """One decision under context ctx, then the context's adaptation: everything in locals, as in the
        encoder's `code` loop (a decoder goes a decision at a time: the syntax picks the next context
        from the bits decoded so far)."""
        p = self.p
        p0 = p[ctx]
        low, high, value = self.low, self.high, self.value
        split = low + ((high - low + 1) * p0 >> TOTAL_BITS) - 1
        if value > split:
            b, low = 1, split + 1
            p0 -= p0 >> RATE
        else:
            b, high = 0, split
            p0 += (TOTAL - p0) >> RATE
        p[ctx] = PROB_MIN if p0 < PROB_MIN else _PROB_MAX if p0 > _PROB_MAX else p0
        if high < _HALF or low >= _HALF or (low >= _QUARTER and high < _HALF + _QUARTER):  # else nothing to do
            low, high, value, self.pos = renormalize(low, high, value, self.bits, self.pos)
        self.low, self.high, self.value = low, high, value
        return b

    def bypass(self) -> int:
        """A decision at probability 1/2: `bit` on a context of its own, set back to 1/2 every time."""
        self.p[self._bypass] = HALF_PROB
        return self.bit(self._bypass)
