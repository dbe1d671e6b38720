"""Reading the numeric arrays of a MATLAB version 5 .mat file, without scipy.

Oxford Flowers-102 ships its labels and split as `imagelabels.mat` and `setid.mat`;
torchvision reads them with `scipy.io.loadmat`, which invcomp does not depend on. This reader
covers what those files hold (and what MATLAB's `save` writes for plain numeric matrices): a
128-byte header, then data elements, each a `miMATRIX` (real, full, numeric class) or a
`miCOMPRESSED` zlib stream holding one. Cell arrays, structs, sparse and complex matrices and
version 7.3 (HDF5) files are refused with an InvcompError.

Format: "MAT-File Format", The MathWorks, version 5 and later (chapter 1).
"""
from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from invcomp.errors import InvcompError

MAX_BYTES = 64 << 20  # a decompressed element larger than this is refused (the Oxford files are ~100 kB)

MI_MATRIX, MI_COMPRESSED = 14, 15
# data element types (the stored type; MATLAB may store a double matrix as uint8 when it fits)
_MI_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
# array classes (the type the values have in MATLAB)
_MX_CLASSES = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
_COMPLEX_FLAG = 0x0800


def load_mat(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """{name: array} for every numeric matrix in a MATLAB v5 file (column-major order undone)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InvcompError(f"{p}: cannot read ({e.strerror})") from None
    try:
        return parse_mat(data)
    except InvcompError as e:
        raise InvcompError(f"{p}: {e}") from None


def parse_mat(data: bytes) -> dict[str, np.ndarray]:
    if len(data) < 128:
        raise InvcompError("not a MATLAB 5 .mat file (shorter than its 128-byte header)")
    if data[:4] == b"\x89HDF" or data[512:516] == b"\x89HDF" or data[124:126] == b"\x00\x02":
        raise InvcompError("MATLAB 7.3 (HDF5) .mat files are not supported")
    endian = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if endian is None:
        raise InvcompError("not a MATLAB 5 .mat file (no endian indicator)")
    out: dict[str, np.ndarray] = {}
    pos = 128
    while pos + 8 <= len(data):
        kind, body, pos = _element(data, pos, endian)
        if kind == MI_COMPRESSED:
            body = _inflate(body)
            kind, body, _ = _element(body, 0, endian)
        if kind != MI_MATRIX:
            continue  # other top-level elements carry nothing we read
        name, array = _matrix(body, endian)
        out[name] = array
    return out


def _element(data: bytes, pos: int, endian: str) -> tuple[int, bytes, int]:
    """(type, contents, position after the element, padding included) of the element at pos."""
    if pos + 8 > len(data):
        raise InvcompError("truncated .mat file (data element tag)")
    kind, size = np.frombuffer(data, f"{endian}u4", 2, pos).tolist()
    if kind >> 16:  # small data element: type and size in one word, up to 4 bytes of data
        kind, size = kind & 0xFFFF, kind >> 16
        if size > 4:
            raise InvcompError("corrupt .mat file (small data element longer than 4 bytes)")
        return kind, bytes(data[pos + 4 : pos + 4 + size]), pos + 8
    start, end = pos + 8, pos + 8 + size
    if end > len(data) or size > MAX_BYTES:
        raise InvcompError("truncated .mat file (data element runs past the end)")
    after = end if kind == MI_COMPRESSED else start + (size + 7) // 8 * 8
    return kind, bytes(data[start:end]), min(after, len(data))


def _inflate(body: bytes) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(body, MAX_BYTES)
    except zlib.error as e:
        raise InvcompError(f"corrupt compressed element in .mat file ({e})") from None
    if d.unconsumed_tail:
        raise InvcompError(f"compressed element in .mat file is larger than {MAX_BYTES} bytes")
    return out


def _matrix(body: bytes, endian: str) -> tuple[str, np.ndarray]:
    """Name and array of a miMATRIX element's contents: flags, dimensions, name, real part."""
    parts = []
    pos = 0
    while pos + 8 <= len(body) and len(parts) < 4:
        kind, content, pos = _element(body, pos, endian)
        parts.append((kind, content))
    if len(parts) < 3:
        raise InvcompError("corrupt .mat file (matrix without flags, dimensions and name)")
    (_, flags), (dim_kind, dims_raw), (_, name_raw) = parts[:3]
    if len(flags) < 4:
        raise InvcompError("corrupt .mat file (array flags)")
    word = int(np.frombuffer(flags, f"{endian}u4", 1)[0])
    cls = word & 0xFF
    if cls not in _MX_CLASSES:
        raise InvcompError(f"unsupported .mat array class {cls} (only numeric matrices are read)")
    if word & _COMPLEX_FLAG:
        raise InvcompError("complex .mat arrays are not supported")
    if dim_kind not in _MI_TYPES:
        raise InvcompError("corrupt .mat file (dimensions)")
    dims = [int(d) for d in np.frombuffer(dims_raw, endian + _MI_TYPES[dim_kind])]
    if not dims or min(dims) < 0:
        raise InvcompError("corrupt .mat file (negative or missing dimensions)")
    name = name_raw.decode("ascii", "replace")
    count = int(np.prod(dims, dtype=np.int64))
    if len(parts) < 4:
        if count:
            raise InvcompError(f"corrupt .mat file (array {name!r} has no data)")
        values = np.zeros(0)
    else:
        kind, content = parts[3]
        if kind not in _MI_TYPES:
            raise InvcompError(f"unsupported .mat data type {kind} in array {name!r}")
        stored = np.dtype(endian + _MI_TYPES[kind])
        if len(content) != count * stored.itemsize:
            raise InvcompError(f"corrupt .mat file (array {name!r}: {len(content)} bytes for {count} values)")
        values = np.frombuffer(content, stored)
    array = values.astype(np.dtype(_MX_CLASSES[cls]).newbyteorder("=")).reshape(dims, order="F")
    return name, array
