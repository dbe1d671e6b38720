"""Whole-process throughput: `invcomp fit` and `invcomp pack` timed as a user runs them, beside the
inversion-only rate measured in the same run.

    python scripts/fit_speed.py --model airplanes32 --data cifar10_airplane_test.npz --n 64 --n 256

Extracts the first N test images as PNG files into a temporary folder, then per N runs, each in a
fresh process and timed from outside (Python and torch start-up included): `fit` of the folder and
`pack` of the folder; plus `fit` of one image. The inversion-only rate is `Codec.fit_codes` on the
same images at the same batch size, in this process after a warm-up: what `bench speed` measures,
per image instead of per step. Each command runs with the default precision (auto: bf16 where native)
and with --precision fp32. Writes results/fit_speed_<model>.{json,md}. Run it on an otherwise idle
machine: two torch processes on two cores slow each other down many times over.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invcomp.codec import Codec  # noqa: E402
from invcomp.files import write_atomic  # noqa: E402
from invcomp.io.datasets import load_npz_images, resolve_data_path  # noqa: E402
from invcomp.models.device import cpu_flags  # noqa: E402


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return seconds


def inversion_rate(model: str, images: np.ndarray, precision: str, batch: int = 64) -> float:
    """Images per second of the inversion alone (Codec.fit_codes, default settings), after a warm-up."""
    codec = Codec(model, "cpu", precision)
    cfg = codec.config()
    codec.fit_codes(images[: min(batch, len(images))], cfg)  # warm-up (oneDNN kernels, caches)
    t0 = time.perf_counter()
    for i in range(0, len(images), batch):
        codec.fit_codes(images[i : i + batch], cfg)
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--data", default="cifar10_airplane_test.npz")
    ap.add_argument("--n", type=int, action="append", help="folder sizes (default 64 and 256)")
    ap.add_argument("--precision", action="append", help="default: auto and fp32")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    args = ap.parse_args()
    sizes = args.n or [64, 256]
    precisions = args.precision or ["auto", "fp32"]
    images, _ = load_npz_images(resolve_data_path(args.data))
    inv = [sys.executable, "-m", "invcomp"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        Image.fromarray(images[0]).save(tmp / "one.png")
        for n in sizes:
            folder = tmp / f"n{n}"
            folder.mkdir()
            for i, im in enumerate(images[:n]):
                Image.fromarray(im).save(folder / f"img{i:05d}.png")
        for precision in precisions:
            p = ["--precision", precision, "--device", "cpu", "-m", args.model]
            one = min(wall(inv + ["fit", str(tmp / "one.png"), "-o", str(tmp / f"one_{precision}.icz"), *p]) for _ in range(3))
            for n in sizes:
                rate = inversion_rate(args.model, images[:n], precision)
                fit_s = wall(inv + ["fit", str(tmp / f"n{n}"), "-o", str(tmp / f"out_{precision}_{n}"), *p])
                pack_s = wall(inv + ["pack", str(tmp / f"n{n}"), "-o", str(tmp / f"a_{precision}_{n}.icza"), *p])
                rows.append({"precision": precision, "images": n, "inversion_images_per_s": round(rate, 2),
                             "fit_wall_s": round(fit_s, 3), "fit_images_per_s": round(n / fit_s, 2),
                             "fit_ratio": round(n / fit_s / rate, 3), "pack_wall_s": round(pack_s, 3),
                             "pack_images_per_s": round(n / pack_s, 2), "pack_ratio": round(n / pack_s / rate, 3),
                             "fit_one_wall_s": round(one, 3)})
                print(json.dumps(rows[-1]), flush=True)
        startup = min(wall([sys.executable, "-c", "import torch"]) for _ in range(3))
        cli = min(wall(inv + ["--help"]) for _ in range(3))
    flags = sorted(f for f in cpu_flags() if "bf16" in f or f in ("avx2", "avx512f", "amx_tile"))
    report = {"model": args.model, "data": args.data, "threads": torch.get_num_threads(), "cpu_flags": flags,
              "import_torch_s": round(startup, 3), "cli_help_s": round(cli, 3), "rows": rows}
    md = [f"# Whole-process throughput: {args.model} on {args.data}, {report['threads']} threads", "",
          f"CPU flags: {', '.join(flags) or 'n/a'}. `python -c 'import torch'` takes {startup:.2f} s; `invcomp --help` "
          f"{cli:.2f} s. Inversion-only: `Codec.fit_codes` at batch 64 after a warm-up, same run.", "",
          "| precision | images | inversion-only img/s | fit wall s | fit img/s | fit / inversion | pack wall s | pack img/s "
          "| pack / inversion | fit of one image, wall s |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['precision']} | {r['images']} | {r['inversion_images_per_s']:.1f} | {r['fit_wall_s']:.2f} | "
                  f"{r['fit_images_per_s']:.1f} | {r['fit_ratio']:.2f} | {r['pack_wall_s']:.2f} | {r['pack_images_per_s']:.1f} | "
                  f"{r['pack_ratio']:.2f} | {r['fit_one_wall_s']:.2f} |")
    sizes_args = " ".join(f"--n {n}" for n in sizes)
    md += ["", f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python scripts/fit_speed.py --model "
           f"{args.model} --data {args.data} {sizes_args}`".replace("OMP_NUM_THREADS= ", ""), ""]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"fit_speed_{args.model}"
    write_atomic(stem.with_suffix(".json"), (json.dumps(report, indent=2) + "\n").encode())
    write_atomic(stem.with_suffix(".md"), "\n".join(md).encode())
    print("\n".join(md))


if __name__ == "__main__":
    main()
