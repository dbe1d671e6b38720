"""Which pixels an .icz file keeps from the original (the mask), and how both sides agree on it.

A mask is a boolean S x S array (S = the model's resolution). Its positions cost (almost)
nothing in the file wherever the decoder can regenerate them:
- `center`, `random`, `block`: from a few integers (size, count, seed) in the file;
- `edges`, `edges+random`: also from G(z) rounded to uint8, which both sides compute;
- `user`: a mask image the decoder cannot guess, stored compactly (encode_bitmap).

All arithmetic is integer (a splitmix64 stream for random orders, an integer Laplacian of a
binomial blur for edges), so the positions are the same on every platform and numpy version.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invcomp.errors import InvcompError
from invcomp.formats import varint
from invcomp.formats.icz import MASK_SCHEMES
from invcomp.io.images import fit_to_square, read_image

SCHEMES = MASK_SCHEMES  # the ids are the format's (invcomp.formats.icz)
SCHEME_IDS = {name: i for i, name in enumerate(SCHEMES)}
GUIDED = ("edges", "edges+random")  # positions derived from G(z)


@dataclass(frozen=True)
class MaskSpec:
    """What the decoder needs to rebuild a mask (except a user mask's bitmap and G(z))."""

    scheme: str
    count: int  # center: side of the square; random, edges: pixels; block, edges+random: blocks
    block: int = 0  # block side (block, edges+random)
    seed: int = 0  # random, block, edges+random

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise InvcompError(f"unknown mask scheme {self.scheme!r}; choose from {', '.join(SCHEMES)}")
        if self.count < 0 or self.block < 0 or not 0 <= self.seed < 1 << 32:
            raise InvcompError("mask parameters out of range")


def block_side(size: int) -> int:
    """Block side for block masks: 4 px at 32 x 32, 8 px at 64 x 64."""
    return max(2, size // 8)


def spec_for(scheme: str, keep: float, size: int, seed: int = 0) -> MaskSpec:
    """The spec that keeps about `keep` (0 < keep <= 1) of the pixels of a size x size image."""
    if scheme == "user":
        return MaskSpec("user", 0)
    if scheme not in SCHEMES:
        raise InvcompError(f"unknown mask scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
    if not 0 < keep <= 1:
        raise InvcompError(f"--keep must be in (0, 1], not {keep}")
    if scheme == "center":
        return MaskSpec(scheme, min(size, max(1, round(size * math.sqrt(keep)))))
    if scheme in ("random", "edges"):
        return MaskSpec(scheme, min(size * size, max(1, round(keep * size * size))), 0, seed if scheme == "random" else 0)
    if scheme in ("block", "edges+random"):
        k = block_side(size)
        nblocks = (size // k) ** 2
        return MaskSpec(scheme, min(nblocks, max(1, round(keep * size * size / (k * k)))), k, seed)
    raise InvcompError(f"unknown mask scheme {scheme!r}; choose from {', '.join(SCHEMES)}")


def random_order(n: int, seed: int) -> np.ndarray:
    """A permutation of 0..n-1: indices sorted by splitmix64(seed * 2**32 + index) (ties impossible)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) << np.uint64(32)) + np.arange(n, dtype=np.uint64)
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return np.argsort(x, kind="stable")


def edge_strength(guide: np.ndarray) -> np.ndarray:
    """|Laplacian of a binomial (Gaussian-like) blur| of the grey image, in integers, S x S.

    grey = (299 R + 587 G + 114 B) // 1000; blur = [1 4 6 4 1]^2 (edge-replicated);
    Laplacian = 4-neighbour (edge-replicated)."""
    g = guide.astype(np.int64)
    grey = (299 * g[..., 0] + 587 * g[..., 1] + 114 * g[..., 2]) // 1000
    k = np.array([1, 4, 6, 4, 1], np.int64)
    p = np.pad(grey, 2, mode="edge")
    rows = sum(k[i] * p[:, i : i + grey.shape[1]] for i in range(5))
    blur = sum(k[i] * rows[i : i + grey.shape[0], :] for i in range(5))
    b = np.pad(blur, 1, mode="edge")
    lap = b[:-2, 1:-1] + b[2:, 1:-1] + b[1:-1, :-2] + b[1:-1, 2:] - 4 * b[1:-1, 1:-1]
    return np.abs(lap)


def _top(score: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` highest scores, ties to the lower index."""
    return np.argsort(-score.ravel(), kind="stable")[:count]


def _blocks_mask(size: int, k: int, chosen: np.ndarray) -> np.ndarray:
    per_row = size // k
    mask = np.zeros((size, size), bool)
    for b in chosen:
        r, c = divmod(int(b), per_row)
        mask[r * k : (r + 1) * k, c * k : (c + 1) * k] = True
    return mask


def render(spec: MaskSpec, size: int, guide: np.ndarray | None = None, user: np.ndarray | None = None) -> np.ndarray:
    """The S x S boolean mask of a spec; guide = G(z) as S x S x 3 uint8 for edge schemes."""
    if spec.scheme == "user":
        if user is None or user.shape != (size, size):
            raise InvcompError("a user mask needs its bitmap")
        return user.astype(bool)
    if spec.scheme in GUIDED and (guide is None or guide.shape != (size, size, 3)):
        raise InvcompError(f"{spec.scheme} masks need G(z) as a {size}x{size}x3 image")
    mask = np.zeros((size, size), bool)
    if spec.scheme == "center":
        side = spec.count
        if not 1 <= side <= size:
            raise InvcompError(f"corrupt mask (centre square of side {side} in a {size}x{size} image)")
        top = (size - side) // 2
        mask[top : top + side, top : top + side] = True
        return mask
    if spec.scheme in ("random", "edges"):
        if not 1 <= spec.count <= size * size:
            raise InvcompError(f"corrupt mask ({spec.count} pixels in a {size}x{size} image)")
        chosen = random_order(size * size, spec.seed)[: spec.count] if spec.scheme == "random" \
            else _top(edge_strength(guide), spec.count)
        mask.ravel()[chosen] = True
        return mask
    k = spec.block
    if k < 1 or size % k or not 1 <= spec.count <= (size // k) ** 2:
        raise InvcompError(f"corrupt mask ({spec.count} blocks of {k} px in a {size}x{size} image)")
    nblocks = (size // k) ** 2
    order = random_order(nblocks, spec.seed)
    if spec.scheme == "block":
        return _blocks_mask(size, k, order[: spec.count])
    # edges+random: half the blocks (rounded up) where G(z) has the most edge energy, the rest at random elsewhere
    strength = edge_strength(guide)
    per_row = size // k
    energy = strength.reshape(per_row, k, per_row, k).sum((1, 3)).ravel()
    n_edge = (spec.count + 1) // 2
    edge_blocks = _top(energy, n_edge)
    taken = np.zeros(nblocks, bool)
    taken[edge_blocks] = True
    rest = [b for b in order if not taken[b]][: spec.count - n_edge]
    return _blocks_mask(size, k, np.concatenate([edge_blocks, np.asarray(rest, np.int64)]))


# --- user masks ---------------------------------------------------------------------------

def load_user_mask(path: str | Path, image_shape: tuple[int, int], size: int) -> np.ndarray:
    """A mask image (white = keep) for an image of image_shape (H, W), brought to size x size like the image."""
    p = Path(path)
    try:
        pixels = read_image(p).pixels
    except InvcompError as e:
        raise InvcompError(f"mask {e}") from None
    if pixels.shape[:2] != tuple(image_shape):
        h, w = image_shape
        raise InvcompError(f"mask {p}: {pixels.shape[1]}x{pixels.shape[0]}, but the image is {w}x{h}; "
                           "the mask must have the image's size")
    grey = pixels.astype(np.int64).mean(axis=2).round().astype(np.uint8)
    grey = fit_to_square(np.repeat(grey[:, :, None], 3, axis=2), size)[:, :, 0]
    mask = grey >= 128
    if not mask.any():
        raise InvcompError(f"mask {p}: keeps no pixels (white = keep; it has none at {size}x{size})")
    return mask


def read_varint(data: bytes, pos: int, max_bytes: int = 5) -> tuple[int, int]:
    """(value, position after it); canonical only (no trailing zero group), so a file has one reading."""
    value, end = varint.decode(data, pos, max_bytes, "extension")
    if end - pos > 1 and data[end - 1] == 0:
        raise InvcompError("corrupt extension (non-canonical number)")
    return value, end


BITMAP_RAW, BITMAP_RUNS, BITMAP_RUNS_DEFLATE = 0, 1, 2


def _runs(bits: np.ndarray) -> list[int]:
    """Lengths of alternating runs in raster order, starting with a run of False (maybe 0)."""
    flat = bits.ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs


def encode_bitmap(mask: np.ndarray) -> bytes:
    """The smallest of: 1 byte kind + raw bits / run-length varints / deflated runs."""
    raw = bytes([BITMAP_RAW]) + np.packbits(mask.ravel()).tobytes()
    runs = b"".join(varint.encode(r) for r in _runs(mask))
    candidates = [raw, bytes([BITMAP_RUNS]) + runs, bytes([BITMAP_RUNS_DEFLATE]) + zlib.compress(runs, 9)[2:-4]]
    return min(candidates, key=len)


def decode_bitmap(data: bytes, size: int) -> np.ndarray:
    if not data:
        raise InvcompError("corrupt mask (empty bitmap)")
    kind, body = data[0], data[1:]
    n = size * size
    if kind == BITMAP_RAW:
        if len(body) != (n + 7) // 8:
            raise InvcompError("corrupt mask (bitmap length)")
        mask = np.unpackbits(np.frombuffer(body, np.uint8))[:n].astype(bool)
    elif kind in (BITMAP_RUNS, BITMAP_RUNS_DEFLATE):
        if kind == BITMAP_RUNS_DEFLATE:
            try:
                d = zlib.decompressobj(-15)
                body = d.decompress(body, 4 * n + 16)
                if d.unconsumed_tail or not d.eof:
                    raise InvcompError("corrupt mask (deflate stream)")
            except zlib.error:
                raise InvcompError("corrupt mask (deflate stream)") from None
        flat, pos, value, total = [], 0, False, 0
        while pos < len(body):
            run, pos = read_varint(body, pos)
            total += run
            if total > n:
                raise InvcompError("corrupt mask (runs longer than the image)")
            flat.append((value, run))
            value = not value
        if total != n:
            raise InvcompError("corrupt mask (runs do not cover the image)")
        mask = np.concatenate([np.full(r, v, bool) for v, r in flat])
    else:
        raise InvcompError(f"corrupt mask (unknown bitmap kind {kind})")
    if not mask.any():
        raise InvcompError("corrupt mask (keeps no pixels)")
    return mask.reshape(size, size)
