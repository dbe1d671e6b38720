"""Bounded decoding (issue 7): .icz headers and zstandard frames that ask for huge work are refused before
it is done."""

import numpy as np
import pytest
import zstandard
from conftest import one_line_failure

from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.formats import varint
from invcomp.formats.icz import (
    ENCODING_GAUSS,
    ENCODING_RAW,
    ENCODING_ZSTD,
    MAX_ORIGINAL_PIXELS,
    Header,
    decode_file,
    encode_file,
    pack_header,
    unpack_header,
)
from invcomp.io import images as imageio


def _with_size_field(data: bytes, w: int, h: int) -> bytes:
    """A file's header rewritten to store w x h, bypassing Header's checks (as a hostile writer would)."""
    header, pos = unpack_header(data)
    return data[:6] + bytes([data[6] | 0x40]) + varint.encode(w) + varint.encode(h) + data[pos:]


def test_output_size_cap_matches_the_input_cap():
    assert MAX_ORIGINAL_PIXELS == imageio.MAX_INPUT_PIXELS
    Header(b"abc", 4, 0, (8000, 8000))
    Header(b"abc", 4, 0, (65535, 976))
    with pytest.raises(InvcompError, match="more than 64000000 pixels"):
        Header(b"abc", 4, 0, (8001, 8000))


def test_huge_declared_output_refused_before_decoding(tmp_path, tiny_model, tiny_weights):
    good = encode_file(Header(tiny_model.fingerprint, 4, 0, None), np.arange(8) % 16, 3.0)
    hostile = _with_size_field(good, 65535, 65535)
    with pytest.raises(InvcompError, match="65535x65535 is more than"):
        unpack_header(hostile)
    with pytest.raises(InvcompError, match="more than"):
        Codec(tiny_model, "cpu").decompress(hostile, original_size=True)
    path = tmp_path / "huge.icz"
    path.write_bytes(hostile)
    one_line_failure(["decode", str(path), "--original-size", "--model", str(tiny_weights)], "more than 64000000 pixels")
    one_line_failure(["info", str(path)], "more than 64000000 pixels")
    assert not path.with_suffix(".png").exists()
    ok = _with_size_field(good, 2000, 1000)
    assert Codec(tiny_model, "cpu").decompress(ok, original_size=True).shape == (1000, 2000, 3)


def _zstd_file(n=96, bits=4) -> tuple[bytes, int]:
    data = encode_file(Header(b"abc", bits, 0, None), np.full(n, 7, np.int64), 3.0)
    header, pos = unpack_header(data)
    assert header.encoding == ENCODING_ZSTD
    return data, pos


def _magicless(raw: bytes, content_size: bool = False, window_log: int = 0) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(
        3, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_content_size=content_size, write_checksum=False,
        write_dict_id=False, window_log=window_log)
    return zstandard.ZstdCompressor(compression_params=params).compress(raw)


def test_zstd_frame_declaring_a_huge_size_is_refused():
    """python-zstandard's one-shot decompress allocates the content size a frame declares (a forged
    2^40 raised MemoryError); the decoder must refuse such frames without allocating."""
    data, pos = _zstd_file()
    frame = _magicless(bytes(48), content_size=True)
    descriptor_size = {0: 1, 1: 2, 2: 4, 3: 8}[frame[0] >> 6]
    body = frame[1 + descriptor_size:]
    for declared in (1 << 40, (1 << 64) - 1, 1 << 31, 49):
        forged = bytes([0xE0]) + declared.to_bytes(8, "little") + body  # single segment, 8-byte size
        with pytest.raises(InvcompError, match="zstd"):
            decode_file(data[:pos] + forged, 96, 3.0)
    ok = bytes([0xE0]) + (48).to_bytes(8, "little") + body  # the honest size decodes
    assert np.array_equal(decode_file(data[:pos] + ok, 96, 3.0)[1], np.zeros(96))


def test_zstd_bomb_window_and_trailing_bytes_refused():
    data, pos = _zstd_file()
    bomb = _magicless(bytes(10_000_000))  # 10 MB of zeros in a few hundred bytes; 48 expected
    assert len(bomb) < 48 * 20
    with pytest.raises(InvcompError):  # too long for a 48-byte raw packing, or more output than 48 bytes
        decode_file(data[:pos] + bomb, 96, 3.0)
    small_bomb = _magicless(bytes(60_000), window_log=16)  # a window the decoder accepts
    assert len(small_bomb) <= 48
    with pytest.raises(InvcompError, match="more than 48 bytes"):
        decode_file(data[:pos] + small_bomb, 96, 3.0)
    payload = bytearray(data[pos:])
    payload[1] = 0xF8  # window descriptor: 2^41 bytes
    with pytest.raises(InvcompError, match="zstd"):
        decode_file(data[:pos] + bytes(payload), 96, 3.0)
    with pytest.raises(InvcompError, match="after the end of the frame"):
        decode_file(data + b"\x00", 96, 3.0)
    assert np.array_equal(decode_file(data, 96, 3.0)[1], np.full(96, 7))


def test_compressed_payload_longer_than_raw_is_refused_before_decoding():
    gauss = encode_file(Header(b"abc", 5, 0, None), np.array([15, 16, 14, 17, 16, 15, 16, 13] * 4), 3.0)
    assert unpack_header(gauss)[0].encoding == ENCODING_GAUSS
    for encoding, junk in ((ENCODING_GAUSS, 21), (ENCODING_ZSTD, 21), (ENCODING_GAUSS, 10_000_000)):
        head = pack_header(Header(b"abc", 5, encoding, None))
        with pytest.raises(InvcompError, match="more than the 20 of the raw packing"):
            decode_file(head + bytes(junk), 32, 3.0)
    with pytest.raises(InvcompError, match="expected 20"):
        decode_file(pack_header(Header(b"abc", 5, ENCODING_RAW, None)) + bytes(21), 32, 3.0)
