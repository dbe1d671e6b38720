"""Which bases need a part search: per budget and metric, which base gives each image's best file (with
its parts or alone), and what searching parts on fewer bases loses (every base alone stays a candidate).

    python scripts/search_bases_pilot.py --n 200        # results/enhance/search_bases_<model>.{json,md}

Budgets are multiples of WebP-q0's mean bytes on the same images; bases: the SSIM-fitted depths
(s2..s6) and those fitted for parts (p3..p5), as `fit --max-bytes` makes them.
"""
from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
from pilots import pilot_inputs, pilot_parser, save_pilot

from invcomp.enhance import choose
from invcomp.inversion.rate import OPERATING_BITS, PARTS_BITS


def mean_with(best: list, searched) -> float:
    """The mean of each image's best score when only the bases `searched` get a part search."""
    return float(np.mean([max(max(r[i][0] if i in searched else -1, r[i][1]) for i in range(len(r))) for r in best]))


def main() -> None:
    args = pilot_parser(__doc__, [0.5, 1, 2, 3]).parse_args()
    codec, images, webp0, bases = pilot_inputs(args, PARTS_BITS)
    names = [f"s{b}" for b in OPERATING_BITS] + [f"p{b}" for b in PARTS_BITS]
    chosen = [i for i, n in enumerate(names) if int(n[1:]) in PARTS_BITS]
    rows = []
    for mult in args.budgets:
        for metric in ("ssim", "psnr"):
            target = choose.Target(max_bytes=int(mult * webp0), metric=metric)
            score = choose._score(target)
            best = []  # per image, per base: (its best score with parts, its score alone), -1 where nothing fits
            for x, per in zip(images, bases):
                row, guess = [], choose.STEP_LEVELS // 2
                for b in per:
                    found, guess = choose._search(x, b, target, target.block, guess)
                    alone = choose.Candidate(b.bits, b.data, *choose._quality(x, b.pixels))
                    row.append((score(found)[0] if found else -1, score(alone)[0] if alone.size <= target.max_bytes else -1))
                best.append(row)

            full = mean_with(best, range(len(names)))
            subsets = {k: min((full - mean_with(best, s), ",".join(names[i] for i in s))
                              for s in itertools.combinations(range(len(names)), k)) for k in range(3, len(names))}
            rows.append({"budget": mult, "bytes": int(mult * webp0), "metric": metric, "all_bases": full,
                         "wins": dict(Counter(names[max(range(len(r)), key=lambda k: max(r[k]))] for r in best)),
                         "loss_parts_bits_only": full - mean_with(best, chosen),
                         "best_subsets": {k: {"loss": v[0], "bases": v[1]} for k, v in subsets.items()}})
            print(json.dumps(rows[-1]), flush=True)
    report = {"model": args.model, "data": args.data, "images": len(images), "webp_q0_bytes": webp0,
              "searched": [names[i] for i in chosen], "rows": rows}
    md = [f"{args.model}, first {len(images)} test images; loss = mean score with every base searched minus with "
          f"parts searched on {', '.join(names[i] for i in chosen)} only (SSIM, or PSNR in dB).", "",
          "| budget | metric | all bases | loss, 3-5 bits only | best 5 bases (loss) | wins per base |", "|---|---|---:|---:|---|---|"]
    for r in rows:
        five = r["best_subsets"][5]
        md.append(f"| {r['budget']}x ({r['bytes']} B) | {r['metric']} | {r['all_bases']:.4f} | {r['loss_parts_bits_only']:.5f} | "
                  f"{five['bases']} ({five['loss']:.5f}) | {', '.join(f'{k} {v}' for k, v in sorted(r['wins'].items()))} |")
    save_pilot(f"search_bases_{args.model}", report, md)


if __name__ == "__main__":
    main()
