"""Quality at equal per-image byte budgets: invcomp (`--max-bytes`, base and enhancement parts chosen
per image) against the best JPEG, WebP and AVIF file within the same budget, at multiples of
WebP-q0's mean bytes (issue 13's table).

    invcomp bench cifar10_airplane_test.npz -m airplanes32 --budgets 0.5,1,2,3,4

Per image and budget: invcomp's file chosen for the best SSIM (and, in a second row, the best PSNR)
within the budget, from the SSIM-fitted bases, the bases fitted for parts and those without a prior, as
`fit --max-bytes` chooses; per classic codec (and per objective of the learned peer, when measured) the highest setting
whose file fits (images with no file that fits are left out of that codec's mean; `within` counts the
rest). The classic sweeps (every 5th quality setting) and invcomp's base files are cached per image under results/bench_cache/.
Writes results/budgets_<model>_<data>.{json,md} and *_budget_{ssim,psnr}.png.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from invcomp.bench.choices import budget_choices
from invcomp.bench.classic import ClassicCodec
from invcomp.bench.data import BenchData
from invcomp.bench.plots import png_bytes, pyplot
from invcomp.bench.progress import Stages, silent
from invcomp.bench.rd import cache_dir, classic_series, invcomp_series
from invcomp.codec import Codec
from invcomp.files import write_atomic
from invcomp.inversion.invert import InversionConfig
from invcomp.inversion.rate import PARTS_BITS, PARTS_MSE_WEIGHT, PRIORLESS_BITS

MULTIPLES = (0.5, 1.0, 2.0, 3.0)
SWEEPS = (
    ClassicCodec("WebP sweep", "WEBP", tuple(range(0, 101, 5))),
    ClassicCodec("JPEG sweep", "JPEG", (1, *range(5, 101, 5))),
    ClassicCodec("AVIF sweep", "AVIF", tuple(range(0, 101, 5))),
)


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def best_within(series, budget: int, n: int) -> dict:
    """Per image the highest setting whose file fits; means over the images that have one."""
    sizes = np.array([p["bytes"] for p in series.points])  # (settings, images)
    psnr, ssim = np.array([p["psnr"] for p in series.points]), np.array([p["ssim"] for p in series.points])
    chosen, images = [], []
    for i in range(n):
        fits = [k for k in range(len(series.points)) if sizes[k, i] <= budget]
        if fits:
            k = max(fits, key=lambda j: series.settings[j])
            chosen.append((sizes[k, i], psnr[k, i], ssim[k, i]))
            images.append(i)
    return {"within": len(chosen), "bytes": _mean([c[0] for c in chosen]), "psnr": _mean([c[1] for c in chosen]),
            "ssim": _mean([c[2] for c in chosen]), "images": images}


def same_images(row: dict, choices: dict, budget: int, n: int) -> dict:
    """A row of a codec with files for only some images, and invcomp's mean on those same images (its best-PSNR
    file's PSNR, its best-SSIM file's SSIM): a fair pair where the codec's own mean is over easier images."""
    images = row.pop("images")
    if not 0 < len(images) < n:
        return row
    ours = {m: [choices[f"{budget} {m}"][i] for i in images] for m in ("psnr", "ssim")}
    return {**row, "invcomp_psnr": _mean([c[1] for c in ours["psnr"] if c[0] <= budget]),
            "invcomp_ssim": _mean([c[2] for c in ours["ssim"] if c[0] <= budget])}


def run_budget_bench(codec: Codec, data: BenchData, out: Path, config: InversionConfig | None = None,
                     multiples: tuple[float, ...] = MULTIPLES, batch_size: int = 64, progress: Stages = silent,
                     peers: tuple = ()) -> dict:
    """The equal-budget table; `peers`: measured series of the learned peer (peers.load_peer_series), each
    a codec of its own whose best trained point within each image's budget is taken, like a classic sweep."""
    cfg = config or codec.config()
    images, name = data.images, codec.model.name
    cache = cache_dir(out, data)
    t0 = time.perf_counter()
    ours = invcomp_series(codec, data, cfg, cache, batch_size, progress)
    sweeps = {c.pil_format: classic_series(c, images, cache, progress) for c in SWEEPS}
    webp0 = float(np.mean(sweeps["WEBP"].points[0]["bytes"]))
    budgets = [int(round(m * webp0)) for m in multiples]
    choices = budget_choices(codec, images, ours, budgets, cache, progress)
    rows = []
    for mult, budget in zip(multiples, budgets):
        for metric in ("ssim", "psnr"):
            fit = [c for c in choices[f"{budget} {metric}"] if c[0] <= budget]
            rows.append({"multiple": mult, "budget": budget, "codec": f"invcomp --max-bytes (best {metric.upper()})",
                         "within": len(fit), "bytes": _mean([c[0] for c in fit]), "psnr": _mean([c[1] for c in fit]),
                         "ssim": _mean([c[2] for c in fit]), "with_parts": sum(c[3] for c in fit)})
        named = [(f"best {s.codec.split()[0]} within budget", s) for s in sweeps.values()]
        for label, series in named + [(f"best {s.codec} within budget", s) for s in peers]:
            row = same_images(best_within(series, budget, len(images)), choices, budget, len(images))
            rows.append({"multiple": mult, "budget": budget, "codec": label, **row})
    out.mkdir(parents=True, exist_ok=True)
    stem = f"budgets_{name}_{data.stem}" + (f"_n{data.n}" if data.n else "")
    outputs = {"json": str(out / f"{stem}.json"), "markdown": str(out / f"{stem}.md"),
               "ssim_plot": str(out / f"{stem}_budget_ssim.png"), "psnr_plot": str(out / f"{stem}_budget_psnr.png")}
    report = {"model": name, "model_sha256": codec.model.sha256, "data": data.name, "images": len(images),
              "webp_q0_mean_bytes": round(webp0, 2), "inversion": {"steps": cfg.steps, "restarts": cfg.restarts},
              "parts_bases": {"bits": list(PARTS_BITS), "mse_weight": PARTS_MSE_WEIGHT},
              "priorless_bases": list(codec.priorless(PRIORLESS_BITS, cfg)),
              "peers": [{"codec": s.codec, "lambdas": s.settings, "trained": s.extra.get("trained")} for s in peers],
              "seconds": round(time.perf_counter() - t0, 1), "rows": rows, "outputs": outputs}
    write_atomic(Path(outputs["json"]), (json.dumps(report, indent=2) + "\n").encode())
    write_atomic(Path(outputs["markdown"]), markdown(report).encode())
    for metric in ("ssim", "psnr"):
        _plot(rows, metric, f"{name} on {data.name} ({len(images)} images): {metric.upper()} at equal budgets",
              Path(outputs[f"{metric}_plot"]))
    return report


def markdown(report: dict) -> str:
    lines = [f"{report['model']} on {report['data']} ({report['images']} images); budgets are multiples of WebP-q0's mean "
             f"{report['webp_q0_mean_bytes']:.1f} bytes, per image; a codec's mean is over the images it has a file "
             "within the budget for (`within`); where that is not every image, the last column gives invcomp's on "
             "the same images (its best-PSNR file's PSNR / its best-SSIM file's SSIM).", "",
             "| budget | codec | within | bytes | PSNR | SSIM | invcomp on these images |", "|---|---|---:|---:|---:|---:|---|"]
    for r in report["rows"]:
        cells = [f"{r[k]:.2f}" if isinstance(r[k], float) else "-" for k in ("bytes", "psnr", "ssim")]
        cells[2] = f"{r['ssim']:.4f}" if r["ssim"] is not None else "-"
        ours = f"{r['invcomp_psnr']:.2f} / {r['invcomp_ssim']:.4f}" if r.get("invcomp_psnr") is not None else ""
        lines.append(f"| {r['multiple']:g}x ({r['budget']} B) | {r['codec']} | {r['within']} | {' | '.join(cells)} | {ours} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], metric: str, title: str, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for codec in dict.fromkeys(r["codec"] for r in rows):
        pts = [(r["multiple"], r[metric]) for r in rows if r["codec"] == codec and r[metric] is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=codec)
    ax.set_xlabel("budget (x WebP-q0 mean bytes, per image)")
    ax.set_ylabel(metric.upper())
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    write_atomic(path, png_bytes(fig))


def rd_rows(report: dict, resolution: int) -> tuple[dict, ...]:
    """invcomp's best-SSIM rows of a budget report as rate-distortion summary rows (one curve)."""
    return tuple({"codec": "invcomp + parts", "setting": f"{r['multiple']:g}x", "label": f"max-bytes {r['budget']}",
                  "images": r["within"], "mean_bytes": r["bytes"], "bpp": round(8 * r["bytes"] / resolution**2, 4),
                  "psnr": round(r["psnr"], 3), "ssim": round(r["ssim"], 4), "msssim": None}
                 for r in report["rows"] if r["codec"] == "invcomp --max-bytes (best SSIM)" and r["within"])
