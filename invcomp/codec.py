"""The codec: images -> .icz bytes -> images. The library API behind the CLI."""
from __future__ import annotations

import os
from pathlib import Path
from dataclasses import replace
from typing import Callable, Sequence, Union

import numpy as np
import torch
from PIL import Image

from .bitstream import Header, decode_file, encode_file, unpack_header
from .device import pick_device
from .errors import InvcompError
from .imageio import fit_to_square, read_image, resize_to, to_rgb8
from .invert import InversionConfig, invert, invert_rates
from .quantize import dequantize
from .rate import Candidate
from .registry import Model, load_model, model_for_fingerprint, to_device
from .ssim import image_quality, to_uint8, to_unit

ImageLike = Union[np.ndarray, Image.Image, str, os.PathLike]
DEFAULT_MODEL = "airplanes32"


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


def resolve_model(model: Union[str, Model]) -> Model:
    """A Model object, a registered name, or the path of a custom generator .pt (encoder beside it)."""
    if isinstance(model, Model):
        return model
    if str(model).endswith(".pt"):
        path = Path(model)
        if not path.is_file():
            raise InvcompError(f"{path}: no such weights file")
        encoder = path.with_name(path.stem + ".encoder.pt")
        return Model.from_files(path, encoder if encoder.is_file() else None)
    return load_model(model)


class Codec:
    """One generator, compressing and decompressing on one device."""

    def __init__(self, model: Union[str, Model] = DEFAULT_MODEL, device: str = "auto"):
        self.device = pick_device(device)
        self.model = to_device(resolve_model(model), self.device)

    @property
    def resolution(self) -> int:
        return self.model.config.resolution

    def prepare(self, image: ImageLike) -> tuple[np.ndarray, tuple[int, int] | None]:
        """The image at model resolution and its original (width, height) if that differs."""
        pixels = as_rgb8(image)
        h, w = pixels.shape[:2]
        size = None if (h, w) == (self.resolution, self.resolution) else (w, h)
        return fit_to_square(pixels, self.resolution), size

    def compress_batch(
        self,
        images: Sequence[ImageLike],
        config: InversionConfig | None = None,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> list[bytes]:
        """One .icz file per image; images are inverted `batch_size` at a time."""
        cfg = config or InversionConfig(bits=self.model.default_bits)
        if batch_size < 1:
            raise InvcompError("batch size must be >= 1")
        prepared = [self.prepare(im) for im in images]
        out: list[bytes] = []
        for i in range(0, len(prepared), batch_size):
            chunk = prepared[i : i + batch_size]
            targets = to_unit(np.stack([p for p, _ in chunk]))
            result = invert(self.model.generator, targets, cfg, self.model.encoder)
            for (_, size), codes in zip(chunk, result.codes.numpy()):
                out.append(encode_file(Header(self.model.fingerprint, cfg.bits, 0, size), codes, self.model.config.latent_range))
            if progress:
                progress(len(chunk))
        return out

    def compress_candidates(
        self,
        images: Sequence[ImageLike],
        bits: Sequence[int],
        config: InversionConfig | None = None,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Candidate]]:
        """Per image, its file at every bit depth with the PSNR/SSIM of what decoding it gives.

        One inversion run serves all depths (invert_rates); each file is identical to the one
        compress_batch writes at that depth. Quality is measured at the model's resolution.
        """
        cfg = config or InversionConfig(bits=self.model.default_bits)
        if batch_size < 1:
            raise InvcompError("batch size must be >= 1")
        prepared = [self.prepare(im) for im in images]
        out: list[list[Candidate]] = []
        for i in range(0, len(prepared), batch_size):
            chunk = prepared[i : i + batch_size]
            pixels = np.stack([p for p, _ in chunk])
            results = invert_rates(self.model.generator, to_unit(pixels), cfg, bits, self.model.encoder)
            per_bits = {}
            for b, result in results.items():
                files = [encode_file(Header(self.model.fingerprint, b, 0, size), codes, self.model.config.latent_range)
                         for (_, size), codes in zip(chunk, result.codes.numpy())]
                psnr, ssim = image_quality(pixels, self.decode_codes(result.codes, b))
                per_bits[b] = [Candidate(b, f, float(p), float(s)) for f, p, s in zip(files, psnr, ssim)]
            out.extend([per_bits[b][j] for b in results] for j in range(len(chunk)))
            if progress:
                progress(len(chunk))
        return out

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor, bits: int) -> np.ndarray:
        """(N, D) integer codes at one bit depth -> (N, S, S, 3) uint8, as decoding a file gives."""
        z = dequantize(codes, bits, self.model.config.latent_range).to(self.device)
        return to_uint8((self.model.generator(z) + 1) / 2)

    def check_file(self, data: bytes) -> Header:
        header, _ = unpack_header(data)
        if header.fingerprint != self.model.fingerprint:
            raise InvcompError(f"file was made with {_fingerprint_name(header.fingerprint)}, not {self.model.name}")
        return header

    @torch.no_grad()
    def decompress(self, data: bytes, original_size: bool = False) -> np.ndarray:
        """H x W x 3 uint8; at model resolution unless original_size asks for the stored size."""
        self.check_file(data)
        cfg = self.model.config
        header, codes = decode_file(data, cfg.latent_dim, cfg.latent_range)
        pixels = self.decode_codes(torch.from_numpy(codes)[None], header.bits)[0]
        if header.extension is not None:  # assistant pixels (inpaint.py): pasted into G(z)
            from .inpaint import apply_extension

            pixels = apply_extension(header.extension, pixels)
        if original_size and header.original_size:
            pixels = resize_to(pixels, *header.original_size)
        return pixels


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


_codecs: dict[tuple[int, str], Codec] = {}


def _codec(model: Union[str, Model], device: str) -> Codec:
    key = (id(model) if isinstance(model, Model) else hash(model), device)
    if key not in _codecs:
        _codecs[key] = Codec(model, device)
    return _codecs[key]


def _config(model: Model, options: dict) -> InversionConfig:
    base = InversionConfig(bits=model.default_bits)
    try:
        return replace(base, **options)
    except TypeError as e:
        raise InvcompError(f"unknown option: {e}") from None


def compress_batch(images: Sequence[ImageLike], model: Union[str, Model] = DEFAULT_MODEL, device: str = "auto",
                   batch_size: int = 64, **options) -> list[bytes]:
    """Compress many images; options are InversionConfig fields (bits, steps, restarts, seed, ...)."""
    codec = _codec(model, device)
    return codec.compress_batch(images, _config(codec.model, options), batch_size)


def compress(image: ImageLike, model: Union[str, Model] = DEFAULT_MODEL, device: str = "auto", **options) -> bytes:
    """Compress one image to .icz bytes."""
    return compress_batch([image], model, device, **options)[0]


def decompress_batch(files: Sequence[bytes], model: Union[str, Model, None] = None, device: str = "auto",
                     original_size: bool = False) -> list[np.ndarray]:
    out = []
    for data in files:
        codec = _codec(model if model is not None else model_of_file(data), device)
        out.append(codec.decompress(data, original_size))
    return out


def decompress(data: bytes, model: Union[str, Model, None] = None, device: str = "auto",
               original_size: bool = False) -> np.ndarray:
    """Decode .icz bytes to H x W x 3 uint8; the model comes from the file unless given."""
    return decompress_batch([data], model, device, original_size)[0]
