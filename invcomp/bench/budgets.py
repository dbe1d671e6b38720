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

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from invcomp.bench.classic import ClassicCodec
from invcomp.bench.data import BenchData
from invcomp.bench.plots import png_bytes, pyplot
from invcomp.bench.progress import Stages, silent
from invcomp.bench.rd import cache_dir, classic_series, invcomp_series
from invcomp.codec import Codec
from invcomp.enhance.choose import Base, Target, choose_enhanced
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
    chosen = []
    for i in range(n):
        fits = [k for k in range(len(series.points)) if sizes[k, i] <= budget]
        if fits:
            k = max(fits, key=lambda j: series.settings[j])
            chosen.append((sizes[k, i], psnr[k, i], ssim[k, i]))
    return {"within": len(chosen), "bytes": _mean([c[0] for c in chosen]), "psnr": _mean([c[1] for c in chosen]),
            "ssim": _mean([c[2] for c in chosen])}


def _choices(codec: Codec, images: np.ndarray, ours, budgets: list[int], cache: Path, progress: Stages) -> dict:
    """Per budget and metric, per image: (bytes, PSNR, SSIM, has parts) of the file `fit --max-bytes`
    chooses from the cached bases; cached too, keyed by the bases and the source of the choice (a rerun
    that only adds the learned peer's rows chooses nothing again)."""
    key = {"bases": ours.key, "budgets": budgets, "code": _choice_code_digest()}
    path = cache / f"choices_{codec.model.name}.json"
    try:
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["choices"]
    except (OSError, ValueError):
        pass
    bases = [[Base(int(b), bytes.fromhex(files[i]), np.zeros(0), kind != "priorless_files")
              for kind in ("files", "parts_files", "priorless_files") for b, files in ours.extra[kind].items()]
             for i in range(len(images))]
    with progress("decode bases", len(images)) as bar:
        for per_image in bases:
            for j, b in enumerate(per_image):
                per_image[j] = replace(b, pixels=codec.decompress(b.data))
            bar.advance(1)
    choices = {}
    for budget in budgets:
        for metric in ("ssim", "psnr"):
            with progress(f"invcomp {budget} B {metric}", len(images)) as bar:
                chosen = []
                for x, b in zip(images, bases):
                    c = choose_enhanced(x, b, Target(max_bytes=budget, metric=metric), part_bits=PARTS_BITS).candidate
                    chosen.append((c.size, c.psnr, c.ssim, c.data[2] == 2))
                    bar.advance(1)
            choices[f"{budget} {metric}"] = chosen
    write_atomic(path, json.dumps({"key": key, "choices": choices}).encode())
    return json.loads(json.dumps(choices))  # the same types a cache hit gives


def _choice_code_digest() -> str:
    """sha256 of the modules that choose and code the parts (and of this one, which calls the choice):
    a change to any invalidates cached choices."""
    import invcomp.enhance as enhance
    import invcomp.formats as formats

    files = [*sorted(Path(enhance.__file__).parent.glob("*.py")), *sorted(Path(formats.__file__).parent.glob("*.py")),
             Path(__file__)]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


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
    choices = _choices(codec, images, ours, budgets, cache, progress)
    rows = []
    for mult, budget in zip(multiples, budgets):
        for metric in ("ssim", "psnr"):
            fit = [c for c in choices[f"{budget} {metric}"] if c[0] <= budget]
            rows.append({"multiple": mult, "budget": budget, "codec": f"invcomp --max-bytes (best {metric.upper()})",
                         "within": len(fit), "bytes": _mean([c[0] for c in fit]), "psnr": _mean([c[1] for c in fit]),
                         "ssim": _mean([c[2] for c in fit]), "with_parts": sum(c[3] for c in fit)})
        for series in sweeps.values():
            rows.append({"multiple": mult, "budget": budget, "codec": f"best {series.codec.split()[0]} within budget",
                         **best_within(series, budget, len(images))})
        for series in peers:
            rows.append({"multiple": mult, "budget": budget, "codec": f"best {series.codec} within budget",
                         **best_within(series, budget, len(images))})
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
             "within the budget for (`within`).", "",
             "| budget | codec | within | bytes | PSNR | SSIM |", "|---|---|---:|---:|---:|---:|"]
    for r in report["rows"]:
        cells = [f"{r[k]:.2f}" if isinstance(r[k], float) else "-" for k in ("bytes", "psnr", "ssim")]
        cells[2] = f"{r['ssim']:.4f}" if r["ssim"] is not None else "-"
        lines.append(f"| {r['multiple']:g}x ({r['budget']} B) | {r['codec']} | {r['within']} | {' | '.join(cells)} |")
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
