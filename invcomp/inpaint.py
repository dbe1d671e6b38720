"""Masked fits: keep some original pixels (assistant pixels) or a region, let G fill the rest.

The .icz extension block (docs/FORMAT.md, "Extension: mask and assistant pixels") holds the
mask scheme's parameters and the packed assistant pixels; `bitstream` only carries it as bytes.
Encoding: choose the mask, quantize the original under it, fit z with a loss on what the decoder
will show (G(z) with the pixels pasted in), then pack the pixels predicted from G(z).
Decoding: G(z) -> mask (regenerated, or from the stored bitmap) -> pixels -> blend.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import assistant, masks, varint
from .bitstream import Header, encode_file
from .errors import InvcompError
from .invert import InversionConfig, invert
from .ssim import to_uint8, to_unit

LOSSES = ("ssim", "ssim+mse", "ssim+mse+edge")


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


def blend_sigma(size: int) -> float:
    """Gaussian of the seam blending: 1.5 px at 32 x 32, scaled with the resolution."""
    return assistant.BLEND_SIGMA * size / 32


# --- the extension block ---------------------------------------------------------------------

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


# --- losses ----------------------------------------------------------------------------------

def _gauss1d(size: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable valid convolution of every channel with the 1-D kernel g."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM per 11x11 Gaussian (sigma 1.5) window, averaged over channels: (N, 1, H-10, W-10).

    Same constants and valid windows as pytorch-msssim, so its mean is `ssim.ssim01`."""
    g = _gauss1d(11, 1.5, x.device, x.dtype)
    c1, c2 = 0.01**2, 0.03**2
    mx, my = _filter(x, g), _filter(y, g)
    sxx = _filter(x * x, g) - mx**2
    syy = _filter(y * y, g) - my**2
    sxy = _filter(x * y, g) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return (((2 * mx * my + c1) / (mx**2 + my**2 + c1)) * cs).mean(1, keepdim=True)


def weighted_ssim(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """SSIM per image with each window weighted by the weight mass under it; weights (N,1,H,W)."""
    g = _gauss1d(11, 1.5, x.device, x.dtype)
    w = _filter(weights, g)
    return (ssim_map(x, y) * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-12)


def _log_kernel(device, dtype) -> torch.Tensor:
    """Laplacian of Gaussian (sigma 1, 7x7), zero-sum."""
    x = torch.arange(-3, 4, device=device, dtype=dtype)
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    k = (r2 - 2) * torch.exp(-r2 / 2)
    return (k - k.mean())[None, None]


def log_response(x: torch.Tensor) -> torch.Tensor:
    """LoG of the grey image (N,1,H,W) of (N,3,H,W) in [0, 1]."""
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return F.conv2d(F.pad(grey, (3, 3, 3, 3), mode="replicate"), _log_kernel(x.device, x.dtype))


def _wmean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    w = weights.expand_as(values)
    return (values * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-12)


def masked_loss(assist: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor, variant: str, paste_pixels: bool,
                sigma: float, edge_weight: float = 1.0) -> Callable:
    """A `loss_fn` for invert(): the chosen loss on what decoding shows, weighted per pixel.

    assist (N,3,S,S) in [0,1], mask and weights (N,1,S,S); batches of k x N images (restarts,
    bit depths) are matched by tiling. paste_pixels=False scores G(z) itself (edge schemes,
    whose positions depend on the fitted z, and fits with no stored pixels)."""
    if variant not in LOSSES:
        raise InvcompError(f"unknown loss {variant!r}; choose from {', '.join(LOSSES)}")
    n = assist.shape[0]

    def loss_fn(generated: torch.Tensor, targets: torch.Tensor, z: torch.Tensor, cfg: InversionConfig) -> torch.Tensor:
        reps = generated.shape[0] // n
        a, m, w = (t.to(generated.device).repeat(reps, 1, 1, 1) for t in (assist, mask, weights))
        out = (generated + 1) / 2
        if paste_pixels:
            out = assistant.blend(out, a, m, sigma)
        loss = 1 - weighted_ssim(out, targets, w)
        if variant != "ssim":
            loss = loss + cfg.mse_weight * _wmean((out - targets) ** 2, w)
        if variant == "ssim+mse+edge":
            loss = loss + edge_weight * _wmean((log_response(out) - log_response(targets)).abs(), w)
        return loss + cfg.prior_weight * z.pow(2).mean(1)

    return loss_fn


# --- compressing -----------------------------------------------------------------------------

def compress_masked(codec, pixels: Sequence[np.ndarray], sizes: Sequence[tuple[int, int] | None], opts: MaskOptions,
                    cfg: InversionConfig, user_masks: Sequence[np.ndarray] | None = None, batch_size: int = 64,
                    progress: Callable[[int], None] | None = None) -> list[bytes]:
    """One .icz file per image (S x S x 3 uint8 at the model's resolution, original sizes for the header).

    user_masks: one S x S bool mask per image when opts.scheme == "user"."""
    size = codec.resolution
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
        result = invert(codec.model.generator, to_unit(chunk), cfg, codec.model.encoder, loss_fn=loss_fn)
        codes = result.codes
        # one image at a time, exactly as the decoder runs G: a batched forward pass may round differently
        guides = np.concatenate([codec.decode_codes(codes[j : j + 1], cfg.bits) for j in range(n)])
        for j in range(n):
            ext = None
            if bits:
                user = mask_np[j] if opts.scheme == "user" else None
                m = masks.render(spec, size, guides[j], user)
                payload = assistant.pack(assistant.quantize(chunk[j][m], bits), assistant.quantize(guides[j][m], bits), bits)
                ext = pack_extension(spec, bits, payload, user)
            header = Header(codec.model.fingerprint, cfg.bits, 0, sizes[i + j], ext)
            out.append(encode_file(header, codes[j].numpy(), codec.model.config.latent_range))
        if progress:
            progress(n)
    return out


def keep_fraction(mask: np.ndarray) -> float:
    return float(mask.mean())


def region_quality(original: np.ndarray, decoded: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of one image restricted to a region (SSIM windows weighted by the region)."""
    diff = (original.astype(np.float64) - decoded.astype(np.float64))[mask]
    mse = max(float((diff**2).mean()) / 255**2, 1e-12)
    w = torch.from_numpy(mask.astype(np.float32))[None, None]
    s = weighted_ssim(to_unit(decoded[None]), to_unit(original[None]), w)
    return 10 * math.log10(1 / mse), float(s[0])
