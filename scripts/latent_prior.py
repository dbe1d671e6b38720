"""What a learned prior for the base latent would save: the codes' cost under the fixed N(0, 1) prior
against priors fitted to the fitted latents of training images (one histogram for all dimensions,
one per dimension, a Gaussian per dimension), measured on held-out test images as cross-entropy.

    python scripts/latent_prior.py --model airplanes32 --train 400 --test 100

Writes results/enhance/latent_prior_<model>.json.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FILES = {"airplanes32": "cifar10_airplane", "automobiles32": "cifar10_automobile", "flowers32": "flowers_32",
         "flowers64": "flowers_64"}


def cross_entropy_bytes(codes: np.ndarray, probs: np.ndarray) -> float:
    """Mean bytes per image of `codes` (N, D) under per-dimension probabilities (D, L) or one (L,)."""
    p = probs[codes] if probs.ndim == 1 else probs[np.arange(codes.shape[1]), codes]
    return float(-np.log2(p).sum(1).mean() / 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--bits", type=int, nargs="+", default=[3, 4])
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from invcomp.codec import Codec
    from invcomp.formats import arith
    from invcomp.io.datasets import data_dir

    codec = Codec(args.model, "cpu")
    tr = np.load(data_dir() / f"{FILES[args.model]}_train.npz")["images"][: args.train]
    te = np.load(data_dir() / f"{FILES[args.model]}_test.npz")["images"][: args.test]
    rows = []
    for bits in args.bits:
        cfg = codec.config(bits=bits)
        ctr, cte = codec.fit_codes(tr, cfg), codec.fit_codes(te, cfg)
        levels, r = 2**bits, codec.model.config.latent_range
        gauss = np.diff(arith.gaussian_cumulative(bits, r)) / arith.TOTAL
        hist = np.bincount(ctr.ravel(), minlength=levels) + 0.5
        per_dim = np.stack([np.bincount(ctr[:, d], minlength=levels) + 0.5 for d in range(ctr.shape[1])])
        z = ctr * (2 * r / (levels - 1)) - r
        mu, sd = z.mean(0), z.std(0)
        edges = np.arange(levels + 1) * (2 * r / (levels - 1)) - r - r / (levels - 1)
        fitted = []
        for d in range(ctr.shape[1]):
            cdf = np.array([0.5 * (1 + math.erf((e - mu[d]) / (sd[d] * math.sqrt(2)))) for e in edges])
            cdf[0], cdf[-1] = 0.0, 1.0
            p = np.maximum(np.diff(cdf), 1e-4)
            fitted.append(p / p.sum())
        rows.append({"bits": bits, "fixed N(0,1)": cross_entropy_bytes(cte, gauss),
                     "one histogram": cross_entropy_bytes(cte, hist / hist.sum()),
                     "histogram per dimension": cross_entropy_bytes(cte, per_dim / per_dim.sum(1, keepdims=True)),
                     "Gaussian per dimension": cross_entropy_bytes(cte, np.stack(fitted)),
                     "fitted std range": [round(float(sd.min()), 3), round(float(sd.max()), 3)]})
        print(rows[-1], flush=True)
    out = ROOT / "results" / "enhance"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"latent_prior_{args.model}.json").write_text(json.dumps({"model": args.model, "train": len(tr), "test": len(te),
                                                                    "bytes_per_image": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
