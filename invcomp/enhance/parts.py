"""Enhancement parts: code what the picture so far missed, and choose a part's step for a byte
budget or a quality target.

A part is `kind | transform | step index | chroma index | coded coefficients | check byte`
(docs/FORMAT.md). Parts stack: part k codes the residual of the picture that the base and parts
1..k-1 give (in float, before rounding), so a file cut after any complete part still decodes.
Kind 0 adds the decoded residual; kind 1 (release 0.3.0) then runs a deblocking filter over the
block edges (`residual.deblock`): the same coefficients, chosen by the encoder per image."""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from invcomp.enhance import residual
from invcomp.enhance.presets import STEP_LEVELS, step_size
from invcomp.errors import InvcompError
from invcomp.formats import coefficients

KIND_DCT = 0
KIND_DCT_DEBLOCK = 1
KINDS = (KIND_DCT, KIND_DCT_DEBLOCK)
TRANSFORMS = {2: 4, 3: 8}  # transform byte = log2 of the block side
DEFAULT_BLOCK = 8
DEFAULT_CHROMA = 0  # chroma step = luma step: finer or coarser measured worse in RGB PSNR and SSIM (docs/RESULTS.md)


@dataclass(frozen=True)
class Part:
    block: int  # DCT block side, 4 or 8
    step: int  # step index (presets.step_size)
    chroma: int  # chroma index
    coded: bytes  # the coefficients' adaptive arithmetic coding
    deblock: bool = False  # kind 1: the deblocking filter after the residual

    def to_bytes(self) -> bytes:
        head = bytes([KIND_DCT_DEBLOCK if self.deblock else KIND_DCT, self.block.bit_length() - 1, self.step, self.chroma])
        return head + self.coded + bytes([zlib.crc32(self.coded) & 0xFF])


def parse_part(data: bytes) -> Part:
    if len(data) < 5:
        raise InvcompError("corrupt enhancement part (too short)")
    kind, transform, step, chroma = data[:4]
    if kind not in KINDS:
        raise InvcompError(f"enhancement part of kind {kind}, which this invcomp does not know (a later release may read it)")
    if transform not in TRANSFORMS or step >= STEP_LEVELS or chroma >= residual.CHROMA_LEVELS:
        raise InvcompError("corrupt enhancement part (parameters)")
    coded = bytes(data[4:-1])
    if zlib.crc32(coded) & 0xFF != data[-1]:
        raise InvcompError("corrupt enhancement part (check byte)")
    return Part(TRANSFORMS[transform], step, chroma, coded, kind == KIND_DCT_DEBLOCK)


def encode_part(target: np.ndarray, recon: np.ndarray, step: int, block: int = DEFAULT_BLOCK,
                chroma: int = DEFAULT_CHROMA) -> tuple[Part, np.ndarray]:
    """A part (kind 0) coding target - recon (target uint8 (S, S, 3), recon float), and the float picture
    it decodes to; `deblocked` gives the same part's kind 1."""
    if recon.shape[0] % block or recon.shape[1] % block:
        raise InvcompError(f"a {recon.shape[1]}x{recon.shape[0]} picture does not split into {block}x{block} blocks")
    coefs = residual.forward(target.astype(np.float64) - recon, block, step, chroma)
    part = Part(block, step, chroma, coefficients.encode(coefs, residual.CHROMA))
    return part, recon + residual.inverse(coefs, block, step, chroma)


def deblocked(part: Part, decoded: np.ndarray) -> tuple[Part, np.ndarray]:
    """The kind-1 twin of a kind-0 part (the same bytes but the kind), and what it decodes to, given the
    kind-0 part's decoded float picture."""
    return replace(part, deblock=True), residual.deblock(decoded, part.block, step_size(part.step))


def decode_part(part: Part, recon: np.ndarray) -> np.ndarray:
    n = part.block
    shape = (3, recon.shape[0] // n, recon.shape[1] // n, n * n)
    coefs = np.asarray(coefficients.decode(part.coded, shape, residual.CHROMA), dtype=np.int64)
    if coefficients.encode(coefs, residual.CHROMA) != part.coded:  # only the canonical coding is valid
        raise InvcompError("corrupt enhancement part (coefficients do not re-encode to the stored bytes)")
    out = recon + residual.inverse(coefs, n, part.step, part.chroma)
    return residual.deblock(out, n, step_size(part.step)) if part.deblock else out


def apply_parts(base: np.ndarray, parts: Sequence[bytes]) -> np.ndarray:
    """The picture (uint8) that the base picture and the parts (as stored) decode to."""
    recon = base.astype(np.float64)
    for data in parts:
        recon = decode_part(parse_part(data), recon)
    return residual.to_pixels(recon)


def part_overhead() -> int:
    return 5
