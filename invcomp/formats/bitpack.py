"""Fixed-width bit packing of integer codes, most significant bit first, zero-padded to a byte:
the raw payload of .icz files and of assistant pixels."""
from __future__ import annotations

from typing import TYPE_CHECKING

from invcomp.errors import InvcompError

if TYPE_CHECKING:
    import numpy as np


def packed_size(n: int, bits: int) -> int:
    return (n * bits + 7) // 8


def pack(codes: np.ndarray, bits: int) -> bytes:
    """Codes (each 0 <= c < 2**bits) -> bytes."""
    import numpy as np

    codes = np.asarray(codes, dtype=np.int64).ravel()
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << bits):
        raise InvcompError(f"codes out of range for {bits} bits")
    shifts = np.arange(bits - 1, -1, -1)
    return np.packbits(((codes[:, None] >> shifts) & 1).astype(np.uint8).ravel()).tobytes()


def unpack(data: bytes, n: int, bits: int, what: str = "payload") -> np.ndarray:
    """n codes from exactly packed_size(n, bits) bytes; errors say "corrupt <what> (...)"."""
    if len(data) != packed_size(n, bits):
        raise InvcompError(f"corrupt {what} ({len(data)} bytes, expected {packed_size(n, bits)})")
    import numpy as np

    b = np.unpackbits(np.frombuffer(data, np.uint8))[: n * bits].reshape(n, bits).astype(np.int64)
    return (b << np.arange(bits - 1, -1, -1)).sum(1)
