"""The codec: images -> latent codes -> .icz bytes -> images, for one generator on one device.

`Codec` is the one place where latents, bytes and pixels meet: `fit`, `decode`, `pack`,
`add`, `unpack`, the benchmarks and the module functions below all go through it.

    codec = Codec("airplanes32")
    data = codec.compress(image)            # bytes
    pixels = codec.decompress(data)         # H x W x 3 uint8

Lower layers: `inversion` (search for z, rate control), `masks` (kept pixels), `formats.icz`
(the bytes), `models` (the generator), `io.images` (pixels from files and arrays).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Union

import numpy as np
import torch
from PIL import Image

from invcomp.errors import InvcompError
from invcomp.formats.icz import Header, decode_file, encode_file, unpack_header
from invcomp.inversion.invert import InversionConfig, invert, invert_rates
from invcomp.inversion.rate import OPERATING_BITS, Candidate, Choice, choose
from invcomp.inversion.render import render
from invcomp.io.images import fit_to_square, read_image, resize_to, to_rgb8
from invcomp.masks.inpaint import MaskOptions, compress_masked
from invcomp.metrics import image_quality, to_unit
from invcomp.models.device import pick_device
from invcomp.models.registry import model_for_fingerprint
from invcomp.models.zoo import Model, resolve_model, to_device

ImageLike = Union[np.ndarray, Image.Image, str, os.PathLike]
ModelLike = Union[str, os.PathLike, Model]
DEFAULT_MODEL = "airplanes32"
Progress = Callable[[int], None]


def as_rgb8(image: ImageLike) -> np.ndarray:
    """H x W x 3 uint8 from an array (grey, RGB or RGBA), a Pillow image or a file path."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image).pixels
    if isinstance(image, Image.Image):
        return to_rgb8(image)[0]
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise InvcompError(f"image arrays must be uint8, not {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 1:
        raise InvcompError(f"image arrays must be H x W x 3 (or x 4), not {arr.shape}")
    return np.ascontiguousarray(arr[:, :, :3])


@dataclass(frozen=True)
class FitOptions:
    """How `Codec.choose_files` chooses each file: the inversion settings, an optional per-image target
    (the cheapest operating point with SSIM >= target_ssim, the best within max_bytes), and
    optional kept pixels (masks). Targets and masks do not combine yet."""

    inversion: InversionConfig
    target_ssim: float | None = None
    max_bytes: int | None = None
    mask: MaskOptions | None = None

    def __post_init__(self) -> None:
        if self.targeted:
            if self.mask is not None:
                raise InvcompError("--target-ssim/--max-bytes cannot be combined with masks yet")
            choose([Candidate(2, b"", 0.0, 0.0)], self.target_ssim, self.max_bytes)  # validates the targets

    @property
    def targeted(self) -> bool:
        return self.target_ssim is not None or self.max_bytes is not None


class Codec:
    """One generator, compressing and decompressing on one device."""

    def __init__(self, model: ModelLike = DEFAULT_MODEL, device: str = "auto"):
        self.device = pick_device(device)
        self.model = to_device(resolve_model(model), self.device)

    @property
    def resolution(self) -> int:
        return self.model.config.resolution

    def config(self, **options) -> InversionConfig:
        """The model's default inversion settings with `options` (InversionConfig fields) replaced."""
        try:
            return replace(InversionConfig(bits=self.model.default_bits), **options)
        except TypeError as e:
            raise InvcompError(f"unknown option: {e}") from None

    def prepare(self, image: ImageLike) -> tuple[np.ndarray, tuple[int, int] | None]:
        """The image at model resolution and its original (width, height) if that differs."""
        pixels = as_rgb8(image)
        h, w = pixels.shape[:2]
        size = None if (h, w) == (self.resolution, self.resolution) else (w, h)
        return fit_to_square(pixels, self.resolution), size

    # --- latents ----------------------------------------------------------------------------
    def fit_codes(self, pixels: np.ndarray, config: InversionConfig) -> np.ndarray:
        """(N, S, S, 3) uint8 at the model's resolution -> (N, D) int64 quantized latents."""
        return invert(self.model.generator, to_unit(pixels), config, self.model.encoder).codes.numpy()

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor | np.ndarray, bits: int) -> np.ndarray:
        """(N, D) integer codes at one bit depth -> (N, S, S, 3) uint8, as decoding a file gives."""
        return render(self.model, codes, bits)

    # --- bytes ------------------------------------------------------------------------------
    def encode(self, codes: np.ndarray, bits: int, original_size: tuple[int, int] | None = None) -> bytes:
        """One image's codes -> a whole .icz file naming this model."""
        return encode_file(Header(self.model.fingerprint, bits, 0, original_size), codes, self.model.config.latent_range)

    def decode(self, data: bytes) -> tuple[Header, np.ndarray]:
        """A file of this model -> its header and codes; an error naming the file's model otherwise."""
        header, _ = unpack_header(data)
        if header.fingerprint != self.model.fingerprint:
            raise InvcompError(f"file was made with {_fingerprint_name(header.fingerprint)}, not {self.model.name}")
        cfg = self.model.config
        return decode_file(data, cfg.latent_dim, cfg.latent_range)

    # --- images -----------------------------------------------------------------------------
    def compress(self, image: ImageLike, config: InversionConfig | None = None) -> bytes:
        return self.compress_batch([image], config)[0]

    def compress_batch(self, images: Sequence[ImageLike], config: InversionConfig | None = None,
                       batch_size: int = 64, progress: Progress | None = None) -> list[bytes]:
        """One .icz file per image; images are inverted `batch_size` at a time."""
        cfg = config or self.config()
        out: list[bytes] = []
        for chunk in _batches([self.prepare(im) for im in images], batch_size):
            codes = self.fit_codes(np.stack([p for p, _ in chunk]), cfg)
            out.extend(self.encode(c, cfg.bits, size) for (_, size), c in zip(chunk, codes))
            if progress:
                progress(len(chunk))
        return out

    def compress_candidates(self, images: Sequence[ImageLike], bits: Sequence[int] = OPERATING_BITS,
                            config: InversionConfig | None = None, batch_size: int = 64,
                            progress: Progress | None = None) -> list[list[Candidate]]:
        """Per image, its file at every bit depth with the PSNR/SSIM of what decoding it gives.

        One inversion run serves all depths (invert_rates); each file is identical to the one
        compress_batch writes at that depth. Quality is measured at the model's resolution.
        """
        cfg = config or self.config()
        out: list[list[Candidate]] = []
        for chunk in _batches([self.prepare(im) for im in images], batch_size):
            pixels = np.stack([p for p, _ in chunk])
            results = invert_rates(self.model.generator, to_unit(pixels), cfg, bits, self.model.encoder)
            per_bits = {}
            for b, result in results.items():
                files = [self.encode(c, b, size) for (_, size), c in zip(chunk, result.codes.numpy())]
                psnr, ssim = image_quality(pixels, self.decode_codes(result.codes, b))
                per_bits[b] = [Candidate(b, f, float(p), float(s)) for f, p, s in zip(files, psnr, ssim)]
            out.extend([per_bits[b][j] for b in results] for j in range(len(chunk)))
            if progress:
                progress(len(chunk))
        return out

    def compress_masked(self, images: Sequence[ImageLike], options: MaskOptions, config: InversionConfig | None = None,
                        user_masks: Sequence[np.ndarray] | None = None, batch_size: int = 64,
                        progress: Progress | None = None) -> list[bytes]:
        """One .icz file per image with kept (assistant) pixels; see invcomp.masks."""
        prepared = [self.prepare(im) for im in images]
        return compress_masked(self.model, [p for p, _ in prepared], [s for _, s in prepared], options,
                               config or self.config(), user_masks, batch_size, progress)

    def choose_files(self, images: Sequence[ImageLike], options: FitOptions, user_masks: Sequence[np.ndarray] | None = None,
                     batch_size: int = 64, progress: Progress | None = None) -> list[Choice]:
        """Per image, the chosen file with the quality of its decoding: a plain fit, a masked one, or
        the operating point that meets a target (`choice.met` False when none does)."""
        cfg = options.inversion
        if options.targeted:
            found = self.compress_candidates(images, OPERATING_BITS, cfg, batch_size, progress)
            return [choose(c, options.target_ssim, options.max_bytes) for c in found]
        if options.mask is not None:
            files = self.compress_masked(images, options.mask, cfg, user_masks, batch_size, progress)
        else:
            files = self.compress_batch(images, cfg, batch_size, progress)
        originals = np.stack([self.prepare(im)[0] for im in images])
        psnr, ssim = image_quality(originals, np.stack([self.decompress(f) for f in files]))
        return [Choice(Candidate(cfg.bits, f, float(p), float(s)), True) for f, p, s in zip(files, psnr, ssim)]

    @torch.no_grad()
    def decompress(self, data: bytes, original_size: bool = False) -> np.ndarray:
        """H x W x 3 uint8; at model resolution unless original_size asks for the stored size."""
        header, codes = self.decode(data)
        pixels = self.decode_codes(codes[None], header.bits)[0]
        if header.extension is not None:  # kept pixels: pasted into G(z)
            from invcomp.masks.extension import apply_extension

            pixels = apply_extension(header.extension, pixels)
        if original_size and header.original_size:
            pixels = resize_to(pixels, *header.original_size)
        return pixels


def _batches(items: list, batch_size: int):
    if batch_size < 1:
        raise InvcompError("batch size must be >= 1")
    for i in range(0, len(items), batch_size):
        yield items[i : i + batch_size]


def _fingerprint_name(fp: bytes) -> str:
    info = model_for_fingerprint(fp)
    return f"model {info.name!r}" if info else f"an unknown model (fingerprint {fp.hex()})"


def model_of_file(data: bytes) -> str:
    """The registered model a file needs; an error naming the fingerprint if none matches."""
    header, _ = unpack_header(data)
    info = model_for_fingerprint(header.fingerprint)
    if info is None:
        raise InvcompError(f"file was made with an unknown model (fingerprint {header.fingerprint.hex()}); is it installed?")
    return info.name


# --- module functions: a cached Codec per (model, device) ------------------------------------

_codecs: dict[tuple[int, str], Codec] = {}


def get_codec(model: ModelLike, device: str = "auto") -> Codec:
    key = (id(model) if isinstance(model, Model) else hash(str(model)), device)
    if key not in _codecs:
        _codecs[key] = Codec(model, device)
    return _codecs[key]


def compress_batch(images: Sequence[ImageLike], model: ModelLike = DEFAULT_MODEL, device: str = "auto",
                   batch_size: int = 64, **options) -> list[bytes]:
    """Compress many images; options are InversionConfig fields (bits, steps, restarts, seed, ...)."""
    codec = get_codec(model, device)
    return codec.compress_batch(images, codec.config(**options), batch_size)


def compress(image: ImageLike, model: ModelLike = DEFAULT_MODEL, device: str = "auto", **options) -> bytes:
    """Compress one image to .icz bytes."""
    return compress_batch([image], model, device, **options)[0]


def decompress_batch(files: Sequence[bytes], model: ModelLike | None = None, device: str = "auto",
                     original_size: bool = False) -> list[np.ndarray]:
    return [get_codec(model if model is not None else model_of_file(d), device).decompress(d, original_size)
            for d in files]


def decompress(data: bytes, model: ModelLike | None = None, device: str = "auto",
               original_size: bool = False) -> np.ndarray:
    """Decode .icz bytes to H x W x 3 uint8; the model comes from the file unless given."""
    return decompress_batch([data], model, device, original_size)[0]
