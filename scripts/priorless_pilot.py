"""Bases without the latent prior at budgets: what a tail with prior weight 0 at PRIORLESS_BITS adds to the
`--max-bytes` choice, and whether a part search on it pays.

    python scripts/priorless_pilot.py --model airplanes32 --n 100
    python scripts/priorless_pilot.py --n 200 --budgets 0.5 0.6 0.7 0.8 0.9 1 --stem priorless_room
    python scripts/priorless_pilot.py --n 64 --budgets 0.5 1 2 3 --time    # results/enhance/priorless_time_<model>.*

Per image and budget (multiples of WebP-q0's mean bytes on the same images), the best-SSIM file `fit
--max-bytes` chooses from: the bases without the priorless ones; with them as candidates alone (what `fit`
does); with a part search on them too. Seconds are the choice's (the fit is shared). Writes
results/enhance/priorless_<model>.{json,md}. With --time: `fit --max-bytes` on the first --n images in one
batch, its priorless tail run only where the budget is tight (PRIORLESS_ROOM, as shipped) against always.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from pilots import pilot_images, pilot_parser, save_pilot


def main() -> None:
    ap = pilot_parser(__doc__, [0.5, 1.0, 2.0])
    ap.add_argument("--stem", default="priorless", help="results/enhance/<stem>_<model>.{json,md}")
    ap.add_argument("--time", action="store_true", help="time fit --max-bytes with PRIORLESS_ROOM against without")
    args = ap.parse_args()
    codec, images, webp0 = pilot_images(args)
    if args.time:
        return timing(args, codec, list(images), webp0)
    from invcomp.enhance.choose import Base, Target, choose_enhanced
    from invcomp.inversion.rate import OPERATING_BITS, PARTS_BITS, PRIORLESS_BITS

    found = codec._fit_bases(list(images), OPERATING_BITS, codec.config(), 64, None, PARTS_BITS, PRIORLESS_BITS)
    searched = len(OPERATING_BITS) + len(PARTS_BITS)
    bases = [[Base(c.bits, c.data, d, j < searched) for j, (c, d) in enumerate(per)] for per in found]
    sets = {"without priorless bases": lambda per: per[:searched],
            "priorless bases alone (fit)": lambda per: per,
            "priorless bases with parts": lambda per: [replace(b, searched=True) for b in per]}
    rows = []
    for mult in args.budgets:
        budget = int(round(mult * webp0))
        for name, pick in sets.items():
            t0 = time.perf_counter()
            chosen = [choose_enhanced(x, pick(per), Target(max_bytes=budget), part_bits=PARTS_BITS).candidate
                      for x, per in zip(images, bases)]
            rows.append({"multiple": mult, "budget": budget, "bases": name,
                         "seconds": round(time.perf_counter() - t0, 2),
                         "bytes": round(float(np.mean([c.size for c in chosen])), 2),
                         "psnr": round(float(np.mean([c.psnr for c in chosen])), 3),
                         "ssim": round(float(np.mean([c.ssim for c in chosen])), 4)})
    lines = [f"{args.model} on the first {len(images)} images of {args.data}; priorless bits "
             f"{list(codec.priorless(PRIORLESS_BITS))}; best SSIM within the budget",
             "", "| budget | bases | choice seconds | bytes | PSNR | SSIM |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['multiple']:g}x ({r['budget']} B) | {r['bases']} | {r['seconds']} | {r['bytes']} | {r['psnr']} | "
              f"{r['ssim']} |" for r in rows]
    save_pilot(f"{args.stem}_{args.model}", {"model": args.model, "data": args.data, "images": len(images),
                                           "webp_q0_mean_bytes": round(webp0, 2), "rows": rows}, lines)


def timing(args, codec, images, webp0) -> None:
    """Seconds and mean file of `fit --max-bytes` per budget, with PRIORLESS_ROOM and with the priorless tail
    always run (the room made infinite); one batch."""
    import invcomp.codec as codec_module
    from invcomp.options import FitOptions

    shipped = codec_module.PRIORLESS_ROOM
    rows = []
    for mult in args.budgets:
        budget = int(round(mult * webp0))
        for name, room in (("priorless tail where tight", shipped), ("priorless tail always", 10**9)):
            codec_module.PRIORLESS_ROOM = room
            t0 = time.perf_counter()
            chosen = codec.choose_files(images, FitOptions(codec.config(), max_bytes=budget), batch_size=len(images))
            rows.append({"multiple": mult, "budget": budget, "fit": name, "seconds": round(time.perf_counter() - t0, 2),
                         "bytes": round(float(np.mean([c.candidate.size for c in chosen])), 2),
                         "ssim": round(float(np.mean([c.candidate.ssim for c in chosen])), 4)})
    codec_module.PRIORLESS_ROOM = shipped
    lines = [f"{args.model}: `fit --max-bytes` on the first {len(images)} images of {args.data} in one batch, "
             f"{args.threads} thread(s), PRIORLESS_ROOM = {shipped}", "",
             "| budget | fit | seconds | bytes | SSIM |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['multiple']:g}x ({r['budget']} B) | {r['fit']} | {r['seconds']} | {r['bytes']} | {r['ssim']} |"
              for r in rows]
    save_pilot(f"{args.stem}_time_{args.model}", {"model": args.model, "data": args.data, "images": len(images),
                                                "threads": args.threads, "rows": rows}, lines)


if __name__ == "__main__":
    main()
