"""Measuring the codec on a test set, beside WebP: bytes, bpp, PSNR, SSIM, time."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from invcomp.bench.rd import classic_roundtrip
from invcomp.codec import Codec
from invcomp.inversion.invert import InversionConfig
from invcomp.metrics import image_quality


@dataclass(frozen=True)
class CodecScore:
    codec: str
    images: int
    mean_bytes: float
    bpp: float  # whole-file bits per pixel
    psnr: float  # mean over images, dB
    ssim: float
    seconds_per_image: float

    def to_dict(self) -> dict:
        return asdict(self)


def score(name: str, originals: np.ndarray, decoded: np.ndarray, sizes: list[int], seconds: float) -> CodecScore:
    psnr, ssim = image_quality(originals, decoded)
    n, h, w = originals.shape[:3]
    mean_bytes = float(np.mean(sizes))
    return CodecScore(name, n, round(mean_bytes, 2), round(8 * mean_bytes / (h * w), 4), round(float(psnr.mean()), 3),
                      round(float(ssim.mean()), 4), round(seconds / n, 4))


def evaluate_webp(images: np.ndarray, quality: int = 0) -> CodecScore:
    t0 = time.perf_counter()
    pairs = [classic_roundtrip("WEBP", im, quality) for im in images]
    return score(f"WebP q{quality} (method 6)", images, np.stack([p[1] for p in pairs]), [len(p[0]) for p in pairs],
                 time.perf_counter() - t0)


def evaluate_invcomp(codec: Codec, images: np.ndarray, cfg: InversionConfig, batch_size: int = 64,
                     progress: Callable[[int], None] | None = None) -> CodecScore:
    t0 = time.perf_counter()
    files = codec.compress_batch(list(images), cfg, batch_size, progress)
    seconds = time.perf_counter() - t0
    decoded = np.stack([codec.decompress(f) for f in files])
    label = f"invcomp {codec.model.name} {cfg.bits}-bit, {cfg.restarts}x{cfg.steps} steps"
    return score(label, images, decoded, [len(f) for f in files], seconds)


def markdown_table(scores: list[CodecScore]) -> str:
    lines = ["| codec | images | mean bytes | bpp | PSNR (dB) | SSIM | s / image |", "|---|---:|---:|---:|---:|---:|---:|"]
    for s in scores:
        lines.append(f"| {s.codec} | {s.images} | {s.mean_bytes:.1f} | {s.bpp:.3f} | {s.psnr:.2f} | {s.ssim:.4f} | {s.seconds_per_image:.3f} |")
    return "\n".join(lines) + "\n"
