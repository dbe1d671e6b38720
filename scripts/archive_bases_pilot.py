"""Which base should an archive's enhancement parts go on? An archive codes every image of a segment at
one bit depth, so `pack --max-bytes` puts each image's parts on its base at the archive's depth: fitted for
SSIM as a plain fit is (release 0.5.3), or fitted for parts as `fit --max-bytes` fits its parts bases (the
pixel error weighted PARTS_MSE_WEIGHT in the inversion's tail). Per budget, metric and base: the mean
quality of the best file on that base alone (parts searched as `fit` searches them), against what `fit
--max-bytes` reaches choosing among every base.

    python scripts/archive_bases_pilot.py --n 200        # results/enhance/archive_bases_<model>.{json,md}
    python scripts/archive_bases_pilot.py --n 64 --time  # results/enhance/archive_cost_<model>.{json,md}

Budgets are multiples of WebP-q0's mean bytes on the same images. Bases: s3..s5 (fitted for SSIM), p3..p5
(fitted for parts), from one run (their tails do not depend on each other).
"""
from __future__ import annotations

import itertools
import json

import numpy as np
from pilots import pilot_images, pilot_parser, save_pilot

from invcomp.enhance import choose
from invcomp.enhance import presets as enh_presets
from invcomp.formats.icz import with_parts
from invcomp.inversion.rate import OPERATING_BITS, PARTS_BITS, PRIORLESS_BITS


def main() -> None:
    ap = pilot_parser(__doc__, [0.5, 1, 2, 3])
    ap.add_argument("--time", action="store_true", help="only time packing the first 64 images at each budget, one batch")
    args = ap.parse_args()
    codec, images, webp0 = pilot_images(args)
    if args.time:
        return timing(args, codec, list(images[:64]), webp0)
    cfg = codec.config()
    priorless = codec.priorless(PRIORLESS_BITS, cfg)
    found = codec._fit_bases(list(images), OPERATING_BITS, cfg, 64, None, PARTS_BITS, PRIORLESS_BITS)
    names = [f"s{b}" for b in OPERATING_BITS] + [f"p{b}" for b in PARTS_BITS] + [f"n{b}" for b in priorless]
    bases = [[choose.Base(c.bits, c.data, pixels, not n.startswith("n")) for (c, pixels), n in zip(per, names)]
             for per in found]
    singles = [n for n in names if n[0] in "sp" and int(n[1:]) in PARTS_BITS]
    rows = []
    for mult in args.budgets:
        for metric in ("ssim", "psnr"):
            target = choose.Target(max_bytes=int(mult * webp0), metric=metric)
            row = {"budget": mult, "bytes": target.max_bytes, "metric": metric}
            every = [choose.choose_enhanced(x, per, target, True, PARTS_BITS).candidate for x, per in zip(images, bases)]
            row["fit"] = _mean(every)
            for name in singles:
                i = names.index(name)
                chosen = [choose.choose_enhanced(x, [per[i]], target).candidate for x, per in zip(images, bases)]
                row[name] = _mean([c if c.size <= target.max_bytes else None for c in chosen])
            for b in PARTS_BITS:  # per image, the best of the bases at one depth (as `pack` chooses since 0.5.4)
                every = [i for i, n in enumerate(names) if int(n[1:]) == b]
                subsets = {f"any{b}": every}
                if len(every) > 2:  # and of each pair of them
                    subsets.update({"+".join(names[i] for i in pair): list(pair) for pair in itertools.combinations(every, 2)})
                for key, kept in subsets.items():
                    chosen = [choose.choose_enhanced(x, [per[i] for i in kept], target, True, PARTS_BITS).candidate
                              for x, per in zip(images, bases)]
                    row[key] = _mean([c if c.size <= target.max_bytes else None for c in chosen])
            rows.append(row)
            print(json.dumps(row), flush=True)
    presets = []  # the presets with a part on a depth fitted both ways: their part at its fixed step on each
    for level, (bits, step) in enh_presets.presets().items():
        if step is None or bits not in PARTS_BITS:
            continue
        row = {"quality": level, "bits": bits, "step": step}
        for fit in "sp":
            i = names.index(f"{fit}{bits}")
            files = []
            for x, per in zip(images, bases):
                found, _, (psnr, ssim) = choose.best_kind(x, *choose.layered(x, per[i].pixels, step, 1))
                files.append(choose.Candidate(bits, with_parts(per[i].data, found), psnr, ssim))
            row[f"{fit}{bits}"] = _mean(files)
        presets.append(row)
        print(json.dumps(row), flush=True)
    report = {"model": args.model, "data": args.data, "images": len(images), "webp_q0_bytes": webp0, "rows": rows,
              "presets": presets}
    best = [k for k in rows[0] if k.startswith("any") or "+" in k]
    md = [f"{args.model}, first {len(images)} test images: the mean {'/'.join(('SSIM', 'PSNR'))} (for the metric of "
          "the row) of the best file with parts on one base, as an archive of that depth and fit would store it, "
          "and of `fit --max-bytes` choosing among all bases (images where a base has no file within the budget "
          "count in its `within`); anyB: per image the best of the bases at B bits (sB, pB and the priorless nB where "
          "there is one).", "",
          "| budget | metric | fit --max-bytes | " + " | ".join(singles + best) + " |",
          "|---|---|---:|" + "---:|" * len(singles + best)]
    for r in rows:
        cells = [f"{r[n][r['metric']]:.4f} ({r[n]['within']})" if r[n]["within"] else "-" for n in singles + best]
        md.append(f"| {r['budget']}x ({r['bytes']} B) | {r['metric']} | {r['fit'][r['metric']]:.4f} | " + " | ".join(cells) + " |")
    md += ["", "Presets with a part on a depth fitted both ways (kind chosen for SSIM, as `fit --quality` does):", "",
           "| preset | base | fitted for SSIM: bytes, PSNR, SSIM | fitted for parts: bytes, PSNR, SSIM |", "|---|---|---|---|"]
    for r in presets:
        cells = [f"{r[k]['bytes']:.1f} B, {r[k]['psnr']:.2f} dB, {r[k]['ssim']:.4f}" for k in (f"s{r['bits']}", f"p{r['bits']}")]
        md.append(f"| {r['quality']} | {r['bits']} bits, step {r['step']} | " + " | ".join(cells) + " |")
    save_pilot(f"archive_bases_{args.model}", report, md)


def timing(args, codec, images: list, webp0: float) -> None:
    """Seconds to fit one batch as `pack` does: without parts, with parts on the SSIM-fitted base alone (release
    0.5.3) and with parts on the best of the depth's bases (archive.fit_enhanced); results/enhance/archive_cost_<model>."""
    import time

    from invcomp.archive import fit_enhanced

    cfg = codec.config()
    codec.compress_batch(images[:4])  # warm-up

    def seconds(fit) -> float:
        t0 = time.perf_counter()
        fit()
        return round(time.perf_counter() - t0, 2)

    def ssim_base_alone(target: choose.Target) -> None:
        codes = codec.fit_codes(np.stack(images), cfg)
        for x, c, pixels in zip(images, codes, codec.decode_codes(codes, cfg.bits)):
            choose.choose_enhanced(x, [choose.Base(cfg.bits, codec.encode(c, cfg.bits), pixels)], target)

    rows = [{"fit": "no parts", "seconds": seconds(lambda: codec.fit_codes(np.stack(images), cfg))}]
    for mult in args.budgets:
        target = choose.Target(max_bytes=int(mult * webp0))
        old = seconds(lambda: ssim_base_alone(target))  # noqa: B023
        new = seconds(lambda: fit_enhanced(codec, images, cfg, target))  # noqa: B023
        rows += [{"fit": f"{target.max_bytes} B, parts on the SSIM base (0.5.3)", "seconds": old},
                 {"fit": f"{target.max_bytes} B, parts on the best base", "seconds": new}]
        print(json.dumps(rows[-2:]), flush=True)
    plain = rows[0]["seconds"]
    md = [f"{args.model}: packing the first {len(images)} test images in one batch at {cfg.bits} bits, {args.threads} thread(s):",
          "", "| fit | seconds | x no parts |", "|---|---:|---:|"]
    md += [f"| {r['fit']} | {r['seconds']:.2f} | {r['seconds'] / plain:.2f} |" for r in rows]
    save_pilot(f"archive_cost_{args.model}", {"model": args.model, "images": len(images), "bits": cfg.bits, "rows": rows}, md)


def _mean(chosen: list) -> dict:
    kept = [c for c in chosen if c is not None]
    if not kept:
        return {"within": 0}
    return {"within": len(kept), "bytes": round(float(np.mean([c.size for c in kept])), 2),
            "psnr": round(float(np.mean([c.psnr for c in kept])), 3), "ssim": round(float(np.mean([c.ssim for c in kept])), 4)}


if __name__ == "__main__":
    main()
