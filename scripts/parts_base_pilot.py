"""Pilot of the bases fitted for enhancement parts: the SSIM-fitted bases alone against SSIM-fitted bases
plus bases fitted with the pixel error weighted up (1 - SSIM + w MSE), at per-image byte budgets.

    python scripts/parts_base_pilot.py --model airplanes32 --data cifar10_airplane_test.npz --n 100 \
        --weights 10 100 1000 --parts-bits 2,3,4,5,6 3,4,5 --budgets 0.5 1 2 3 [--tails]

Per image and budget (multiples of WebP-q0's mean bytes over these images) `choose_enhanced` picks base
and parts for the best PSNR and, separately, the best SSIM, as `fit --max-bytes` does; the row also
counts which bases won ("S4+": the SSIM-fitted 4-bit base with parts, "M4": a pixel-fitted one alone).
Writes results/enhance/parts_base_<model>.json and .md.
"""
from __future__ import annotations

import collections
import json

import numpy as np
from pilots import pilot_images, pilot_parser, save_pilot


def main() -> None:
    ap = pilot_parser(__doc__, [0.5, 1.0, 2.0, 3.0])
    ap.add_argument("--weights", type=float, nargs="+", default=[100.0])
    ap.add_argument("--parts-bits", nargs="+", default=["3,4,5"], help="bit depths of the pixel-fitted bases")
    ap.add_argument("--tails", action="store_true", help="also the bases fit makes: tails of the SSIM-fitted run")
    args = ap.parse_args()
    from invcomp.enhance.choose import Base, Target, choose_enhanced
    from invcomp.formats.icz import split_file
    from invcomp.inversion.rate import PARTS_BITS, PARTS_MSE_WEIGHT

    codec, images, webp0 = pilot_images(args)

    def bases(cfg, bits, tag):
        found = codec.compress_candidates(list(images), bits, cfg)
        return [[(tag, Base(c.bits, c.data, codec.decompress(c.data))) for c in per] for per in found]

    ssim_fit = bases(codec.config(), (2, 3, 4, 5, 6), "S")
    sets = {"SSIM-fitted 2-6": ssim_fit}
    all_bits = sorted({int(b) for spec in args.parts_bits for b in spec.split(",")})
    for w in args.weights:
        pixel_fit = bases(codec.config(mse_weight=w), tuple(all_bits), "M")
        for spec in args.parts_bits:
            keep = {int(b) for b in spec.split(",")}
            sets[f"+ MSE x{w:g} at {spec}"] = [a + [(t, b) for t, b in m if b.bits in keep] for a, m in zip(ssim_fit, pixel_fit)]
    if args.tails:  # what fit does: the SSIM-fitted run's tails at PARTS_BITS under 1 - SSIM + PARTS_MSE_WEIGHT MSE
        found = codec.compress_candidates(list(images), (2, 3, 4, 5, 6), codec.config(), parts_bits=PARTS_BITS)
        sets[f"+ tails MSE x{PARTS_MSE_WEIGHT:g} at {','.join(map(str, PARTS_BITS))}"] = [
            [("S" if j < 5 else "M", Base(c.bits, c.data, codec.decompress(c.data))) for j, c in enumerate(per)]
            for per in found]
    rows = []
    for name, per_image in sets.items():
        for mult in args.budgets:
            budget = int(round(mult * webp0))
            row = {"set": name, "multiple": mult, "budget": budget}
            for metric in ("psnr", "ssim"):
                won = collections.Counter()
                chosen = []
                for x, tagged in zip(images, per_image):
                    c = choose_enhanced(x, [b for _, b in tagged], Target(max_bytes=budget, metric=metric)).candidate
                    chosen.append(c)
                    tag = next(t for t, b in tagged if b.bits == c.bits and split_file(b.data)[1] == split_file(c.data)[1])
                    won[f"{tag}{c.bits}{'+' if c.data[2] == 2 else ''}"] += 1
                row[f"best_{metric}"] = {"bytes": round(float(np.mean([c.size for c in chosen])), 2),
                                         "psnr": round(float(np.mean([c.psnr for c in chosen])), 3),
                                         "ssim": round(float(np.mean([c.ssim for c in chosen])), 4),
                                         "won": dict(sorted(won.items()))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {"model": args.model, "data": args.data, "images": len(images), "webp_q0_mean_bytes": round(webp0, 2),
              "rows": rows}
    lines = [f"{args.model}, first {len(images)} images of {args.data}; budgets are multiples of WebP-q0's mean "
             f"{webp0:.1f} B.", "", "| bases | budget | PSNR (chosen for PSNR) | SSIM (chosen for SSIM) |",
             "|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['multiple']:g}x ({r['budget']} B) | {r['best_psnr']['psnr']:.3f} | "
                     f"{r['best_ssim']['ssim']:.4f} |")
    save_pilot(f"parts_base_{args.model}", report, lines)


if __name__ == "__main__":
    main()
