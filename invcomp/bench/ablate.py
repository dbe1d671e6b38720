"""`invcomp ablate`: every mask scheme x density (x loss) on the same images, beside more latent bits,
WebP and JPEG at matched bytes. Writes results/ablate_<model>_<data>.{json,md,png}."""
from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from invcomp.cli.common import ProgressBar, fail
from invcomp.bench.rd import classic_roundtrip
from invcomp.errors import InvcompError


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


def _roundtrip(pixels: np.ndarray, fmt: str, quality: int) -> tuple[int, np.ndarray]:
    data, decoded = classic_roundtrip(fmt, pixels, quality)
    return len(data), decoded


class Matched:
    """Per image, a classic codec at every quality; `at(budget)` picks, per image, the highest
    quality whose file is at most that image's budget (the lowest quality if none is)."""

    def __init__(self, images: np.ndarray, fmt: str, qualities: range):
        self.q = list(qualities)
        enc = [[_roundtrip(im, fmt, q) for q in self.q] for im in images]
        self.sizes = np.array([[s for s, _ in row] for row in enc])
        self.decoded = [[d for _, d in row] for row in enc]

    def at(self, budgets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sizes, out = [], []
        for i, b in enumerate(budgets):
            ok = np.flatnonzero(self.sizes[i] <= b)
            j = int(ok.max()) if ok.size else 0
            sizes.append(self.sizes[i, j])
            out.append(self.decoded[i][j])
        return np.array(sizes), np.stack(out)


def _csv(text: str, kind=str) -> list:
    try:
        return [kind(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InvcompError(f"cannot read {text!r} as a comma-separated list") from None


def ablate(
    data: str = typer.Argument(..., help=".npz test file (or folder of images)"),
    model: str = typer.Option("airplanes32", "--model", "-m"),
    mask_list: str = typer.Option("center,random,block,edges,edges+random", "--masks", help="comma-separated schemes"),
    keep_list: str = typer.Option("0.01,0.03,0.1", "--keep", help="comma-separated densities"),
    assist_list: str = typer.Option("4", "--assist-bits", help="comma-separated bits per channel of kept pixels"),
    loss_list: str = typer.Option("ssim+mse", "--losses",
                                  help="comma-separated; the first for every run, the others at --loss-at"),
    loss_at: str = typer.Option("", help="scheme:keep where the other losses run (default: first scheme, middle keep)"),
    baseline_bits: str = typer.Option("3,4,5,6", help="plain invcomp at these latent bit depths (\"\" for none)"),
    n: int = typer.Option(200, help="first N images"),
    bits: Optional[int] = typer.Option(None, help="latent bits of the masked runs (default: the model's)"),
    steps: int = typer.Option(100),
    batch_size: int = typer.Option(64),
    seed: int = typer.Option(0),
    figure_images: int = typer.Option(2, help="images shown in the figure grid"),
    device: str = typer.Option("auto"),
    out: Path = typer.Option(Path("results"), help="folder for JSON, Markdown and the figure"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Which kept pixels buy the most quality per byte: mask schemes x densities x losses."""
    from invcomp.codec import Codec
    from invcomp.io.collection import load_collection
    from invcomp.io.datasets import resolve_data_path
    from invcomp.files import write_atomic
    from invcomp.masks.inpaint import MaskOptions, compress_masked, read_extension, region_quality
    from invcomp.inversion.invert import InversionConfig
    from invcomp.masks.schemes import SCHEMES
    from invcomp.formats.icz import unpack_header
    from invcomp.metrics import image_quality

    try:
        schemes = _csv(mask_list)
        for s in schemes:
            if s not in SCHEMES or s == "user":
                raise InvcompError(f"unknown mask scheme {s!r} for ablate; choose from {', '.join(SCHEMES[:-1])}")
        keeps, assists, losses = _csv(keep_list, float), _csv(assist_list, int), _csv(loss_list)
        base_bits = _csv(baseline_bits, int)
        if not (schemes and keeps and assists and losses):
            raise InvcompError("--masks, --keep, --assist-bits and --losses need at least one value each")
        if n < 1:
            raise InvcompError("--n must be >= 1")
        codec = Codec(model, device)
        cfg = InversionConfig(bits=bits if bits is not None else codec.model.default_bits, steps=steps, seed=seed)
        at_scheme, at_keep = schemes[0], keeps[len(keeps) // 2]
        if loss_at:
            try:
                at_scheme, k = loss_at.split(":")
                at_keep = float(k)
            except ValueError:
                raise InvcompError(f"--loss-at must look like random:0.03, not {loss_at!r}") from None
        configs = [MaskOptions(s, k, a, losses[0], seed=seed) for k in keeps for a in assists for s in schemes]
        configs += [MaskOptions(at_scheme, at_keep, assists[0], lo, seed=seed) for lo in losses[1:]]
        src = resolve_data_path(data)
        images, _, _ = load_collection([src], codec.resolution)
        images = images[:n]
        count = len(images)
        s = codec.resolution
        rows: list[Row] = []
        out.mkdir(parents=True, exist_ok=True)
        stem = f"ablate_{codec.model.name}_{Path(src).stem}" + (f"_n{n}" if n != 200 else "")
        t_start = time.perf_counter()

        def save(final: bool) -> dict:
            """Rewrite JSON and Markdown (after every run, so a long ablation can be read while it goes)."""
            report = {"data": src.name, "images": count, "model": model, "device": str(codec.device),
                      "config": {"latent_bits": cfg.bits, "steps": cfg.steps, "restarts": cfg.restarts, "seed": seed,
                                 "losses_at": f"{at_scheme}:{at_keep:g}"},
                      "complete": final, "seconds": round(time.perf_counter() - t_start, 1),
                      "rows": [asdict(r) for r in rows]}
            write_atomic(out / f"{stem}.json", (json.dumps(report, indent=2) + "\n").encode())
            write_atomic(out / f"{stem}.md", _markdown(rows).encode())
            write_atomic(out / f"{stem}.png", _figure_png(figure, fig_n))
            return report
        figure: list[tuple[str, list[np.ndarray]]] = []
        fig_n = min(figure_images, count)
        blank = np.full((s, s, 3), 255, np.uint8)
        with _progress_bar("ablate") as bar:
            task = bar.add_task("ablate", total=count * (len(configs) + bool(base_bits)), rate="")
            t0 = time.perf_counter()

            def advance(k: int) -> None:
                bar.advance(task, k)
                done = bar.tasks[0].completed
                bar.update(task, rate=f"{done / (time.perf_counter() - t0):.2f} img/s")

            webp = Matched(images, "WEBP", range(0, 101))
            jpeg = Matched(images, "JPEG", range(1, 96))

            def add_row(label, scheme, keep, loss, abits, lbits, files, decoded, kept_masks):
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
            cands = codec.compress_candidates(list(images), base_bits, cfg, batch_size, advance) if base_bits else []
            for j, b in enumerate(dict.fromkeys(base_bits)):
                files = [c[j].data for c in cands]
                decoded = np.stack([codec.decompress(f) for f in files])
                if b == cfg.bits:
                    figure.append((f"plain {b}-bit", [x for i in range(fig_n) for x in (images[i], blank, blank, decoded[i])]))
                add_row(f"invcomp {b}-bit latent", "none", 0.0, "ssim+mse", 0, b, files, decoded, None)
            for opts in configs:
                files = compress_masked(codec, list(images), [None] * count, opts, cfg, None, batch_size, advance)
                decoded = np.stack([codec.decompress(f) for f in files])
                kept_masks, shown = [], []
                for i, f in enumerate(files):
                    header, _ = unpack_header(f)
                    guide = codec.decode_codes(_codes(codec, f), header.bits)[0]
                    kept = read_extension(header.extension, guide)
                    kept_masks.append(kept.mask)
                    if i < fig_n:
                        mask_img = np.repeat((kept.mask * 255).astype(np.uint8)[:, :, None], 3, 2)
                        assist_img = np.where(kept.mask[:, :, None], kept.values, 128).astype(np.uint8)
                        shown += [images[i], mask_img, assist_img, decoded[i]]
                label = f"{opts.scheme} {opts.keep:g}, {opts.assist_bits}-bit pixels" + \
                    (f", {opts.loss}" if opts.loss != losses[0] else "")
                figure.append((label, shown))
                add_row(label, opts.scheme, opts.keep, opts.loss, opts.assist_bits, cfg.bits, files, decoded, kept_masks)
        report = save(True)
        typer.echo(json.dumps(report, indent=2) if as_json else _markdown(rows) + f"\n-> {out / stem}.{{json,md,png}}")
    except InvcompError as e:
        fail(str(e))


def _codes(codec, data: bytes):
    import torch

    from invcomp.formats.icz import decode_file

    cfg = codec.model.config
    _, codes = decode_file(data, cfg.latent_dim, cfg.latent_range)
    return torch.from_numpy(codes)[None]


def _markdown(rows: list[Row]) -> str:
    lines = ["| run | kept | mean bytes | bpp | PSNR | SSIM | PSNR kept | SSIM kept | WebP bytes / PSNR / SSIM | JPEG bytes / PSNR / SSIM |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        kp = f"{r.psnr_kept:.2f}" if r.psnr_kept is not None else ""
        ks = f"{r.ssim_kept:.4f}" if r.ssim_kept is not None else ""
        lines.append(f"| {r.label} | {100 * r.kept_fraction:.1f} % | {r.mean_bytes:.1f} | {r.bpp:.3f} | {r.psnr:.2f} | "
                     f"{r.ssim:.4f} | {kp} | {ks} | {r.webp_bytes:.0f} / {r.webp_psnr:.2f} / {r.webp_ssim:.4f} | "
                     f"{r.jpeg_bytes:.0f} / {r.jpeg_psnr:.2f} / {r.jpeg_ssim:.4f} |")
    return "\n".join(lines) + "\n"


def _figure_png(figure: list[tuple[str, list[np.ndarray]]], fig_n: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
