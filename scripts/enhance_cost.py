"""What enhancement parts cost in fitting time: a plain fit, a targeted fit without parts (every base
bit depth in one inversion run, as release 0.1.0's --max-bytes), and the same with the part search
(`fit --max-bytes`); and a preset's 4-bit base alone (`--quality 3`) against the same base with one part
(`--quality 8`); on the same images in one run.

    python scripts/enhance_cost.py --model airplanes32 --n 64 --max-bytes 171 43

Writes results/enhance/cost_<model>.json (cost_<model>_batch<B>.json with --batch-size B other than 64)
and prints the times and their ratios.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--data", default="cifar10_airplane_test.npz")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--max-bytes", type=int, nargs="+", default=[171, 43],
                    help="budgets; below the larger depths' files a target skips their tails")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64,
                    help="images fitted together (1: one at a time, as `fit` on one file)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from invcomp.bench.data import load_bench_data
    from invcomp.codec import Codec
    from invcomp.models.device import cpu_flags
    from invcomp.options import FitOptions, fit_options

    codec = Codec(args.model, "cpu")
    images = list(load_bench_data(args.data, codec.resolution, args.n).images)
    codec.compress_batch(images[:4])  # warm-up
    cfg = codec.config()
    runs = {}
    fits = [("plain fit", FitOptions(cfg))]
    for b in args.max_bytes:
        fits += [(f"--max-bytes {b}, latent only", FitOptions(cfg, max_bytes=b, enhance=False)),
                 (f"--max-bytes {b} with parts", FitOptions(cfg, max_bytes=b))]
    fits += [("--quality 3 (4-bit base)", fit_options(cfg, quality=3)),
             ("--quality 8 (4-bit base, one part)", fit_options(cfg, quality=8))]
    for name, options in fits:
        t0 = time.perf_counter()
        chosen = codec.choose_files(images, options, batch_size=args.batch_size)
        runs[name] = {"seconds": round(time.perf_counter() - t0, 2),
                      "mean_bytes": round(float(np.mean([c.candidate.size for c in chosen])), 2),
                      "psnr": round(float(np.mean([c.candidate.psnr for c in chosen])), 3),
                      "ssim": round(float(np.mean([c.candidate.ssim for c in chosen])), 4)}
        print(name, runs[name], flush=True)
    base = runs["plain fit"]["seconds"]
    preset_base = runs["--quality 3 (4-bit base)"]["seconds"]
    report = {"model": args.model, "images": len(images), "threads": args.threads, "batch_size": args.batch_size,
              "max_bytes": args.max_bytes,
              "precision": str(codec.dtype), "avx512_bf16": "avx512_bf16" in cpu_flags(), "runs": runs,
              "ratio_to_plain_fit": {k: round(v["seconds"] / base, 2) for k, v in runs.items()},
              "preset_part_ratio": round(runs["--quality 8 (4-bit base, one part)"]["seconds"] / preset_base, 2)}
    out = ROOT / "results" / "enhance"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"cost_{args.model}" + ("" if args.batch_size == 64 else f"_batch{args.batch_size}")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({**report["ratio_to_plain_fit"], "--quality 8 / --quality 3": report["preset_part_ratio"]}))


if __name__ == "__main__":
    main()
