"""Quality against steps and against time for three ways to start inversion.

    nice -n 10 .venv/bin/python scripts/steps_vs_quality.py --model airplanes32 --n 64

Starts compared (held-out images: the last 200 of the training file, never trained on):
  random     use_encoder=False, restarts=1
  restarts4  use_encoder=False, restarts=4 (4x the image-steps per image)
  encoder    the encoder's guess E(x), restarts=1
  (and variants of the encoder start: learning rate, no latent noise, one extra random start)
Each point is a separate run at that step count (the learning-rate schedule depends on the
total), fitted and decoded through the codec at the model's default bits; SSIM/PSNR are of
the decoded files. Time is measured wall-clock per image at batch `--batch-size`; on a shared
CPU compare image-steps (the work) as well as seconds. Writes results/steps_vs_quality.{json,png}
and prints the cheapest setting whose mean SSIM is within --tolerance of the 500-step
random-start run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from invcomp.codec import Codec
from invcomp.files import write_atomic
from invcomp.inversion.invert import InversionConfig
from invcomp.io.datasets import load_npz_images, resolve_data_path
from invcomp.metrics import image_quality
from invcomp.models.zoo import resolve_model

SERIES = {
    "random": (dict(use_encoder=False, restarts=1), [25, 50, 100, 200, 300, 500]),
    "restarts4": (dict(use_encoder=False, restarts=4), [25, 50, 100, 200, 500]),
    "encoder": (dict(use_encoder=True, restarts=1), [0, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500]),
    "encoder_lr0.1": (dict(use_encoder=True, restarts=1, lr=0.1), [10, 20, 30, 50, 100]),
    "encoder_lr0.02": (dict(use_encoder=True, restarts=1, lr=0.02), [20, 30, 50, 100]),
    "encoder_nonoise": (dict(use_encoder=True, restarts=1, noise=0.0), [30, 50, 75, 100]),
    "encoder_lr0.1_nonoise": (dict(use_encoder=True, restarts=1, lr=0.1, noise=0.0), [30, 50, 75]),
    "encoder+1random": (dict(use_encoder=True, restarts=2), [30, 50, 75]),
    # a check of the chosen default on other held-out images (--from-start)
    "random500": (dict(use_encoder=False, restarts=1), [500]),
    "encoder_check": (dict(use_encoder=True, restarts=1), [50, 75, 100]),
}


def run_point(codec: Codec, images: np.ndarray, cfg: InversionConfig, batch_size: int) -> dict:
    t0 = time.perf_counter()
    files = codec.compress_batch(list(images), cfg, batch_size)
    seconds = time.perf_counter() - t0
    decoded = np.stack([codec.decompress(f) for f in files])
    psnr, ssim = image_quality(images, decoded)
    return {"steps": cfg.steps, "restarts": cfg.restarts, "use_encoder": cfg.use_encoder, "lr": cfg.lr,
            "image_steps_per_image": cfg.steps * cfg.restarts,
            "ssim": round(float(ssim.mean()), 5), "psnr": round(float(psnr.mean()), 4),
            "ssim_sem": round(float(ssim.std(ddof=1) / np.sqrt(len(ssim))), 5),
            "mean_bytes": round(float(np.mean([len(f) for f in files])), 2),
            "seconds_per_image": round(seconds / len(images), 5), "per_image_ssim": [round(float(s), 4) for s in ssim]}


def choose(rows: list[dict], reference: float, tolerance: float) -> dict | None:
    ok = [r for r in rows if r["ssim"] >= reference - tolerance]
    return min(ok, key=lambda r: (r["image_steps_per_image"], r["seconds_per_image"])) if ok else None


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ref = report["reference_ssim"]
    rate = report.get("plot_rate")  # image-steps/s: time = work / rate (measured times on a shared CPU are noise)
    for name, rows in report["series"].items():
        xs = [r["image_steps_per_image"] for r in rows]
        ts = [(x / rate if rate else r["seconds_per_image"]) * 1000 for x, r in zip(xs, rows)]
        ys = [r["ssim"] for r in rows]
        axes[0].plot(xs, ys, "o-", label=name, ms=4)
        axes[1].plot(ts, ys, "o-", label=name, ms=4)
    for ax in axes:
        ax.axhline(ref, color="grey", lw=0.8, ls="--", label="500-step random start")
        ax.axhline(ref - report["tolerance"], color="grey", lw=0.8, ls=":", label=f"- {report['tolerance']}")
        ax.set_ylabel(f"mean SSIM (decoded, {report['bits']} bits)")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=ref - 0.15)  # the region that matters; far-off points are clipped
    axes[0].set_xscale("symlog", linthresh=10)
    axes[0].set_xlim(left=0)
    axes[0].set_xlabel("generator steps per image (steps x restarts)")
    axes[1].set_xscale("log")
    axes[1].set_xlabel(f"ms per image at {rate:.0f} image-steps/s (speed bench, batch {report['batch_size']})" if rate
                       else f"ms per image measured (batch {report['batch_size']}, {report['threads']} threads, shared CPU)")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{report['model']}: {report['images']} held-out images")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--data", default="cifar10_airplane_train.npz")
    ap.add_argument("--holdout", type=int, default=200, help="the last HOLDOUT images are never trained on")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--series", default=",".join(SERIES))
    ap.add_argument("--from-start", action="store_true", help="the first N held-out images instead of the last N")
    ap.add_argument("--plot-rate", type=float, default=None,
                    help="image-steps/s for the time axis (e.g. the speed bench's batch-64 rate); default: measured times")
    ap.add_argument("--replot", action="store_true", help="only redraw the plot from the existing JSON")
    ap.add_argument("--steps-list", default=None, help="comma-separated step counts replacing the series' own")
    ap.add_argument("--merge", action="store_true", help="add the series to the existing JSON (same images)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--out", type=Path, default=Path("results/steps_vs_quality"))
    args = ap.parse_args()
    if args.replot:
        report = json.loads(args.out.with_suffix(".json").read_text())
        if args.plot_rate:
            report["plot_rate"] = args.plot_rate
            write_atomic(args.out.with_suffix(".json"), (json.dumps(report, indent=1) + "\n").encode())
        plot(report, args.out.with_suffix(".png"))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    images, _ = load_npz_images(resolve_data_path(args.data))
    images = images[-args.holdout:][: args.n] if args.from_start else images[-args.holdout:][-args.n:]
    codec = Codec(resolve_model(args.model), "cpu")
    base = codec.config()
    report = {"model": args.model, "data": args.data, "images": len(images), "holdout": args.holdout,
              "which": f"{'first' if args.from_start else 'last'} {len(images)} of the last {args.holdout}",
              "bits": base.bits, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
              "tolerance": args.tolerance, "series": {}}
    if args.merge and args.out.with_suffix(".json").exists():
        old = json.loads(args.out.with_suffix(".json").read_text())
        if (old["model"], old["data"], old["images"], old["bits"]) != (args.model, args.data, len(images), base.bits):
            raise SystemExit("--merge: the existing report is for other images or settings")
        report["series"] = old["series"]
    names = args.series.split(",")
    for name in names:
        overrides, steps_list = SERIES[name]
        if args.steps_list:
            steps_list = [int(v) for v in args.steps_list.split(",")]
        done = {r["steps"]: r for r in report["series"].get(name, [])}  # --merge: earlier points kept
        for steps in steps_list:
            done.pop(steps, None)
            row = run_point(codec, images, replace(base, steps=steps, **overrides), args.batch_size)
            row["settings"] = {**overrides, "steps": steps}
            done[steps] = row
            report["series"][name] = sorted(done.values(), key=lambda r: r["steps"])
            print(name, {k: v for k, v in row.items() if k != "per_image_ssim"}, file=sys.stderr, flush=True)
    reference = next((r for name in ("random", "random500") for r in report["series"].get(name, []) if r["steps"] == 500), None)
    if reference:
        report["reference_ssim"] = reference["ssim"]
        report["choices"] = {name: choose(rows, reference["ssim"], args.tolerance)
                             for name, rows in report["series"].items()}
        for name, c in report["choices"].items():
            print(f"{name}: " + (f"{c['restarts']}x{c['steps']} steps, SSIM {c['ssim']:.4f}, "
                                 f"{c['seconds_per_image'] * 1000:.1f} ms/image" if c else "never within tolerance"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out.with_suffix(".json"), (json.dumps(report, indent=1) + "\n").encode())
    if reference:
        plot(report, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
