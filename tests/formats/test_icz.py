import numpy as np
import pytest

from invcomp.errors import InvcompError
from invcomp.formats import bitpack
from invcomp.formats.icz import (
    ENCODING_GAUSS,
    ENCODING_RAW,
    ENCODING_ZSTD,
    Header,
    decode_file,
    encode_file,
    pack_header,
    unpack_header,
)


def test_header_exact_bytes():
    h = Header(b"\x01\x02\x03", 4, ENCODING_RAW, None)
    assert pack_header(h) == b"IC\x01\x01\x02\x03\x04"
    h2 = Header(b"\xaa\xbb\xcc", 12, ENCODING_ZSTD, (300, 5))
    # flags: bits 12 | zstd << 4 | size flag 0x40 = 0x5c; 300 = varint ac 02; 5 = 05
    assert pack_header(h2) == b"IC\x01\xaa\xbb\xcc\x5c\xac\x02\x05"
    for header in (h, h2):
        data = pack_header(header)
        assert unpack_header(data) == (header, len(data))


@pytest.mark.parametrize("bits", range(2, 13))
def test_codes_round_trip(bits):
    codes = np.random.default_rng(bits).integers(0, 1 << bits, 37)
    packed = bitpack.pack(codes, bits)
    assert len(packed) == bitpack.packed_size(37, bits)
    assert np.array_equal(bitpack.unpack(packed, 37, bits), codes)


def test_smallest_encoding_is_chosen_and_recorded():
    header = Header(b"abc", 4, ENCODING_RAW, None)
    random_codes = np.random.default_rng(0).integers(0, 16, 64)
    data = encode_file(header, random_codes, 3.0)
    assert len(data) == 7 + 32 and unpack_header(data)[0].encoding == ENCODING_RAW
    flat = np.zeros(512, dtype=np.int64)
    data = encode_file(header, flat, 3.0)
    h, codes = decode_file(data, 512, 3.0)
    assert h.encoding == ENCODING_ZSTD and len(data) < 7 + 256
    assert np.array_equal(codes, flat)


def test_every_truncation_and_garbage_raises_own_error():
    uniform = np.arange(20) % 32
    central = np.array([15, 16, 14, 17, 16, 15, 16, 13, 18, 16] * 2)
    for codes, encoding in ((uniform, ENCODING_RAW), (central, ENCODING_GAUSS)):
        data = encode_file(Header(b"abc", 5, ENCODING_RAW, (640, 480)), codes, 3.0)
        assert unpack_header(data)[0].encoding == encoding
        assert np.array_equal(decode_file(data, 20, 3.0)[1], codes)
        for cut in range(len(data)):
            with pytest.raises(InvcompError):
                decode_file(data[:cut], 20, 3.0)
        with pytest.raises(InvcompError):
            decode_file(data + b"\x01", 20, 3.0)
    for garbage in (b"", b"\x89PNG\r\n\x1a\n" + bytes(40), bytes(range(50))):
        with pytest.raises(InvcompError):
            decode_file(garbage, 20, 3.0)


def test_bad_version_and_reserved_flag():
    data = bytearray(encode_file(Header(b"abc", 4, ENCODING_RAW, None), np.zeros(8, int), 3.0))
    bad = bytes(data[:2]) + b"\x03" + bytes(data[3:])
    with pytest.raises(InvcompError, match="version 3"):
        unpack_header(bad)
    # a version 1 file relabelled as version 2 has no valid base length: refused by split_file, not misread
    with pytest.raises(InvcompError):
        decode_file(bytes(data[:2]) + b"\x02" + bytes(data[3:]), 8, 3.0)
    data[6] |= 0x80  # the extension flag, with no valid extension block after it
    with pytest.raises(InvcompError, match="extension"):
        unpack_header(bytes(data))


def test_header_validation():
    with pytest.raises(InvcompError):
        Header(b"abc", 13, ENCODING_RAW, None)
    with pytest.raises(InvcompError):
        Header(b"abc", 4, ENCODING_RAW, (0, 10))
    with pytest.raises(InvcompError):
        Header(b"abc", 4, ENCODING_RAW, (70000, 10))


PINNED_TABLES_SHA256 = "53a1efddd955e69cf97cc1236c2b8474b7362b61e3e6af4d8ee61dfb661aefea"


def test_gauss_tables_are_pinned():
    """The arithmetic coder's tables are part of the format: any change breaks old files."""
    import hashlib

    from invcomp.formats.arith import TOTAL, gaussian_cumulative

    tables = [gaussian_cumulative(b, 3.0) for b in range(2, 13)]
    assert all(t[0] == 0 and t[-1] == TOTAL and all(a < b for a, b in zip(t, t[1:])) for t in tables)
    digest = hashlib.sha256(repr(tables).encode()).hexdigest()
    assert digest == PINNED_TABLES_SHA256


@pytest.mark.parametrize("bits", [2, 4, 7, 12])
def test_arithmetic_round_trip(bits):
    from invcomp.formats import arith

    cum = arith.gaussian_cumulative(bits, 3.0)
    rng = np.random.default_rng(bits)
    for _ in range(20):
        codes = rng.integers(0, 1 << bits, rng.integers(1, 100)).tolist()
        assert arith.decode(arith.encode(codes, cum), len(codes), cum) == codes
