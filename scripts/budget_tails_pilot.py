"""Which tails a byte budget needs. `fit --max-bytes` skips the tail of a depth whose file cannot fit:
judged when the tails start, from the shared run's latent quantized at that depth (`Codec.depths_within`,
with TAIL_SLACK bytes to spare). This pilot measures how far a tail's file ends below that estimate, and
per budget how many tails one image (as `fit` on one file) skips and whether any chosen file changes.

    python scripts/budget_tails_pilot.py --n 200 --budgets 0.5 1 2 3

Budgets are multiples of WebP-q0's mean bytes on the same images. Writes
results/enhance/budget_tails_<model>.{json,md}.
"""
from __future__ import annotations

import numpy as np
from pilots import pilot_images, pilot_parser, save_pilot


def main() -> None:
    args = pilot_parser(__doc__, [0.5, 1.0, 2.0, 3.0]).parse_args()
    from invcomp.enhance.choose import Base, Target, choose_enhanced
    from invcomp.inversion.rate import OPERATING_BITS, PARTS_BITS, PRIORLESS_BITS, TAIL_SLACK

    codec, images, webp0 = pilot_images(args)
    cfg = codec.config()
    branches = codec.branches(OPERATING_BITS, cfg, PARTS_BITS, PRIORLESS_BITS)
    names = ([f"s{b}" for b in OPERATING_BITS] + [f"p{b}" for b in PARTS_BITS]
             + [f"n{b}" for b, *_ in branches[len(OPERATING_BITS) + len(PARTS_BITS):]])
    estimates: list[np.ndarray] = []

    def record(z):  # (restarts, N, latent) -> each image's smallest estimate per branch; every tail runs
        flat = z.reshape(-1, z.shape[-1])
        estimates.append(np.stack([codec.estimated_sizes(flat, b).reshape(z.shape[:2]).min(0) for b, *_ in branches], 1))
        return [True] * len(branches)

    found = codec._fit_bases(list(images), OPERATING_BITS, cfg, 64, None, PARTS_BITS, PRIORLESS_BITS, keep=record)
    estimate = np.concatenate(estimates)  # (N, branches)
    final = np.array([[c.size for c, _ in per] for per in found])
    below = estimate - final  # how far each file ends below its estimate
    searched = len(OPERATING_BITS) + len(PARTS_BITS)
    bases = [[Base(c.bits, c.data, d, j < searched) for j, (c, d) in enumerate(per)] for per in found]
    originals = [codec.prepare(im)[0] for im in images]
    lowest = [b == min(OPERATING_BITS) for b, *_ in branches]

    rows = []
    for mult in args.budgets:
        budget = int(round(mult * webp0))
        kept = (estimate <= budget + TAIL_SLACK) | np.array(lowest)  # per image: the tails fit would run
        fits_but_skipped = int(((final <= budget) & ~kept).sum())
        for metric in ("ssim", "psnr"):
            target = Target(budget, metric=metric)
            changed = 0
            for x, every, keep in zip(originals, bases, kept):
                full = choose_enhanced(x, every, target, True, PARTS_BITS).candidate
                pruned = choose_enhanced(x, [b for b, k in zip(every, keep) if k], target, True, PARTS_BITS).candidate
                changed += full.data != pruned.data
            rows.append({"budget": mult, "bytes": budget, "metric": metric, "tails_run": round(float(kept.sum(1).mean()), 2),
                         "tails": len(branches), "files_that_fit_but_were_skipped": fits_but_skipped,
                         "changed_choices": changed})
    report = {"model": args.model, "data": args.data, "images": len(images), "webp_q0_bytes": round(webp0, 2),
              "tail_slack": TAIL_SLACK, "branches": names,
              "below_estimate": {n: {"max": int(below[:, i].max()), "mean": round(float(below[:, i].mean()), 2),
                                     "min": int(below[:, i].min())} for i, n in enumerate(names)},
              "rows": rows}
    lines = [f"{args.model}, first {len(images)} images of {args.data}; budgets are multiples of WebP-q0's mean "
             f"{webp0:.1f} B. A tail runs when its depth's estimate (the shared run's latent, quantized) is at most "
             f"budget + {TAIL_SLACK} B; per image, as `fit --max-bytes` on one file.", "",
             "How far each tail's file ends below the estimate (bytes; negative: above it):", "",
             "| tail | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names),
             "| most below | " + " | ".join(str(report["below_estimate"][n]["max"]) for n in names) + " |",
             "| mean | " + " | ".join(str(report["below_estimate"][n]["mean"]) for n in names) + " |", "",
             f"| budget | metric | tails run (of {len(branches)}) | files that fit but were skipped | choices changed |",
             "|---|---|---:|---:|---:|"]
    lines += [f"| {r['budget']}x ({r['bytes']} B) | {r['metric']} | {r['tails_run']} | "
              f"{r['files_that_fit_but_were_skipped']} | {r['changed_choices']} |" for r in rows]
    save_pilot(f"budget_tails_{args.model}", report, lines)


if __name__ == "__main__":
    main()
