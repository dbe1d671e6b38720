"""Pilot: where the part search starts (`choose.sized_guess` under a byte budget, `choose.quality_guess` for
a quality target): from the step the previous base needed (release 0.5.4; an image's first base from the
middle of the range), or from the step that encodings near it predict (release 0.5.5). The same files
either way is the test; the encodings and seconds saved the gain.

    python scripts/search_start_pilot.py --n 200 --budgets 0.5 1 2 3 --targets psnr:28 psnr:32 ssim:0.9 ssim:0.95
    python scripts/search_start_pilot.py --n 200 --budgets 0.5 1 2 3 --depth 3   # as `pack --max-bytes` searches

Per budget (multiples of WebP-q0's mean bytes over these images) and metric, `choose_enhanced` as `fit
--max-bytes` runs it (parts on the depths of PARTS_BITS), on bases fitted once; with --depth D only the
bases of that depth (fitted for SSIM and for parts), as an archive of D bits searches them. Writes
results/enhance/search_start_<model>[_depth<D>].{json,md}.
"""
from __future__ import annotations

import time

import numpy as np
from pilots import pilot_inputs, pilot_parser, save_pilot


def main() -> None:
    ap = pilot_parser(__doc__, [0.5, 1.0, 2.0, 3.0])
    ap.add_argument("--depth", type=int, default=None, help="only the bases of this bit depth, as `pack` searches")
    ap.add_argument("--targets", nargs="*", default=[], help="quality targets too, e.g. psnr:28 ssim:0.95")
    args = ap.parse_args()
    from invcomp.enhance import choose
    from invcomp.enhance import parts as enh
    from invcomp.inversion.rate import PARTS_BITS

    codec, images, webp0, bases = pilot_inputs(args, parts_bits=PARTS_BITS)
    part_bits = PARTS_BITS if args.depth is None else (args.depth,)
    if args.depth is not None:
        bases = [[b for b in per if b.bits == args.depth] for per in bases]
    settings = [(f"{m}x ({round(m * webp0)} B)", metric, choose.Target(max_bytes=round(m * webp0), metric=metric))
                for m in args.budgets for metric in ("ssim", "psnr")]
    for t in args.targets:
        metric, value = t.split(":")
        settings.append((f"--target-{metric} {value}", metric, choose.Target(**{f"target_{metric}": float(value)})))
    predicted = choose.sized_guess, choose.quality_guess
    release_054 = (lambda part_bytes, room, guess, last: guess), (lambda quality, target, guess, last: guess)
    encode_part, count = enh.encode_part, [0]

    def counted(*a, **k):
        count[0] += 1
        return encode_part(*a, **k)

    enh.encode_part = counted
    rows = []
    for label, metric, target in settings:
        row, files = {"setting": label, "metric": metric}, {}
        for start, (sized, quality) in (("previous step", release_054), ("predicted", predicted)):
            choose.sized_guess, choose.quality_guess = sized, quality
            count[0] = 0
            t0 = time.perf_counter()
            chosen = [choose.choose_enhanced(x, b, target, part_bits=part_bits).candidate for x, b in zip(images, bases)]
            row[start] = {"seconds": round(time.perf_counter() - t0, 2), "encodings": count[0],
                          "bytes": round(float(np.mean([c.size for c in chosen])), 2),
                          "psnr": round(float(np.mean([c.psnr for c in chosen])), 3),
                          "ssim": round(float(np.mean([c.ssim for c in chosen])), 4)}
            files[start] = [c.data for c in chosen]
        row["same_files"] = sum(a == b for a, b in zip(*files.values()))
        rows.append(row)
        print(row, flush=True)
    (choose.sized_guess, choose.quality_guess), enh.encode_part = predicted, encode_part
    which = "every base" if args.depth is None else f"the {args.depth}-bit bases only (as a {args.depth}-bit archive)"
    lines = [f"{args.model}, first {len(images)} images of {args.data}, {which}; budgets are multiples of WebP-q0's mean "
             f"{webp0:.1f} B; one thread. Part encodings and seconds of the search (bases fitted once), and how many "
             "of the images get the same file from both starts.", "",
             "| setting | metric | encodings, previous step | encodings, predicted | seconds, previous | seconds, predicted "
             "| same files |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        a, b = r["previous step"], r["predicted"]
        lines.append(f"| {r['setting']} | {r['metric']} | {a['encodings']} | {b['encodings']} "
                     f"({100 * (b['encodings'] / a['encodings'] - 1):+.0f} %) | {a['seconds']:.2f} | {b['seconds']:.2f} "
                     f"| {r['same_files']} / {len(images)} |")
    stem = f"search_start_{args.model}" + ("" if args.depth is None else f"_depth{args.depth}")
    save_pilot(stem, {"model": args.model, "data": args.data, "images": len(images), "depth": args.depth,
                      "webp_q0_mean_bytes": round(webp0, 2), "rows": rows}, lines)


if __name__ == "__main__":
    main()
