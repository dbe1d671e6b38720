"""Which tails a byte budget needs: per budget and metric, the mean quality of each image's best file when
only some of a target's nine tails are fitted (the SSIM-fitted depths s2..s6, those fitted for parts p3..p5,
the priorless 3-bit base n3), as `fit --max-bytes` chooses among their files, with parts on p3..p5 and s3..s5.

    python scripts/tail_subsets_pilot.py --n 200        # results/enhance/tail_subsets_<model>.{json,md}

Tails branch from one shared run and do not depend on each other (`invert_branches`), so one fit of all nine
gives every subset's files. Every subset keeps s2, the fallback a budget nothing meets reports. The best
subset of each size is listed with its loss against all nine (SSIM, or PSNR in dB). With --time-budget B (a
multiple of WebP q0's bytes, one of --budgets), the first 64 images are also fitted in one batch at that
budget with the best SSIM subsets of 3 to 6 tails, timed against a plain fit and the full target fit.
"""
from __future__ import annotations

import itertools
import json
import time
from functools import partial

import numpy as np
from pilots import pilot_images, pilot_parser, save_pilot

from invcomp.enhance import choose
from invcomp.inversion.rate import OPERATING_BITS, PARTS_BITS, PRIORLESS_BITS


def main() -> None:
    ap = pilot_parser(__doc__, [0.5, 1, 2, 3])
    ap.add_argument("--time-budget", type=float, default=None, help="time subsets at this multiple of WebP q0's bytes")
    args = ap.parse_args()
    codec, images, webp0 = pilot_images(args)
    cfg = codec.config()
    priorless = codec.priorless(PRIORLESS_BITS, cfg)
    found = codec._fit_bases(list(images), OPERATING_BITS, cfg, 64, None, PARTS_BITS, PRIORLESS_BITS)  # with the pictures
    names = [f"s{b}" for b in OPERATING_BITS] + [f"p{b}" for b in PARTS_BITS] + [f"n{b}" for b in priorless]
    bases = [[choose.Base(c.bits, c.data, pixels, not n.startswith("n")) for (c, pixels), n in zip(per, names)]
             for per in found]
    first = names.index(f"s{min(OPERATING_BITS)}")
    others = [i for i in range(len(names)) if i != first]
    rows = []
    for mult in args.budgets:
        for metric in ("ssim", "psnr"):
            target = choose.Target(max_bytes=int(mult * webp0), metric=metric)
            score = choose._score(target)
            best = []  # per image, per base: its best score, with parts where searched or alone; -inf where nothing fits
            for x, per in zip(images, bases):
                row, guess = [], choose.STEP_LEVELS // 2
                for b in per:
                    alone = choose.Candidate(b.bits, b.data, *choose._quality(x, b.pixels))
                    options = [score(alone)[0]] if alone.size <= target.max_bytes else []
                    if b.searched and b.bits in PARTS_BITS:
                        part, guess = choose._search(x, b, target, target.block, guess)
                        options += [score(part)[0]] if part else []
                    row.append(max(options, default=-np.inf))
                best.append(row)
            best = np.array(best)
            full = float(np.mean(best.max(1)))
            subsets = {}
            for k in range(1, len(names)):
                losses = [(full - float(np.mean(best[:, [first, *s]].max(1))), [names[first], *(names[i] for i in s)])
                          for s in itertools.combinations(others, k - 1)]
                loss, kept = min(losses)
                subsets[k] = {"loss": loss, "tails": kept}
            rows.append({"budget": mult, "bytes": int(mult * webp0), "metric": metric, "all_tails": full,
                         "best_subsets": subsets})
            print(json.dumps(rows[-1]), flush=True)
    report = {"model": args.model, "data": args.data, "images": len(images), "webp_q0_bytes": webp0, "tails": names,
              "rows": rows}
    sizes = [k for k in (2, 3, 4, 5, 6) if k < len(names)]
    md = [f"{args.model}, first {len(images)} test images; the best subset of k tails (s2 always kept) and its loss: the "
          f"mean best score with all {len(names)} tails minus with that subset (SSIM, or PSNR in dB).", "",
          "| budget | metric | all tails | " + " | ".join(f"best {k}" for k in sizes) + " |",
          "|---|---|---:|" + "---|" * len(sizes)]
    for r in rows:
        cells = [f"{','.join(r['best_subsets'][k]['tails'])} ({r['best_subsets'][k]['loss']:.5f})" for k in sizes]
        md.append(f"| {r['budget']}x ({r['bytes']} B) | {r['metric']} | {r['all_tails']:.4f} | " + " | ".join(cells) + " |")
    if args.time_budget is not None:
        row = next(r for r in rows if r["budget"] == args.time_budget and r["metric"] == "ssim")
        report["timing"] = timing(codec, list(images[:64]), names, row)
        md += ["", f"Fitting the first {len(images[:64])} images in one batch at {row['bytes']} B, one thread (seconds, "
               "and against a plain fit):", "", "| fit | seconds | x plain fit | SSIM loss (200 images) |", "|---|---:|---:|---:|"]
        plain = report["timing"][0]["seconds"]
        md += [f"| {t['fit']} | {t['seconds']:.2f} | {t['seconds'] / plain:.2f} | {t['loss']} |" for t in report["timing"]]
    save_pilot(f"tail_subsets_{args.model}", report, md)


def timing(codec, images: list, names: list[str], row: dict) -> list[dict]:
    """Seconds of a plain fit, of the whole target fit (`choose_files`) and of fits that run only the best
    SSIM subsets of 3 to 6 tails at this row's budget (their parts searched as the target's are)."""
    from invcomp.options import FitOptions

    cfg, budget = codec.config(), row["bytes"]

    def seconds(fit) -> float:
        t0 = time.perf_counter()
        fit()
        return round(time.perf_counter() - t0, 2)

    def subset_fit(kept: list[str]) -> None:
        keep = lambda z: [n in kept for n in names]  # noqa: E731
        found = codec._fit_bases(images, OPERATING_BITS, cfg, 64, None, PARTS_BITS, PRIORLESS_BITS, keep=keep)
        for x, per in zip(images, found):
            bases = [choose.Base(f[0].bits, f[0].data, f[1], not n.startswith("n")) for f, n in zip(per, names) if f]
            choose.choose_enhanced(x, bases, choose.Target(max_bytes=budget), part_bits=PARTS_BITS)

    codec.compress_batch(images[:4])  # warm-up
    out = [{"fit": "plain fit", "seconds": seconds(lambda: codec.choose_files(images, FitOptions(cfg))), "loss": ""},
           {"fit": f"--max-bytes {budget}, all {len(names)} tails", "loss": "0",
            "seconds": seconds(lambda: codec.choose_files(images, FitOptions(cfg, max_bytes=budget)))}]
    for k in range(3, 7):
        kept = row["best_subsets"][k]["tails"]
        out.append({"fit": f"{k} tails: {','.join(kept)}", "seconds": seconds(partial(subset_fit, kept)),
                    "loss": f"{row['best_subsets'][k]['loss']:.5f}"})
        print(json.dumps(out[-1]), flush=True)
    return out


if __name__ == "__main__":
    main()
