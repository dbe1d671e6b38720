"""Pilot of enhancement-layer designs at per-image byte budgets (multiples of WebP-q0's mean bytes).

    python scripts/enhance_pilot.py --model airplanes32 --data cifar10_airplane_test.npz --n 100 \
        --budgets 0.5 1 2 3 --variants dct8 dct4 dct8c4 dct8+4 --metric ssim
    python scripts/enhance_pilot.py --model flowers64 --data flowers_64_test.npz --n 60 --threads 2 \
        --budgets 1 2 3 4 --variants dct8+4 dct16+8 dct8+16 --metric psnr     # 16x16 blocks on 64x64 images

For every image: the base latent at each operating bit depth (one inversion run), then per variant
the finest residual part that fits the budget left; the best (by SSIM) base+part per image is kept.
WebP's best file within the same budget is the reference. Writes results/enhance/pilot_<model>.json/.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name: (block side, chroma index, block side also tried on the winning base); chroma index j makes the
# chroma step 2^(j/4) times the luma step; "dct8+4" is what `fit` does
VARIANTS = {"dct8": (8, 0, None), "dct4": (4, 0, None), "dct8c4": (8, 4, None), "dct4c4": (4, 4, None),
            "dct8+4": (8, 0, 4), "dct16+8": (16, 0, 8), "dct8+16": (8, 0, 16)}


def best_classic(fmt: str, image: np.ndarray, budget: int, settings) -> tuple[int, np.ndarray] | None:
    from invcomp.bench.classic import classic_roundtrip

    best = None
    for q in settings:
        data, dec = classic_roundtrip(fmt, image, q)
        if len(data) <= budget and (best is None or q > best[2]):
            best = (len(data), dec, q)
    return None if best is None else best[:2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--data", default="cifar10_airplane_test.npz")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--budgets", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--metric", default="ssim", help="what the chooser maximises within the budget: ssim or psnr")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from invcomp.bench.classic import classic_roundtrip
    from invcomp.bench.data import load_bench_data
    from invcomp.codec import Codec
    from invcomp.enhance import parts
    from invcomp.enhance.choose import Base, Target, choose_enhanced
    from invcomp.metrics import image_quality

    parts.TRANSFORMS.setdefault(4, 16)  # 16x16 blocks are no part of the format: this pilot only measures them

    codec = Codec(args.model, "cpu")
    data = load_bench_data(args.data, codec.resolution, args.n)
    images = data.images
    webp0 = float(np.mean([len(classic_roundtrip("WEBP", im, 0)[0]) for im in images]))
    t0 = time.time()
    cands = codec.compress_candidates(list(images))
    fit_s = time.time() - t0
    rows = []
    for mult in args.budgets:
        budget = int(round(mult * webp0))
        ref = [best_classic("WEBP", im, budget, range(0, 101, 5)) for im in images]
        ok = [r for r in ref if r is not None]
        if ok:  # images none of whose WebP files fits the budget are left out of WebP's mean (n says how many fit)
            wq = image_quality(np.stack([images[i] for i, r in enumerate(ref) if r]), np.stack([r[1] for r in ok]))
            rows.append({"budget_x": mult, "budget": budget, "codec": "webp", "n": len(ok), "bytes": np.mean([r[0] for r in ok]),
                         "psnr": float(wq[0].mean()), "ssim": float(wq[1].mean())})
        else:
            rows.append({"budget_x": mult, "budget": budget, "codec": "webp", "n": 0, "bytes": None, "psnr": None, "ssim": None})
        base_best = [max((c for c in cs if c.size <= budget), key=lambda c: c.ssim, default=None) for cs in cands]
        rows.append({"budget_x": mult, "budget": budget, "codec": "base only", "n": sum(b is not None for b in base_best),
                     "bytes": np.mean([b.size for b in base_best if b]), "psnr": np.mean([b.psnr for b in base_best if b]),
                     "ssim": np.mean([b.ssim for b in base_best if b])})
        bases = [[Base(c.bits, c.data, codec.decompress(c.data)) for c in cs] for cs in cands]
        for v in args.variants:
            block, chroma, second = VARIANTS[v]
            t1 = time.time()
            target = Target(max_bytes=budget, metric=args.metric, block=block, second_block=second, chroma=chroma)
            chosen = [choose_enhanced(x, b, target).candidate for x, b in zip(images, bases)]
            ok = [c for c in chosen if c.size <= budget]
            rows.append({"budget_x": mult, "budget": budget, "codec": f"base+{v}", "n": len(ok),
                         "bytes": float(np.mean([c.size for c in ok])), "psnr": float(np.mean([c.psnr for c in ok])),
                         "ssim": float(np.mean([c.ssim for c in ok])), "seconds": round(time.time() - t1, 1),
                         "with_parts": sum(c.data[2] == 2 for c in ok)})
            print(rows[-1], flush=True)
    out = ROOT / "results" / "enhance"
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model, "data": data.name, "n": len(images), "webp_q0_mean_bytes": webp0, "fit_seconds": fit_s,
              "rows": rows}
    (out / f"pilot_{args.model}_{args.metric}.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    lines = ["| budget | codec | images | bytes | PSNR | SSIM |", "|---|---|---|---|---|---|"]
    for r in rows:
        if not r["n"]:
            lines.append(f"| {r['budget_x']:g}x ({r['budget']} B) | {r['codec']} | 0 | - | - | - |")
            continue
        lines.append(f"| {r['budget_x']:g}x ({r['budget']} B) | {r['codec']} | {r['n']} | {r['bytes']:.1f} | {r['psnr']:.2f} | "
                     f"{r['ssim']:.3f} |")
    (out / f"pilot_{args.model}_{args.metric}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
