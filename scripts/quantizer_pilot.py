"""Pilot of the residual quantizer's dead zones (an encoder-only choice: decoders see only levels).

    python scripts/quantizer_pilot.py --model airplanes32 --data cifar10_airplane_test.npz --n 100 \
        --budgets 1 2 3 --variants 0.2,0.2 0.1,0.3 0.0,0.35

A variant is LEVEL,ZERO: level = floor(|c|/step + 0.5 - LEVEL), and a level 1 becomes 0 below
|c|/step = 0.5 + ZERO (residual.py). Per image and budget (multiples of WebP-q0's mean bytes over these
images), `choose_enhanced` picks base and parts for the best PSNR and, separately, the best SSIM.
Writes results/enhance/quantizer_<model>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--data", default="cifar10_airplane_test.npz")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--budgets", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    ap.add_argument("--variants", nargs="+", default=["0.2,0.2", "0.1,0.3", "0.0,0.35"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from invcomp.bench.classic import classic_roundtrip
    from invcomp.bench.data import load_bench_data
    from invcomp.codec import Codec
    from invcomp.enhance import residual
    from invcomp.enhance.choose import Base, Target, choose_enhanced

    codec = Codec(args.model, "cpu")
    images = load_bench_data(args.data, codec.resolution, args.n).images
    webp0 = float(np.mean([len(classic_roundtrip("WEBP", im, 0)[0]) for im in images]))
    found = codec.compress_candidates(list(images), config=codec.config())
    bases = [[Base(c.bits, c.data, codec.decompress(c.data)) for c in per] for per in found]
    rows = []
    for variant in args.variants:
        level, zero = (float(v) for v in variant.split(","))
        residual.LEVEL_DEADZONE, residual.ZERO_DEADZONE = level, zero
        for mult in args.budgets:
            budget = int(round(mult * webp0))
            row = {"variant": variant, "multiple": mult, "budget": budget}
            t0 = time.perf_counter()
            for metric in ("psnr", "ssim"):
                chosen = [choose_enhanced(x, b, Target(max_bytes=budget, metric=metric)).candidate
                          for x, b in zip(images, bases)]
                row[f"best_{metric}"] = {"bytes": round(float(np.mean([c.size for c in chosen])), 2),
                                         "psnr": round(float(np.mean([c.psnr for c in chosen])), 3),
                                         "ssim": round(float(np.mean([c.ssim for c in chosen])), 4)}
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = ROOT / "results" / "enhance"
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model, "data": args.data, "images": len(images), "webp_q0_mean_bytes": round(webp0, 2),
              "rows": rows}
    (out / f"quantizer_{args.model}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"{args.model}, first {len(images)} images of {args.data}; budgets are multiples of WebP-q0's mean "
             f"{webp0:.1f} B. Variant = level dead zone, zero dead zone.", "",
             "| variant | budget | PSNR (best PSNR) | bytes | SSIM (best SSIM) | bytes |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        p, s = r["best_psnr"], r["best_ssim"]
        lines.append(f"| {r['variant']} | {r['multiple']:g}x ({r['budget']} B) | {p['psnr']:.3f} | {p['bytes']:.1f} | "
                     f"{s['ssim']:.4f} | {s['bytes']:.1f} |")
    (out / f"quantizer_{args.model}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
