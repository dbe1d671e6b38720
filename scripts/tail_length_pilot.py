"""How long must a target's tails be? The quantization-aware tail of a targeted fit (`fit --max-bytes`) is
run once per tail (nine of them with parts, side by side in one batch), so its length sets most of the fit's
cost in a batch. Per tail fraction (of the 100 steps): the mean quality of the files `fit --max-bytes` chooses
at each budget and metric, and the time of a whole target fit of the first 64 images in one batch against a
plain fit (the default fraction, 0.3: the plain fit's own tail, which no target changes).

    python scripts/tail_length_pilot.py --n 200 --fractions 0.3 0.2 0.1 0.05
    # -> results/enhance/tail_length_<model>.{json,md}

Budgets are multiples of WebP-q0's mean bytes on the same images.
"""
from __future__ import annotations

import json
import time

import numpy as np
from pilots import pilot_images, pilot_parser, save_pilot

from invcomp.enhance import choose
from invcomp.inversion.rate import OPERATING_BITS, PARTS_BITS, PRIORLESS_BITS


def main() -> None:
    ap = pilot_parser(__doc__, [0.5, 1, 2, 3])
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.2, 0.1, 0.05])
    ap.add_argument("--time-budget", type=float, default=2.0, help="time whole fits at this multiple of WebP q0's bytes")
    args = ap.parse_args()
    from invcomp.options import FitOptions

    codec, images, webp0 = pilot_images(args)
    images = list(images)
    plain_cfg = codec.config()
    codec.compress_batch(images[:4])  # warm-up
    rows, timing = [], []

    def seconds(fit) -> float:
        t0 = time.perf_counter()
        fit()
        return round(time.perf_counter() - t0, 2)

    plain = seconds(lambda: codec.choose_files(images[:64], FitOptions(plain_cfg)))
    budget = int(args.time_budget * webp0)
    for fraction in args.fractions:
        cfg = codec.config(qat_fraction=fraction)
        spent = seconds(lambda: codec.choose_files(images[:64], FitOptions(cfg, max_bytes=budget)))  # noqa: B023
        timing.append({"fraction": fraction, "seconds": spent, "plain_fit": plain, "ratio": round(spent / plain, 2)})
        print(json.dumps(timing[-1]), flush=True)
        found = codec._fit_bases(images, OPERATING_BITS, cfg, 64, None, PARTS_BITS, PRIORLESS_BITS)
        searched = len(OPERATING_BITS) + len(PARTS_BITS)
        bases = [[choose.Base(f[0].bits, f[0].data, f[1], j < searched) for j, f in enumerate(per)] for per in found]
        for mult in args.budgets:
            for metric in ("ssim", "psnr"):
                target = choose.Target(max_bytes=int(mult * webp0), metric=metric)
                chosen = [choose.choose_enhanced(x, b, target, True, PARTS_BITS).candidate for x, b in zip(images, bases)]
                rows.append({"fraction": fraction, "budget": mult, "bytes_budget": target.max_bytes, "metric": metric,
                             "bytes": round(float(np.mean([c.size for c in chosen])), 2),
                             "psnr": round(float(np.mean([c.psnr for c in chosen])), 3),
                             "ssim": round(float(np.mean([c.ssim for c in chosen])), 4)})
                print(json.dumps(rows[-1]), flush=True)
    report = {"model": args.model, "data": args.data, "images": len(images), "webp_q0_bytes": webp0,
              "timed_budget": budget, "timing": timing, "rows": rows}
    base = {(r["budget"], r["metric"]): r for r in rows if r["fraction"] == args.fractions[0]}
    md = [f"{args.model}, first {len(images)} test images; files chosen by `fit --max-bytes` for the metric named, "
          f"each tail fraction against {args.fractions[0]} (SSIM, PSNR in dB):", "",
          "| tail fraction | budget | metric | bytes | PSNR | SSIM | change in the metric |", "|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        ref = base[(r["budget"], r["metric"])]
        delta = r[r["metric"]] - ref[r["metric"]]
        md.append(f"| {r['fraction']} | {r['budget']}x ({r['bytes_budget']} B) | {r['metric']} | {r['bytes']:.2f} | "
                  f"{r['psnr']:.3f} | {r['ssim']:.4f} | {delta:+.4f} |")
    md += ["", f"A whole target fit (`--max-bytes {budget}`, with parts) of the first {min(64, len(images))} images in one "
           f"batch, one thread, against a plain fit ({plain:.2f} s):", "",
           "| tail fraction | seconds | x plain fit |", "|---:|---:|---:|"]
    md += [f"| {t['fraction']} | {t['seconds']:.2f} | {t['ratio']:.2f} |" for t in timing]
    save_pilot(f"tail_length_{args.model}", report, md)


if __name__ == "__main__":
    main()
