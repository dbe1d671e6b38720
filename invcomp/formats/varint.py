"""Unsigned LEB128 varints (7 bits per byte, least significant group first, high bit = more
follows), shared by the .icz header, its extension block and the .icza archive."""
from __future__ import annotations

from invcomp.errors import InvcompError


def encode(n: int) -> bytes:
    if n < 0:
        raise InvcompError("a varint must be >= 0")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def decode(data: bytes, pos: int, max_bytes: int, what: str) -> tuple[int, int]:
    """(value, position after it), reading at most max_bytes bytes; errors name `what`
    ("corrupt <what> (...)")."""
    value = 0
    for i in range(max_bytes):
        if pos + i >= len(data):
            raise InvcompError(f"corrupt or truncated {what} (a number runs past its end)")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise InvcompError(f"corrupt {what} (number longer than {max_bytes} bytes)")
