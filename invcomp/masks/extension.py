"""The .icz extension block of masked files: the mask scheme's parameters and the packed
assistant pixels (docs/FORMAT.md, "Extension: mask and assistant pixels"), and what decoding
makes of it: G(z) -> mask (regenerated, or from the stored bitmap) -> pixels -> blend."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from invcomp.errors import InvcompError
from invcomp.formats import varint
from invcomp.masks import assistant
from invcomp.masks import schemes as masks
from invcomp.metrics import to_uint8, to_unit


def blend_sigma(size: int) -> float:
    """Gaussian of the seam blending: 1.5 px at 32 x 32, scaled with the resolution."""
    return assistant.BLEND_SIGMA * size / 32


def pack_extension(spec: masks.MaskSpec, bits: int, pixels: bytes, user: np.ndarray | None = None) -> bytes:
    out = bytes([masks.SCHEME_IDS[spec.scheme]])
    w = varint.encode
    if spec.scheme == "center" or spec.scheme == "edges":
        out += w(spec.count)
    elif spec.scheme == "random":
        out += w(spec.count) + w(spec.seed)
    elif spec.scheme in ("block", "edges+random"):
        out += w(spec.block) + w(spec.count) + w(spec.seed)
    else:
        bitmap = masks.encode_bitmap(user)
        out += w(len(bitmap)) + bitmap
    return out + bytes([bits]) + pixels


@dataclass(frozen=True)
class Kept:
    """What an extension block says, given G(z): the mask and the stored pixel values."""

    spec: masks.MaskSpec
    mask: np.ndarray  # S x S bool
    bits: int
    values: np.ndarray  # S x S x 3 uint8, the dequantized kept pixels (0 elsewhere)


def read_extension(ext: bytes, guide: np.ndarray) -> Kept:
    """Parse an extension block; guide = G(z) as S x S x 3 uint8 (positions and prediction)."""
    size = guide.shape[0]
    if not ext:
        raise InvcompError("corrupt extension (empty)")
    if ext[0] >= len(masks.SCHEMES):
        raise InvcompError(f"corrupt extension (unknown mask scheme {ext[0]})")
    scheme = masks.SCHEMES[ext[0]]
    pos, user = 1, None
    r = masks.read_varint
    if scheme in ("center", "edges"):
        count, pos = r(ext, pos)
        spec = masks.MaskSpec(scheme, count)
    elif scheme == "random":
        count, pos = r(ext, pos)
        seed, pos = r(ext, pos)
        spec = masks.MaskSpec(scheme, count, 0, seed)
    elif scheme in ("block", "edges+random"):
        block, pos = r(ext, pos)
        count, pos = r(ext, pos)
        seed, pos = r(ext, pos)
        spec = masks.MaskSpec(scheme, count, block, seed)
    else:
        n, pos = r(ext, pos)
        if pos + n > len(ext):
            raise InvcompError("corrupt extension (mask bitmap runs past the block)")
        user = masks.decode_bitmap(ext[pos : pos + n], size)
        pos += n
        spec = masks.MaskSpec("user", 0)
    if pos >= len(ext):
        raise InvcompError("corrupt extension (no assistant pixel depth)")
    bits = ext[pos]
    if not assistant.MIN_BITS <= bits <= assistant.MAX_BITS:
        raise InvcompError(f"corrupt extension (assistant pixel depth {bits})")
    mask = masks.render(spec, size, guide, user)
    predicted = assistant.quantize(guide[mask], bits)
    codes = assistant.unpack(bytes(ext[pos + 1 :]), predicted, bits)
    values = np.zeros_like(guide)
    values[mask] = assistant.dequantize(codes.reshape(-1, 3), bits)
    return Kept(spec, mask, bits, values)


def paste(guide: np.ndarray, kept: Kept) -> np.ndarray:
    """G(z) (S x S x 3 uint8) with the kept pixels pasted and blended in; kept pixels exact."""
    g = to_unit(guide[None])
    a = to_unit(kept.values[None])
    m = torch.from_numpy(kept.mask.astype(np.float32))[None, None]
    out = to_uint8(assistant.blend(g, a, m, blend_sigma(guide.shape[0])))[0]
    out[kept.mask] = kept.values[kept.mask]
    return out


def apply_extension(ext: bytes, guide: np.ndarray) -> np.ndarray:
    """Decoding: what a file with this extension shows, given G(z) as S x S x 3 uint8."""
    return paste(guide, read_extension(ext, guide))
