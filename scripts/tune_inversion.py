"""Sweep inversion settings on held-out images (last 200 of the training file by default).

    python scripts/tune_inversion.py --model airplanes32 --n 50 \
        --set steps=200,restarts=2 --set steps=200,restarts=2,mse_weight=4

Each --set is a comma-separated list of InversionConfig fields; prints and writes a table
to results/tune_inversion.{json,md}.
"""
import argparse
import json
from dataclasses import fields, replace
from pathlib import Path

from invcomp.bench.evaluate import evaluate_invcomp
from invcomp.codec import Codec
from invcomp.files import write_atomic
from invcomp.inversion.invert import InversionConfig
from invcomp.io.datasets import load_npz_images, resolve_data_path
from invcomp.models.zoo import resolve_model


def parse(spec: str) -> InversionConfig:
    types = {f.name: f.type for f in fields(InversionConfig)}
    kw = {}
    for item in filter(None, spec.split(",")):
        k, v = item.split("=")
        kw[k] = {"int": int, "float": float, "bool": lambda s: s in ("1", "true")}[types[k]](v)
    return replace(InversionConfig(), **kw)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--data", default="cifar10_airplane_train.npz")
    ap.add_argument("--holdout", type=int, default=200)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("results/tune_inversion"))
    args = ap.parse_args()
    images, _ = load_npz_images(resolve_data_path(args.data))
    images = (images[-args.holdout :] if args.holdout else images)[: args.n]
    codec = Codec(resolve_model(args.model), "cpu")
    rows = []
    for spec in args.set or [""]:
        s = evaluate_invcomp(codec, images, parse(spec))
        rows.append({"settings": spec or "defaults", **s.to_dict()})
        print(json.dumps(rows[-1]), flush=True)
    lines = ["| settings | mean bytes | PSNR (dB) | SSIM | s / image |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['settings']} | {r['mean_bytes']:.1f} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['seconds_per_image']:.2f} |"
              for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out.with_suffix(".json"), json.dumps({"model": args.model, "n": args.n, "rows": rows}, indent=2).encode())
    write_atomic(args.out.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
