"""Do more inversion steps pay at a byte budget? `fit --max-bytes` (files chosen for SSIM) with the
default 100 steps and with more, on the same images, with the fitting time of each.

    python scripts/target_steps_pilot.py --n 200 --budgets 1 --steps 100 150 200
    # -> results/enhance/target_steps_<model>.json

Budgets are multiples of WebP-q0's mean bytes on the same images.
"""
from __future__ import annotations

import json
import time

import numpy as np
from pilots import pilot_images, pilot_parser, save_pilot


def main() -> None:
    ap = pilot_parser(__doc__, [1.0])
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 150, 200])
    args = ap.parse_args()
    from invcomp.options import FitOptions

    codec, images, webp0 = pilot_images(args)
    images = list(images)
    rows = []
    for mult in args.budgets:
        for steps in args.steps:
            t0 = time.perf_counter()
            chosen = codec.choose_files(images, FitOptions(codec.config(steps=steps), max_bytes=int(mult * webp0)))
            rows.append({"budget": mult, "bytes_budget": int(mult * webp0), "steps": steps,
                         "seconds": round(time.perf_counter() - t0, 2),
                         "bytes": round(float(np.mean([c.candidate.size for c in chosen])), 2),
                         "psnr": round(float(np.mean([c.candidate.psnr for c in chosen])), 3),
                         "ssim": round(float(np.mean([c.candidate.ssim for c in chosen])), 4)})
            print(json.dumps(rows[-1]), flush=True)
    save_pilot(f"target_steps_{args.model}",
               {"model": args.model, "data": args.data, "images": len(images), "webp_q0_bytes": webp0, "rows": rows})


if __name__ == "__main__":
    main()
