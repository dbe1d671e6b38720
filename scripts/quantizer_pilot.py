"""Pilot of the residual quantizer's dead zones (an encoder-only choice: decoders see only levels).

    python scripts/quantizer_pilot.py --model airplanes32 --data cifar10_airplane_test.npz --n 100 \
        --budgets 1 2 3 --variants 0.2,0.2 0.1,0.3 0.0,0.35

A variant is LEVEL,ZERO: level = floor(|c|/step + 0.5 - LEVEL), and a level 1 becomes 0 below
|c|/step = 0.5 + ZERO (residual.py). Per image and budget (multiples of WebP-q0's mean bytes over these
images), `choose_enhanced` picks base and parts for the best PSNR and, separately, the best SSIM.
Writes results/enhance/quantizer_<model>.json and .md.
"""
from __future__ import annotations

import json
import time

import numpy as np
from pilots import pilot_inputs, pilot_parser, save_pilot


def main() -> None:
    ap = pilot_parser(__doc__, [1.0, 2.0, 3.0])
    ap.add_argument("--variants", nargs="+", default=["0.2,0.2", "0.1,0.3", "0.0,0.35"])
    args = ap.parse_args()
    from invcomp.enhance import residual
    from invcomp.enhance.choose import Target, choose_enhanced

    codec, images, webp0, bases = pilot_inputs(args)
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
    report = {"model": args.model, "data": args.data, "images": len(images), "webp_q0_mean_bytes": round(webp0, 2),
              "rows": rows}
    lines = [f"{args.model}, first {len(images)} images of {args.data}; budgets are multiples of WebP-q0's mean "
             f"{webp0:.1f} B. Variant = level dead zone, zero dead zone.", "",
             "| variant | budget | PSNR (best PSNR) | bytes | SSIM (best SSIM) | bytes |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        p, s = r["best_psnr"], r["best_ssim"]
        lines.append(f"| {r['variant']} | {r['multiple']:g}x ({r['budget']} B) | {p['psnr']:.3f} | {p['bytes']:.1f} | "
                     f"{s['ssim']:.4f} | {s['bytes']:.1f} |")
    save_pilot(f"quantizer_{args.model}", report, lines)


if __name__ == "__main__":
    main()
