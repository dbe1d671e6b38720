"""The .icz file: a 7-byte header (more when the original size is stored) and the latent codes.

See docs/FORMAT.md for the byte layout. Pure functions: bytes in, bytes out.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from invcomp.errors import InvcompError
from invcomp.formats import arith, bitpack, varint

if TYPE_CHECKING:
    import numpy as np
# numpy and zstandard are imported where the payload is coded, so that reading a header (`invcomp
# info`) stays fast.

MAGIC = b"IC"
MIN_BITS, MAX_BITS = 2, 12  # bits per latent dimension (a 4-bit header field)
VERSION = 1  # a file of the latent alone (and kept pixels)
VERSION_PARTS = 2  # the same, then enhancement parts: written only when a file has some
MAX_PARTS = 16
MAX_PART_BYTES = 1 << 21
MAX_BASE_BYTES = 1 << 14  # the raw packing of 1024 codes at 12 bits is 1536 bytes
FINGERPRINT_BYTES = 3
MAX_SIDE = 65535
# A stored original size may not exceed the largest image invcomp reads (imageio.MAX_INPUT_PIXELS):
# no encoder writes more, and `decode --original-size` would otherwise allocate up to 12.9 GB.
MAX_ORIGINAL_PIXELS = 64_000_000
# Window limit for the zstd payload: our frames' windows are at most 2 KiB (payloads are <= 1536
# bytes), so a frame asking for more is hostile; zstd's own default would allow 128 MiB.
_ZSTD_MAX_WINDOW = 1 << 16

ENCODING_RAW = 0  # codes bit-packed, most significant bit first
ENCODING_ZSTD = 1  # the bit-packed codes as a magicless zstd frame
ENCODING_GAUSS = 2  # arithmetic-coded under N(0, 1) on the levels (arith.py), then 1 check byte
ENCODING_NAMES = {ENCODING_RAW: "raw", ENCODING_ZSTD: "zstd", ENCODING_GAUSS: "gauss"}

_SIZE_FLAG = 0x40
_EXTENSION_FLAG = 0x80  # an extension block follows the header (mask + assistant pixels, inpaint.py)
MAX_EXTENSION_BYTES = 1 << 16
# The extension block's first byte names its mask scheme (invcomp.masks.schemes): ids are part of
# the format, so the table lives here; a new scheme is appended, never inserted.
MASK_SCHEMES = ("center", "random", "block", "edges", "edges+random", "user")


@dataclass(frozen=True)
class Header:
    fingerprint: bytes  # first 3 bytes of the generator weights' sha256
    bits: int  # bits per latent dimension, 2..12
    encoding: int  # ENCODING_RAW or ENCODING_ZSTD
    original_size: tuple[int, int] | None  # (width, height) when it differs from the model's
    extension: bytes | None = None  # the extension block (flag bit 7), opaque here; see inpaint.py
    version: int = VERSION  # VERSION_PARTS: a base payload length and enhancement parts follow (split_file)

    def __post_init__(self) -> None:
        if self.extension is not None and not 1 <= len(self.extension) <= MAX_EXTENSION_BYTES:
            raise InvcompError(f"extension block must be 1..{MAX_EXTENSION_BYTES} bytes")
        if len(self.fingerprint) != FINGERPRINT_BYTES:
            raise InvcompError("fingerprint must be 3 bytes")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise InvcompError(f"bits must be {MIN_BITS}..{MAX_BITS}, not {self.bits}")
        if self.encoding not in ENCODING_NAMES:
            raise InvcompError(f"unknown payload encoding {self.encoding}")
        if self.original_size is not None and not all(1 <= s <= MAX_SIDE for s in self.original_size):
            raise InvcompError(f"original size must be 1..{MAX_SIDE} per side, not {self.original_size}")
        if self.original_size is not None and self.original_size[0] * self.original_size[1] > MAX_ORIGINAL_PIXELS:
            w, h = self.original_size
            raise InvcompError(f"original size {w}x{h} is more than {MAX_ORIGINAL_PIXELS} pixels")


def pack_header(h: Header) -> bytes:
    flags = h.bits | (h.encoding << 4) | (_SIZE_FLAG if h.original_size else 0)
    flags |= _EXTENSION_FLAG if h.extension is not None else 0
    out = MAGIC + bytes([h.version]) + h.fingerprint + bytes([flags])
    if h.original_size:
        out += varint.encode(h.original_size[0]) + varint.encode(h.original_size[1])
    if h.extension is not None:
        out += varint.encode(len(h.extension)) + h.extension
    return out


def _read_extension(data: bytes, pos: int) -> tuple[bytes, int]:
    """The extension block after the header: a varint length (1..MAX_EXTENSION_BYTES), then the bytes."""
    length, pos = varint.decode(data, pos, 3, "file header (extension length)")
    if not 1 <= length <= MAX_EXTENSION_BYTES:
        raise InvcompError(f"corrupt header (extension block of {length} bytes)")
    if pos + length > len(data):
        raise InvcompError("truncated file (extension block incomplete)")
    return bytes(data[pos : pos + length]), pos + length


def unpack_header(data: bytes) -> tuple[Header, int]:
    """The header and the offset where the payload starts."""
    if len(data) < 7:
        raise InvcompError("not an invcomp file (too short)" if data[:2] != MAGIC else "truncated file (header incomplete)")
    if data[:2] != MAGIC:
        raise InvcompError("not an invcomp file (bad magic)")
    if data[2] not in (VERSION, VERSION_PARTS):
        raise InvcompError(f"unsupported .icz version {data[2]} (this invcomp reads versions {VERSION} and {VERSION_PARTS}; "
                           "a later release may read it)")
    flags = data[6]
    pos, size, extension = 7, None, None
    if flags & _SIZE_FLAG:
        w, pos = varint.decode(data, pos, 3, "file header (original size)")  # 3 groups cover MAX_SIDE
        h, pos = varint.decode(data, pos, 3, "file header (original size)")
        size = (w, h)
    if flags & _EXTENSION_FLAG:
        extension, pos = _read_extension(data, pos)
    return Header(bytes(data[3:6]), flags & 0x0F, (flags >> 4) & 0x03, size, extension, data[2]), pos


def split_file(data: bytes) -> tuple[Header, bytes, list[bytes]]:
    """Header, base payload and enhancement parts (as stored) of a whole file of either version.

    Version 2: after the header, the base payload's length (varint) and the payload, then parts,
    each a varint length and its bytes, to the end of the file. A file cut after the base or
    after any complete part is a valid file; a part cut short is refused."""
    header, pos = unpack_header(data)
    if header.version == VERSION:
        return header, bytes(data[pos:]), []
    n, pos = varint.decode(data, pos, 2, "file (base length)")
    if pos + n > len(data):
        raise InvcompError("truncated file (base payload incomplete)")
    base, pos = bytes(data[pos : pos + n]), pos + n
    parts = []
    while pos < len(data):
        if len(parts) == MAX_PARTS:
            raise InvcompError(f"corrupt file (more than {MAX_PARTS} enhancement parts)")
        n, pos = varint.decode(data, pos, 3, "file (part length)")
        if not 1 <= n <= MAX_PART_BYTES:
            raise InvcompError(f"corrupt file (enhancement part of {n} bytes)")
        if pos + n > len(data):
            raise InvcompError(f"truncated file (enhancement part {len(parts) + 1} incomplete)")
        parts.append(bytes(data[pos : pos + n]))
        pos += n
    return header, base, parts


def join_file(header: Header, base: bytes, parts: list[bytes]) -> bytes:
    """A whole file: version 1 when there are no parts (the bytes release 0.1.0 writes), else version 2."""
    if len(parts) > MAX_PARTS or not all(1 <= len(p) <= MAX_PART_BYTES for p in parts):
        raise InvcompError(f"at most {MAX_PARTS} enhancement parts of 1..{MAX_PART_BYTES} bytes each")
    if not parts:
        return pack_header(replace(header, version=VERSION)) + base
    out = pack_header(replace(header, version=VERSION_PARTS)) + varint.encode(len(base)) + base
    return out + b"".join(varint.encode(len(p)) + p for p in parts)


def with_parts(data: bytes, parts: list[bytes]) -> bytes:
    """The file `data` with its enhancement parts replaced by `parts` (none: the base alone)."""
    header, base, _ = split_file(data)
    return join_file(header, base, parts)



def _check_byte(coded: bytes) -> int:
    """Low byte of the CRC-32 of the arithmetic-coded bytes: a variable-length payload has no
    length field, so this is what makes truncation and damage detectable (255 in 256)."""
    return zlib.crc32(coded) & 0xFF


def _with_check(coded: bytes) -> bytes:
    return coded + bytes([_check_byte(coded)])


def _zstd_params() -> dict:
    import zstandard

    return dict(format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_content_size=False, write_checksum=False,
                write_dict_id=False)


def encode_payload(codes: np.ndarray, bits: int, latent_range: float) -> tuple[int, bytes]:
    """The smallest of the supported encodings of the codes: (encoding id, bytes); raw on ties."""
    raw = bitpack.pack(codes, bits)
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(22, source_size=len(raw), **_zstd_params())
    candidates = [
        (ENCODING_RAW, raw),
        (ENCODING_GAUSS, _with_check(arith.encode([int(c) for c in codes], arith.gaussian_cumulative(bits, latent_range)))),
        (ENCODING_ZSTD, zstandard.ZstdCompressor(compression_params=params).compress(raw)),
    ]
    return min(candidates, key=lambda c: len(c[1]))


def estimated_payload_sizes(codes: np.ndarray, bits: int, latent_range: float) -> np.ndarray:
    """Rows of codes (m, n) -> about the payload bytes `encode_payload` would write for each: the Gaussian
    code's ideal length (plus its check byte), or the raw packing where smaller. For choosing which bit
    depths are worth fitting at a byte budget, never for writing: zstd can beat it, by a few bytes."""
    import numpy as np

    cum = np.asarray(arith.gaussian_cumulative(bits, latent_range), dtype=np.float64)
    ideal = -np.log2(np.diff(cum) / arith.TOTAL)[np.asarray(codes, dtype=np.int64)].sum(-1)
    return np.minimum(np.ceil(ideal / 8) + 1, bitpack.packed_size(codes.shape[-1], bits))


def decode_payload(payload: bytes, encoding: int, n: int, bits: int, latent_range: float) -> np.ndarray:
    expected = bitpack.packed_size(n, bits)
    if encoding != ENCODING_RAW and len(payload) > expected:
        # a compressed payload is only ever written when it is smaller than the raw packing
        raise InvcompError(f"corrupt payload ({len(payload)} bytes, more than the {expected} of the raw packing)")
    if encoding == ENCODING_GAUSS:
        if len(payload) < 1 or _check_byte(payload[:-1]) != payload[-1]:
            raise InvcompError("corrupt payload (check byte does not match: truncated or damaged file)")
        payload = payload[:-1]
        cum = arith.gaussian_cumulative(bits, latent_range)
        codes = arith.decode(payload, n, cum)
        if arith.encode(codes, cum) != payload:  # only the canonical coding is valid
            raise InvcompError("corrupt payload (arithmetic-coded codes do not re-encode to the file)")
        import numpy as np

        return np.asarray(codes, dtype=np.int64)
    if encoding == ENCODING_ZSTD:
        payload = _unzstd(payload, expected)
    return bitpack.unpack(payload, n, bits)


def _unzstd(payload: bytes, expected: int) -> bytes:
    """One magicless zstd frame that must decompress to exactly `expected` bytes, with nothing after it.

    Fed one byte at a time so that a hostile frame (a forged content size, RLE blocks) can never
    make more than one block of output beyond `expected`: zstd's one-shot decompress() would
    allocate whatever content size the frame header declares, ignoring max_output_size."""
    import zstandard

    dctx = zstandard.ZstdDecompressor(format=zstandard.FORMAT_ZSTD1_MAGICLESS, max_window_size=_ZSTD_MAX_WINDOW)
    dobj = dctx.decompressobj()
    out = bytearray()
    try:
        for i in range(len(payload)):
            out += dobj.decompress(payload[i : i + 1])
            if len(out) > expected:
                raise InvcompError(f"corrupt zstd payload (decompresses to more than {expected} bytes)")
            if dobj.eof:
                if i + 1 != len(payload):
                    raise InvcompError("corrupt zstd payload (bytes after the end of the frame)")
                return bytes(out)
    except zstandard.ZstdError as e:
        raise InvcompError(f"corrupt zstd payload ({e})") from None
    raise InvcompError("corrupt zstd payload (truncated frame)")


def encode_file(header: Header, codes: np.ndarray, latent_range: float, parts: list[bytes] | None = None) -> bytes:
    """Choose the smallest payload encoding, record it in the header, return the whole file."""
    encoding, payload = encode_payload(codes, header.bits, latent_range)
    h = Header(header.fingerprint, header.bits, encoding, header.original_size, header.extension)
    return join_file(h, payload, parts or [])


def decode_file(data: bytes, n: int, latent_range: float) -> tuple[Header, np.ndarray]:
    """Header and the n latent codes of a whole file (n and the range come from the model); the
    enhancement parts are `split_file`'s."""
    header, base, _ = split_file(data)
    return header, decode_payload(base, header.encoding, n, header.bits, latent_range)
