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
from dataclasses import replace
from typing import Union

import numpy as np
import torch
from PIL import Image

from invcomp.enhance.choose import Base, best_kind, choose_enhanced, layered
from invcomp.enhance.parts import apply_parts
from invcomp.enhance.residual import to_pixels
from invcomp.errors import InvcompError
from invcomp.formats.icz import (
    VERSION_PARTS,
    Header,
    decode_file,
    encode_file,
    estimated_payload_sizes,
    join_file,
    split_file,
    unpack_header,
    with_parts,
)
from invcomp.inversion.invert import InversionConfig, invert, invert_branches
from invcomp.inversion.quantize import quantize
from invcomp.inversion.rate import (
    OPERATING_BITS,
    PARTS_BITS,
    PARTS_MSE_WEIGHT,
    PRIORLESS_BITS,
    PRIORLESS_ROOM,
    TAIL_SLACK,
    Candidate,
    Choice,
)
from invcomp.inversion.render import render
from invcomp.io.images import fit_to_square, read_image, resize_to, to_rgb8
from invcomp.masks.inpaint import MaskOptions, compress_masked
from invcomp.metrics import image_quality, to_unit
from invcomp.models.device import pick_device, pick_precision
from invcomp.models.registry import model_for_fingerprint
from invcomp.models.zoo import Model, resolve_model, to_device
from invcomp.options import FitOptions, fit_options

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


class Codec:
    """One generator, compressing and decompressing on one device."""

    def __init__(self, model: ModelLike = DEFAULT_MODEL, device: str = "auto", precision: str = "auto"):
        """precision: the generator's compute type while fitting ('auto': bf16 where the device has it
        natively, else fp32); files decode the same whatever precision fitted them."""
        self.device = pick_device(device)
        self.dtype = pick_precision(precision, self.device)
        self.model = to_device(resolve_model(model), self.device)

    @property
    def resolution(self) -> int:
        return self.model.config.resolution

    def config(self, **options) -> InversionConfig:
        """The model's default inversion settings with `options` (InversionConfig fields) replaced."""
        try:
            m = self.model
            defaults = InversionConfig(bits=m.default_bits, prior_weight=m.default_prior_weight, prior_weights=m.prior_weights)
            if "prior_weight" in options and "prior_weights" not in options:
                options = {**options, "prior_weights": ()}  # a weight given applies at every depth
            return replace(defaults, **options)
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
        return invert(self.model.generator, to_unit(pixels), config, self.model.encoder, dtype=self.dtype).codes.numpy()

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
        return [data for data, _ in self._compress_with_codes(images, config or self.config(), batch_size, progress)]

    def _compress_with_codes(self, images: Sequence[ImageLike], cfg: InversionConfig, batch_size: int,
                             progress: Progress | None) -> list[tuple[bytes, np.ndarray]]:
        out: list[tuple[bytes, np.ndarray]] = []
        for chunk in _batches([self.prepare(im) for im in images], batch_size):
            codes = self.fit_codes(np.stack([p for p, _ in chunk]), cfg)
            out.extend((self.encode(c, cfg.bits, size), c) for (_, size), c in zip(chunk, codes))
            if progress:
                progress(len(chunk))
        return out

    def compress_candidates(self, images: Sequence[ImageLike], bits: Sequence[int] = OPERATING_BITS,
                            config: InversionConfig | None = None, batch_size: int = 64,
                            progress: Progress | None = None, parts_bits: Sequence[int] = (),
                            priorless_bits: Sequence[int] = ()) -> list[list[Candidate]]:
        """Per image, its file at every bit depth with the PSNR/SSIM of what decoding it gives.

        One inversion run serves all depths (invert_branches); each file is identical to the one
        compress_batch writes at that depth. Quality is measured at the model's resolution.
        `parts_bits`: depths whose files follow, per image, fitted for enhancement parts (the run's
        tail with the pixel error weighted PARTS_MSE_WEIGHT, inversion/rate.py); then the files of
        `priorless_bits` (those of them whose tail has a prior weight: `self.priorless(...)`) fitted with
        none in the tail (PRIORLESS_BITS).
        """
        return [[c for c, _ in per] for per in self._fit_bases(images, bits, config, batch_size, progress, parts_bits,
                                                               priorless_bits)]

    def priorless(self, bits: Sequence[int], config: InversionConfig | None = None) -> tuple[int, ...]:
        """The depths of `bits` whose tail has a latent prior weight: those a priorless tail adds a file for."""
        cfg = config or self.config()
        return tuple(b for b in bits if cfg.prior_at(b) > 0)

    def branches(self, bits: Sequence[int], config: InversionConfig, parts_bits: Sequence[int] = (),
                 priorless_bits: Sequence[int] = ()) -> list[tuple[int, float] | tuple[int, float, float]]:
        """The tails of a targeted fit's run (invert_branches): the depths `bits`, then `parts_bits` fitted for
        parts, then the priorless depths (compress_candidates gives their files in this order)."""
        return ([(b, config.mse_weight) for b in bits] + [(b, PARTS_MSE_WEIGHT) for b in parts_bits]
                + [(b, config.mse_weight, 0.0) for b in self.priorless(priorless_bits, config)])

    def estimated_sizes(self, latents: torch.Tensor, bits: int) -> np.ndarray:
        """About the bytes of the file (with no stored original size) of each row of latents quantized at `bits`."""
        r = self.model.config.latent_range
        header = len(join_file(Header(self.model.fingerprint, bits, 0, None), b"", []))  # what a file adds to its payload
        return estimated_payload_sizes(quantize(latents, bits, r).cpu().numpy(), bits, r) + header

    def depths_within(self, max_bytes: int, depths: Sequence[int],
                      priorless: Sequence[bool] | None = None) -> Callable[[torch.Tensor], list[bool]]:
        """invert_branches' `keep` for a byte budget: a depth's tail runs when, for some image of the batch,
        the shared run's latent quantized at that depth is estimated to fit max_bytes + TAIL_SLACK (a tail
        moves the codes, so the file it ends with can be smaller than that estimate). The lowest depth always
        runs: its file is the fallback a budget nothing meets reports. A priorless tail (`priorless`, per
        branch) runs only where, for some image, the budget leaves less than PRIORLESS_ROOM bytes beside that
        depth's file: with more, a part or the next depth wins (scripts/priorless_pilot.py, docs/RESULTS.md)."""
        priorless = priorless or [False] * len(depths)

        def keep(z: torch.Tensor) -> list[bool]:
            flat = z.reshape(-1, z.shape[-1])
            sizes = {b: self.estimated_sizes(flat, b) for b in set(depths)}
            fits = {b: b == min(depths) or bool(sizes[b].min() <= max_bytes + TAIL_SLACK) for b in sizes}
            tight = {b: bool(sizes[b].max() + PRIORLESS_ROOM > max_bytes) for b in sizes}
            return [fits[b] and (tight[b] or not p) for b, p in zip(depths, priorless)]
        return keep

    def _fit_bases(self, images: Sequence[ImageLike], bits: Sequence[int], config: InversionConfig | None,
                   batch_size: int, progress: Progress | None, parts_bits: Sequence[int],
                   priorless_bits: Sequence[int] = (), max_bytes: int | None = None,
                   keep: Callable[[torch.Tensor], Sequence[bool]] | None = None
                   ) -> list[list[tuple[Candidate, np.ndarray] | None]]:
        """compress_candidates with each file's decoded picture (G(codes) in batches, as decoding gives it).
        With max_bytes, a depth whose files cannot fit it in any image of a batch is not fitted (None), as
        with a `keep` of invert_branches'."""
        cfg = config or self.config()
        branches = self.branches(bits, cfg, parts_bits, priorless_bits)
        if max_bytes is not None:
            priorless = [len(b) == 3 for b in branches]  # only a priorless branch carries its own prior weight (0)
            keep = self.depths_within(max_bytes, [b for b, *_ in branches], priorless)
        out: list[list[tuple[Candidate, np.ndarray] | None]] = []
        for chunk in _batches([self.prepare(im) for im in images], batch_size):
            pixels = np.stack([p for p, _ in chunk])
            results = invert_branches(self.model.generator, to_unit(pixels), cfg, branches, self.model.encoder,
                                      dtype=self.dtype, keep=keep)
            per_image: list[list[tuple[Candidate, np.ndarray] | None]] = [[] for _ in chunk]
            for (b, *_), result in zip(branches, results):
                if result is None:
                    for mine in per_image:
                        mine.append(None)
                    continue
                files = [self.encode(c, b, size) for (_, size), c in zip(chunk, result.codes.numpy())]
                decoded = self.decode_codes(result.codes, b)
                psnr, ssim = image_quality(pixels, decoded)
                for mine, f, p, s, d in zip(per_image, files, psnr, ssim, decoded):
                    mine.append((Candidate(b, f, float(p), float(s)), d))
            out.extend(per_image)
            if progress:
                progress(len(chunk))
        return out

    def compress_masked(self, images: Sequence[ImageLike], options: MaskOptions, config: InversionConfig | None = None,
                        user_masks: Sequence[np.ndarray] | None = None, batch_size: int = 64,
                        progress: Progress | None = None) -> list[bytes]:
        """One .icz file per image with kept (assistant) pixels; see invcomp.masks."""
        prepared = [self.prepare(im) for im in images]
        return compress_masked(self.model, [p for p, _ in prepared], [s for _, s in prepared], options,
                               config or self.config(), user_masks, batch_size, progress, self.dtype)

    def choose_files(self, images: Sequence[ImageLike], options: FitOptions, user_masks: Sequence[np.ndarray] | None = None,
                     batch_size: int = 64, progress: Progress | None = None) -> list[Choice]:
        """Per image, the chosen file with the quality of its decoding: a plain fit, a masked one, or
        the operating point that meets a target (`choice.met` False when none does)."""
        cfg = options.inversion
        if options.targeted:
            depths = options.depths or OPERATING_BITS
            parts_bits = (PARTS_BITS if options.depths is None else depths) if options.enhance else ()
            priorless = tuple(b for b in PRIORLESS_BITS if b in depths)
            found = self._fit_bases(images, depths, cfg, batch_size, progress, parts_bits,  # bases fitted for parts too
                                    priorless, options.max_bytes)
            originals = [self.prepare(im)[0] for im in images]
            searched = len(depths) + len(parts_bits)  # then the priorless bases
            return [choose_enhanced(x, [Base(f[0].bits, f[0].data, f[1], j < searched) for j, f in enumerate(per) if f],
                                    options.target, options.enhance, parts_bits or PARTS_BITS)
                    for x, per in zip(originals, found)]
        if options.mask is not None:
            files = self.compress_masked(images, options.mask, cfg, user_masks, batch_size, progress)
            decoded = np.stack([self.decompress(f) for f in files])
        else:  # G(codes) in batches: what decoding shows, without entropy-decoding the files again
            found = self._compress_with_codes(images, cfg, batch_size, progress)
            files = [data for data, _ in found]
            codes = np.stack([c for _, c in found])
            decoded = np.concatenate([self.decode_codes(codes[i : i + batch_size], cfg.bits)
                                      for i in range(0, len(codes), batch_size)])
        originals = np.stack([self.prepare(im)[0] for im in images])
        if options.part_step is not None:  # a preset with enhancement: one part at a fixed step on each file
            enhanced = [best_kind(x, *layered(x, d, options.part_step, options.layers), options.metric)
                        for x, d in zip(originals, decoded)]  # one part: kind 0 or 1, the better by --metric
            files = [with_parts(f, found) for f, (found, _, _) in zip(files, enhanced)]
            decoded = np.stack([to_pixels(recon) for _, recon, _ in enhanced])
        psnr, ssim = image_quality(originals, decoded)
        return [Choice(Candidate(cfg.bits, f, float(p), float(s)), True) for f, p, s in zip(files, psnr, ssim)]

    @torch.no_grad()
    def decompress(self, data: bytes, original_size: bool = False) -> np.ndarray:
        """H x W x 3 uint8; at model resolution unless original_size asks for the stored size."""
        header, codes = self.decode(data)
        pixels = self.decode_codes(codes[None], header.bits)[0]
        if header.extension is not None:  # kept pixels: pasted into G(z)
            from invcomp.masks.extension import apply_extension

            pixels = apply_extension(header.extension, pixels)
        if header.version == VERSION_PARTS:  # enhancement parts: what G(z) missed
            pixels = apply_parts(pixels, split_file(data)[2])
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
    return (f"model {info.name!r} version {info.version} ({info.key})" if info
            else f"an unknown model (fingerprint {fp.hex()}), which this invcomp does not have")


def model_of_file(data: bytes) -> str:
    """The registered model version a file needs, as `name@version` (an older version of a
    retrained model is still the one its files decode with); a one-line error naming the
    fingerprint and where to get the generator if none is installed."""
    header, _ = unpack_header(data)
    info = model_for_fingerprint(header.fingerprint)
    if info is None:
        from invcomp.models.registry import not_installed

        fp = header.fingerprint.hex()
        raise InvcompError("file was made with " + not_installed(f"an unknown model (fingerprint {fp}, its sha256 {fp}...)"))
    return info.key


# --- module functions: a cached Codec per (model, device) ------------------------------------

_codecs: dict[tuple[int, str], Codec] = {}


def get_codec(model: ModelLike, device: str = "auto") -> Codec:
    key = (id(model) if isinstance(model, Model) else hash(str(model)), device)
    if key not in _codecs:
        _codecs[key] = Codec(model, device)
    return _codecs[key]


MaskLike = Union[str, os.PathLike, np.ndarray, Image.Image]


def user_masks_for(mask: MaskLike, images: Sequence[np.ndarray], resolution: int) -> list[np.ndarray]:
    """One resolution x resolution bool mask per image from one mask (a file, a Pillow image or an H x W
    array; white / nonzero = keep) of the images' size, as `fit --mask` reads it."""
    from invcomp.masks.schemes import load_user_mask

    if isinstance(mask, (str, os.PathLike)):
        return [load_user_mask(mask, im.shape[:2], resolution) for im in images]
    arr = as_rgb8(mask.convert("L") if isinstance(mask, Image.Image) else
                  (np.asarray(mask).astype(np.uint8) * 255 if np.asarray(mask).dtype == bool else mask))
    out = []
    for im in images:
        if arr.shape[:2] != im.shape[:2]:
            raise InvcompError(f"mask: {arr.shape[1]}x{arr.shape[0]}, but the image is {im.shape[1]}x{im.shape[0]}; "
                               "the mask must have the image's size")
        grey = arr.astype(np.int64).mean(axis=2).round().astype(np.uint8)
        keep = fit_to_square(np.repeat(grey[:, :, None], 3, axis=2), resolution)[:, :, 0] >= 128
        if not keep.any():
            raise InvcompError(f"mask: keeps no pixels (white = keep; it has none at {resolution}x{resolution})")
        out.append(keep)
    return out


def compress_batch(images: Sequence[ImageLike], model: ModelLike = DEFAULT_MODEL, device: str = "auto",
                   batch_size: int = 64, *, quality: int | None = None, target_ssim: float | None = None,
                   max_bytes: int | None = None, mask: MaskLike | None = None, mask_scheme: str | None = None,
                   keep: float = 0.05, assist_bits: int = 4, loss: str = "ssim+mse", drop_outside: bool = False,
                   target_psnr: float | None = None, metric: str = "ssim", layers: int = 1, enhance: bool = True,
                   **options) -> list[bytes]:
    """Compress many images to .icz bytes, with the options of `invcomp fit`.

    options are InversionConfig fields (bits, steps, restarts, seed, ...); quality a preset 1..10;
    target_ssim / target_psnr / max_bytes choose base bits and enhancement parts per image (a quality
    target that cannot be met keeps the best file with a warning; a max_bytes that cannot be met raises
    InvcompError); metric (ssim or psnr) is what a budget alone maximises; layers splits the enhancement
    into parts that `trim` can cut between; enhance=False keeps the latent alone;
    mask (a mask image or array of the images' size, white = keep) or mask_scheme (center, random,
    block, edges, edges+random) with keep, assist_bits, loss and drop_outside keep original pixels.
    model="auto": per image, the registered model that fits it best (invcomp.domain.choose_models).
    """
    pixels = [as_rgb8(im) for im in images]
    if batch_size < 1:
        raise InvcompError("--batch-size must be >= 1")
    rate = dict(quality=quality, target_ssim=target_ssim, max_bytes=max_bytes, mask=mask, mask_scheme=mask_scheme,
                keep=keep, assist_bits=assist_bits, loss=loss, drop_outside=drop_outside, target_psnr=target_psnr,
                metric=metric, layers=layers, enhance=enhance)
    extra = (target_psnr, metric, layers, enhance)
    if isinstance(model, str) and model == "auto":
        from invcomp.domain import choose_models

        try:  # every option checked before any model is chosen
            base = replace(InversionConfig(), **options)
        except TypeError as e:
            raise InvcompError(f"unknown option: {e}") from None
        fit_options(base, quality, target_ssim, max_bytes, mask_scheme, keep, mask is not None, drop_outside,
                    assist_bits, loss, "bits" in options, *extra)
        names = choose_models(pixels, device, batch_size)
        out: list[bytes] = [b""] * len(pixels)
        for name in dict.fromkeys(names):
            rows = [i for i, n in enumerate(names) if n == name]
            for i, data in zip(rows, compress_batch([pixels[i] for i in rows], name, device, batch_size, **rate, **options)):
                out[i] = data
        return out
    codec = get_codec(model, device)
    opts = fit_options(codec.config(**options), quality, target_ssim, max_bytes, mask_scheme, keep, mask is not None,
                       drop_outside, assist_bits, loss, "bits" in options, *extra)
    if not opts.targeted and opts.mask is None and opts.part_step is None:
        return codec.compress_batch(pixels, opts.inversion, batch_size)
    users = user_masks_for(mask, pixels, codec.resolution) if mask is not None else None
    choices = codec.choose_files(pixels, opts, users, batch_size)
    over = [f"image {i}: {c.reason}" for i, c in enumerate(choices) if not c.within(max_bytes)]
    if over:
        raise InvcompError(f"{len(over)} image(s) cannot meet --max-bytes {max_bytes} ({'; '.join(over[:3])})")
    unmet = [f"image {i}: {c.reason}" for i, c in enumerate(choices) if not c.met]
    if unmet:
        import warnings

        warnings.warn(f"target not met for {len(unmet)} image(s): {'; '.join(unmet[:3])}", stacklevel=2)
    return [c.candidate.data for c in choices]


def compress(image: ImageLike, model: ModelLike = DEFAULT_MODEL, device: str = "auto", **options) -> bytes:
    """Compress one image to .icz bytes; the options of compress_batch."""
    return compress_batch([image], model, device, **options)[0]


def decompress_batch(files: Sequence[bytes], model: ModelLike | None = None, device: str = "auto",
                     original_size: bool = False) -> list[np.ndarray]:
    return [get_codec(model if model is not None else model_of_file(d), device).decompress(d, original_size)
            for d in files]


def decompress(data: bytes, model: ModelLike | None = None, device: str = "auto",
               original_size: bool = False) -> np.ndarray:
    """Decode .icz bytes to H x W x 3 uint8; the model comes from the file unless given."""
    return decompress_batch([data], model, device, original_size)[0]
