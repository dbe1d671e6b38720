"""Mask ablation: every mask scheme x density (x loss) on the same images, beside plain invcomp at more
latent bits and WebP and JPEG at matched bytes; written as results/ablate_<model>_<data>.{json,md,png}."""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from invcomp.bench.classic import classic_roundtrip
from invcomp.bench.data import BenchData
from invcomp.bench.plots import png_bytes, pyplot
from invcomp.bench.progress import Stages, silent
from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.files import write_atomic
from invcomp.inversion.invert import InversionConfig
from invcomp.masks.extension import read_extension
from invcomp.masks.inpaint import MaskOptions
from invcomp.masks.losses import region_quality
from invcomp.masks.schemes import SCHEMES
from invcomp.metrics import image_quality

DEFAULT_IMAGES = 200  # the file names carry _n<N> for any other count
PLAIN_LOSS = "ssim+mse"


@dataclass(frozen=True)
class Row:
    label: str
    scheme: str  # "none" for plain invcomp
    keep: float  # requested density (0 for plain)
    loss: str
    assist_bits: int
    latent_bits: int
    images: int
    mean_bytes: float
    bpp: float
    psnr: float
    ssim: float
    kept_fraction: float  # measured
    psnr_kept: Optional[float]
    ssim_kept: Optional[float]
    webp_bytes: float
    webp_psnr: float
    webp_ssim: float
    jpeg_bytes: float
    jpeg_psnr: float
    jpeg_ssim: float


@dataclass(frozen=True)
class AblationPlan:
    """What an ablation runs on every image: plain fits at `baseline_bits` (one inversion serves them all)
    and one masked fit per entry of `masks`, all with the `inversion` settings."""

    masks: tuple[MaskOptions, ...]
    inversion: InversionConfig
    baseline_bits: tuple[int, ...] = ()
    losses_at: tuple[str, float] = ("", 0.0)  # (scheme, keep) where the losses after the first run
    batch_size: int = 64
    figure_images: int = 2  # images shown per run in the figure

    @property
    def main_loss(self) -> str:
        return self.masks[0].loss


def plan_ablation(schemes: Sequence[str], keeps: Sequence[float], assist_bits: Sequence[int], losses: Sequence[str],
                  inversion: InversionConfig, baseline_bits: Sequence[int] = (),
                  losses_at: tuple[str, float] | None = None, batch_size: int = 64, figure_images: int = 2) -> AblationPlan:
    """Every scheme x keep x assist_bits with the first loss, then the other losses at `losses_at`
    (default: the first scheme at the middle keep); masks are seeded with the inversion's seed."""
    for s in schemes:
        if s not in SCHEMES or s == "user":
            raise InvcompError(f"unknown mask scheme {s!r} for ablate; choose from {', '.join(SCHEMES[:-1])}")
    if not (schemes and keeps and assist_bits and losses):
        raise InvcompError("--masks, --keep, --assist-bits and --losses need at least one value each")
    at_scheme, at_keep = losses_at if losses_at is not None else (schemes[0], keeps[len(keeps) // 2])
    seed = inversion.seed
    masks = [MaskOptions(s, k, a, losses[0], seed=seed) for k in keeps for a in assist_bits for s in schemes]
    masks += [MaskOptions(at_scheme, at_keep, assist_bits[0], lo, seed=seed) for lo in losses[1:]]
    return AblationPlan(tuple(masks), inversion, tuple(baseline_bits), (at_scheme, at_keep), batch_size, figure_images)


class Matched:
    """Per image, a classic codec at every quality; `at(budget)` picks, per image, the highest
    quality whose file is at most that image's budget (the lowest quality if none is)."""

    def __init__(self, images: np.ndarray, fmt: str, qualities: range):
        self.q = list(qualities)
        enc = [[classic_roundtrip(fmt, im, q) for q in self.q] for im in images]
        self.sizes = np.array([[len(data) for data, _ in row] for row in enc])
        self.decoded = [[d for _, d in row] for row in enc]

    def at(self, budgets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sizes, out = [], []
        for i, b in enumerate(budgets):
            ok = np.flatnonzero(self.sizes[i] <= b)
            j = int(ok.max()) if ok.size else 0
            sizes.append(self.sizes[i, j])
            out.append(self.decoded[i][j])
        return np.array(sizes), np.stack(out)


@dataclass(frozen=True)
class Ablation:
    """An ablation's rows (plain runs first), its JSON report and the files it wrote (.json, .md, .png)."""

    rows: tuple[Row, ...]
    report: dict
    paths: tuple[Path, ...]

    @property
    def markdown(self) -> str:
        return markdown(self.rows)


def run_ablation(codec: Codec, data: BenchData, plan: AblationPlan, out: Path, progress: Stages = silent) -> Ablation:
    """Run the plan on the test images. JSON, Markdown and the figure are rewritten after every run,
    so a long ablation can be read while it goes (`"complete": false` until the end)."""
    images, cfg = data.images, plan.inversion
    count, s = len(images), codec.resolution
    stem = f"ablate_{codec.model.name}_{data.stem}" + (f"_n{data.n}" if data.n not in (None, DEFAULT_IMAGES) else "")
    paths = (out / f"{stem}.json", out / f"{stem}.md", out / f"{stem}.png")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    figure: list[tuple[str, list[np.ndarray]]] = []
    fig_n = min(plan.figure_images, count)
    blank = np.full((s, s, 3), 255, np.uint8)
    t_start = time.perf_counter()

    def save(final: bool) -> dict:
        at_scheme, at_keep = plan.losses_at
        report = {"data": data.name, "images": count, "model": codec.model.name, "device": str(codec.device),
                  "config": {"latent_bits": cfg.bits, "steps": cfg.steps, "restarts": cfg.restarts, "seed": cfg.seed,
                             "losses_at": f"{at_scheme}:{at_keep:g}"},
                  "complete": final, "seconds": round(time.perf_counter() - t_start, 1),
                  "rows": [asdict(r) for r in rows]}
        write_atomic(paths[0], (json.dumps(report, indent=2) + "\n").encode())
        write_atomic(paths[1], markdown(rows).encode())
        write_atomic(paths[2], figure_png(figure, fig_n))
        return report

    with progress("ablate", count * (len(plan.masks) + bool(plan.baseline_bits))) as bar:
        webp = Matched(images, "WEBP", range(0, 101))
        jpeg = Matched(images, "JPEG", range(1, 96))

        def add_row(label, scheme, keep, loss, abits, lbits, files, decoded, kept_masks) -> None:
            sizes = np.array([len(f) for f in files])
            psnr, ssim = image_quality(images, decoded)
            wb, wd = webp.at(sizes)
            jb, jd = jpeg.at(sizes)
            wp, ws = image_quality(images, wd)
            jp, js = image_quality(images, jd)
            kp = ks = None
            frac = 0.0
            if kept_masks is not None:
                region = [region_quality(o, d, m) for o, d, m in zip(images, decoded, kept_masks)]
                kp = round(float(np.mean([min(r[0], 99.0) for r in region])), 3)
                ks = round(float(np.mean([r[1] for r in region])), 4)
                frac = round(float(np.mean([m.mean() for m in kept_masks])), 4)
            rows.append(Row(label, scheme, keep, loss, abits, lbits, count, round(float(sizes.mean()), 2),
                            round(8 * float(sizes.mean()) / (s * s), 4), round(float(psnr.mean()), 3),
                            round(float(ssim.mean()), 4), frac, kp, ks, round(float(wb.mean()), 2),
                            round(float(wp.mean()), 3), round(float(ws.mean()), 4), round(float(jb.mean()), 2),
                            round(float(jp.mean()), 3), round(float(js.mean()), 4)))
            save(False)

        # plain invcomp at several latent bit depths (one run serves all depths)
        base_bits = list(plan.baseline_bits)
        cands = codec.compress_candidates(list(images), base_bits, cfg, plan.batch_size, bar.advance) if base_bits else []
        for j, b in enumerate(dict.fromkeys(base_bits)):
            files = [c[j].data for c in cands]
            decoded = np.stack([codec.decompress(f) for f in files])
            if b == cfg.bits:
                figure.append((f"plain {b}-bit", [x for i in range(fig_n) for x in (images[i], blank, blank, decoded[i])]))
            add_row(f"invcomp {b}-bit latent", "none", 0.0, PLAIN_LOSS, 0, b, files, decoded, None)
        for opts in plan.masks:
            files = codec.compress_masked(list(images), opts, cfg, None, plan.batch_size, bar.advance)
            decoded = np.stack([codec.decompress(f) for f in files])
            kept_masks, shown = [], []
            for i, f in enumerate(files):
                header, codes = codec.decode(f)
                guide = codec.decode_codes(codes[None], header.bits)[0]  # G(z): where the kept pixels are
                kept = read_extension(header.extension, guide)
                kept_masks.append(kept.mask)
                if i < fig_n:
                    mask_img = np.repeat((kept.mask * 255).astype(np.uint8)[:, :, None], 3, 2)
                    assist_img = np.where(kept.mask[:, :, None], kept.values, 128).astype(np.uint8)
                    shown += [images[i], mask_img, assist_img, decoded[i]]
            label = f"{opts.scheme} {opts.keep:g}, {opts.assist_bits}-bit pixels" + \
                (f", {opts.loss}" if opts.loss != plan.main_loss else "")
            figure.append((label, shown))
            add_row(label, opts.scheme, opts.keep, opts.loss, opts.assist_bits, cfg.bits, files, decoded, kept_masks)
    report = save(True)
    return Ablation(tuple(rows), report, paths)


def markdown(rows: Sequence[Row]) -> str:
    """One table row per run: bytes, quality overall and on the kept pixels, WebP and JPEG at matched bytes."""
    lines = ["| run | kept | mean bytes | bpp | PSNR | SSIM | PSNR kept | SSIM kept | "
             "WebP bytes / PSNR / SSIM | JPEG bytes / PSNR / SSIM |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        kp = f"{r.psnr_kept:.2f}" if r.psnr_kept is not None else ""
        ks = f"{r.ssim_kept:.4f}" if r.ssim_kept is not None else ""
        lines.append(f"| {r.label} | {100 * r.kept_fraction:.1f} % | {r.mean_bytes:.1f} | {r.bpp:.3f} | {r.psnr:.2f} | "
                     f"{r.ssim:.4f} | {kp} | {ks} | {r.webp_bytes:.0f} / {r.webp_psnr:.2f} / {r.webp_ssim:.4f} | "
                     f"{r.jpeg_bytes:.0f} / {r.jpeg_psnr:.2f} / {r.jpeg_ssim:.4f} |")
    return "\n".join(lines) + "\n"


def figure_png(figure: list[tuple[str, list[np.ndarray]]], fig_n: int) -> bytes:
    """One row per run: for each of fig_n images, the original, the mask, the kept pixels and the decoded image."""
    plt = pyplot()
    cols = 4 * max(1, fig_n)
    fig, axes = plt.subplots(len(figure), cols, figsize=(1.1 * cols + 2.2, 1.15 * len(figure) + 0.4), squeeze=False)
    titles = ["original", "mask", "assistant px", "decoded"]
    for r, (label, tiles) in enumerate(figure):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(tiles):
                ax.imshow(tiles[c], interpolation="nearest")
            if r == 0:
                ax.set_title(titles[c % 4], fontsize=7)
        axes[r][0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return png_bytes(fig, dpi=110)
