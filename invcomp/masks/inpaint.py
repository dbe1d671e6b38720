"""Masked fits: keep some original pixels (assistant pixels) or a region, let G fill the rest.

Encoding: choose the mask, quantize the original under it, fit z with a loss on what the decoder
will show (G(z) with the pixels pasted in), then pack the pixels predicted from G(z) into the
extension block (`extension`); `icz` only carries that block as bytes.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from invcomp.errors import InvcompError
from invcomp.formats.icz import Header, encode_file
from invcomp.inversion.invert import InversionConfig, invert
from invcomp.inversion.render import render
from invcomp.masks import assistant
from invcomp.masks import schemes as masks
from invcomp.masks.extension import blend_sigma, pack_extension
from invcomp.masks.losses import LOSSES, masked_loss
from invcomp.metrics import to_unit
from invcomp.models.zoo import Model


@dataclass(frozen=True)
class MaskOptions:
    scheme: str
    keep: float = 0.05  # fraction of pixels (ignored for user masks)
    assist_bits: int = 5  # bits per channel of the kept pixels; 0 = none stored (user mask + drop_outside)
    loss: str = "ssim+mse"
    drop_outside: bool = False  # user masks: fit only the kept region, G fills the rest
    seed: int = 0
    edge_weight: float = 1.0  # weight of the LoG edge term in "ssim+mse+edge"

    def __post_init__(self) -> None:
        if self.scheme not in masks.SCHEMES:
            raise InvcompError(f"unknown mask scheme {self.scheme!r}; choose from {', '.join(masks.SCHEMES)}")
        if self.loss not in LOSSES:
            raise InvcompError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.scheme != "user" and not 0 < self.keep <= 1:
            raise InvcompError(f"--keep must be in (0, 1], not {self.keep}")
        if self.drop_outside and self.scheme != "user":
            raise InvcompError("--drop-outside needs a user mask (--mask)")
        if self.assist_bits == 0 and not self.drop_outside:
            raise InvcompError("--assist-bits 0 stores no pixels; it only makes sense with --mask and --drop-outside")
        if self.assist_bits != 0:
            assistant.check_bits(self.assist_bits)
        if not 0 <= self.seed < 1 << 32:
            raise InvcompError("mask seed must be 0..2**32-1")


def compress_masked(model: Model, pixels: Sequence[np.ndarray], sizes: Sequence[tuple[int, int] | None], opts: MaskOptions,
                    cfg: InversionConfig, user_masks: Sequence[np.ndarray] | None = None, batch_size: int = 64,
                    progress: Callable[[int], None] | None = None, dtype: torch.dtype = torch.float32) -> list[bytes]:
    """One .icz file per image (S x S x 3 uint8 at the model's resolution, original sizes for the header).

    user_masks: one S x S bool mask per image when opts.scheme == "user"."""
    size = model.config.resolution
    if opts.scheme == "user" and (user_masks is None or len(user_masks) != len(pixels)):
        raise InvcompError("a user mask scheme needs one mask per image")
    if batch_size < 1:
        raise InvcompError("batch size must be >= 1")
    spec = masks.spec_for(opts.scheme, opts.keep, size, opts.seed)
    sigma = blend_sigma(size)
    guided = opts.scheme in masks.GUIDED
    out: list[bytes] = []
    for i in range(0, len(pixels), batch_size):
        chunk = np.stack(pixels[i : i + batch_size])
        n = len(chunk)
        if guided:
            mask_np = np.ones((n, size, size), bool)  # unknown until z is fitted: score the whole image
        elif opts.scheme == "user":
            mask_np = np.stack(user_masks[i : i + batch_size]).astype(bool)
        else:
            mask_np = np.repeat(masks.render(spec, size)[None], n, 0)
        bits = opts.assist_bits
        kept = assistant.dequantize(assistant.quantize(chunk, bits), bits) if bits else chunk
        mask_t = torch.from_numpy(mask_np.astype(np.float32))[:, None]
        weights = mask_t if opts.drop_outside else torch.ones_like(mask_t)
        paste_pixels = bits > 0 and not guided
        loss_fn = masked_loss(to_unit(kept), mask_t, weights, opts.loss, paste_pixels, sigma, opts.edge_weight)
        result = invert(model.generator, to_unit(chunk), cfg, model.encoder, loss_fn=loss_fn, dtype=dtype)
        codes = result.codes
        # one image at a time, exactly as the decoder runs G: a batched forward pass may round differently
        guides = np.concatenate([render(model, codes[j : j + 1], cfg.bits) for j in range(n)])
        for j in range(n):
            ext = None
            if bits:
                user = mask_np[j] if opts.scheme == "user" else None
                m = masks.render(spec, size, guides[j], user)
                payload = assistant.pack(assistant.quantize(chunk[j][m], bits), assistant.quantize(guides[j][m], bits), bits)
                ext = pack_extension(spec, bits, payload, user)
            header = Header(model.fingerprint, cfg.bits, 0, sizes[i + j], ext)
            out.append(encode_file(header, codes[j].numpy(), model.config.latent_range))
        if progress:
            progress(n)
    return out


def mask_options(scheme: str | None, keep: float = 0.05, user_mask: bool = False, drop_outside: bool = False,
                 assist_bits: int = 4, loss: str = "ssim+mse", seed: int = 0) -> MaskOptions | None:
    """MaskOptions from fit's flags, or None for a plain fit; errors for combinations that make no sense."""
    if user_mask and scheme not in (None, "user"):
        raise InvcompError("give --mask or --mask-scheme, not both")
    if not user_mask and scheme == "user":
        raise InvcompError("--mask-scheme user needs --mask roi.png")
    if not user_mask and scheme is None:
        if drop_outside or loss != "ssim+mse":
            raise InvcompError("--drop-outside and --loss need --mask or --mask-scheme")
        return None
    return MaskOptions("user" if user_mask else scheme, keep, assist_bits, loss, drop_outside, seed)
