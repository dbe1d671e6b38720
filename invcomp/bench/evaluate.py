"""Measuring the codec at one setting on a test set, beside WebP q0: bytes, bpp, PSNR, SSIM, time."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from invcomp.bench.classic import classic_roundtrip
from invcomp.bench.data import BenchData
from invcomp.bench.progress import Stages, silent
from invcomp.codec import Codec
from invcomp.files import write_atomic
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
        lines.append(f"| {s.codec} | {s.images} | {s.mean_bytes:.1f} | {s.bpp:.3f} | {s.psnr:.2f} | {s.ssim:.4f} | "
                     f"{s.seconds_per_image:.3f} |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Evaluation:
    """An evaluation's scores (invcomp, then WebP q0), its JSON report, and the files it wrote."""

    scores: tuple[CodecScore, ...]
    report: dict
    paths: tuple[Path, ...]  # .json, .md

    @property
    def markdown(self) -> str:
        return markdown_table(list(self.scores))


def run_evaluation(codec: Codec, data: BenchData, out: Path, config: InversionConfig | None = None,
                   batch_size: int = 64, progress: Stages = silent) -> Evaluation:
    """invcomp at `config` and WebP q0 on the test images; writes evaluate_<model>_<data>_<setting>.{json,md} under out."""
    cfg = config or codec.config()
    images = data.images
    with progress("evaluate", len(images)) as bar:
        ours = evaluate_invcomp(codec, images, cfg, batch_size, bar.advance)
    webp = evaluate_webp(images)
    scores = (ours, webp)
    name = codec.model.name
    report = {"data": data.name, "images": len(images), "model": name, "device": str(codec.device),
              "threads": torch.get_num_threads(), "config": {"bits": cfg.bits, "steps": cfg.steps, "restarts": cfg.restarts},
              "scores": [s.to_dict() for s in scores],
              "bytes_ratio_vs_webp": round(ours.mean_bytes / webp.mean_bytes, 4)}
    out.mkdir(parents=True, exist_ok=True)
    stem = f"evaluate_{name}_{data.stem}_{cfg.bits}b_{cfg.restarts}x{cfg.steps}" + (f"_n{data.n}" if data.n else "")
    paths = (out / f"{stem}.json", out / f"{stem}.md")
    write_atomic(paths[0], (json.dumps(report, indent=2) + "\n").encode())
    write_atomic(paths[1], markdown_table(list(scores)).encode())
    return Evaluation(scores, report, paths)
