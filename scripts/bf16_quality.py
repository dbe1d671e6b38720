"""bf16 fitting against fp32: the same test images fitted both ways, mean SSIM and bytes of the files.

    python scripts/bf16_quality.py --n 200            # all four pretrained models, their test files
    python scripts/bf16_quality.py --model airplanes32 --n 50

Writes results/bf16_quality.json and .md. Decoding is fp32 in both cases; only the search differs.
The JSON keeps each run's seconds, but this script is a quality check, not a speed bench (the
machine may be busy): `scripts/fit_speed.py` and `invcomp bench speed` measure speed.
`--markdown-only` rewrites the .md from an existing .json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invcomp.codec import Codec  # noqa: E402
from invcomp.files import write_atomic  # noqa: E402
from invcomp.io.collection import load_collection  # noqa: E402
from invcomp.io.datasets import resolve_data_path  # noqa: E402
from invcomp.metrics import image_quality  # noqa: E402
from invcomp.models.device import bf16_native, cpu_flags  # noqa: E402
from invcomp.models.registry import REGISTRY  # noqa: E402


def measure(model: str, n: int, precision: str) -> dict:
    codec = Codec(model, "cpu", precision)
    images, _, _ = load_collection([resolve_data_path(REGISTRY[model].test_data)], codec.resolution)
    images = images[:n]
    t0 = time.perf_counter()
    files = codec.compress_batch(list(images), codec.config(), 64)
    seconds = time.perf_counter() - t0
    psnr, ssim = image_quality(images, np.stack([codec.decompress(f) for f in files]))
    return {"model": model, "precision": precision, "images": len(images), "mean_bytes": float(np.mean([len(f) for f in files])),
            "psnr": float(psnr.mean()), "ssim": float(ssim.mean()), "seconds": round(seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="default: every registered model")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--markdown-only", action="store_true", help="rewrite the .md from the .json")
    args = ap.parse_args()
    if args.markdown_only:
        write_markdown(json.loads((args.out / "bf16_quality.json").read_text()), args.out)
        return
    rows = []
    for model in args.model or list(REGISTRY):
        fp32, bf16 = measure(model, args.n, "fp32"), measure(model, args.n, "bf16")
        rows.append({"model": model, "fp32": fp32, "bf16": bf16, "ssim_delta": bf16["ssim"] - fp32["ssim"],
                     "bytes_ratio": bf16["mean_bytes"] / fp32["mean_bytes"],
                     "within_targets": abs(bf16["ssim"] - fp32["ssim"]) <= 0.003
                     and abs(bf16["mean_bytes"] / fp32["mean_bytes"] - 1) <= 0.01})
        print(json.dumps(rows[-1]), flush=True)
    flags = sorted(f for f in cpu_flags() if "bf16" in f or f in ("avx2", "avx512f"))
    report = {"threads": torch.get_num_threads(), "bf16_native": bf16_native(torch.device("cpu")), "cpu_flags": flags,
              "images": args.n, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "bf16_quality.json", (json.dumps(report, indent=2) + "\n").encode())
    write_markdown(report, args.out)


def write_markdown(report: dict, out: Path) -> None:
    n = report.get("images") or report["rows"][0]["fp32"]["images"]
    lines = [f"bf16 vs fp32 fitting, {n} test images per model, {report['threads']} threads, "
             f"CPU flags {', '.join(report['cpu_flags'])}. Files decoded in fp32.", "",
             "| model | fp32 bytes | bf16 bytes | ratio | fp32 SSIM | bf16 SSIM | delta | fp32 PSNR | bf16 PSNR | "
             "within 0.003 SSIM and 1 % bytes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in report["rows"]:
        a, b = r["fp32"], r["bf16"]
        lines.append(f"| {r['model']} | {a['mean_bytes']:.2f} | {b['mean_bytes']:.2f} | {r['bytes_ratio']:.4f} | {a['ssim']:.4f} | "
                     f"{b['ssim']:.4f} | {r['ssim_delta']:+.4f} | {a['psnr']:.2f} | {b['psnr']:.2f} | "
                     f"{'yes' if r['within_targets'] else 'NO'} |")
    write_atomic(out / "bf16_quality.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
