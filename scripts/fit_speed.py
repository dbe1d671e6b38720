"""Time the commands a user runs: `invcomp fit` of one image and of many, and `invcomp pack`.

    python scripts/fit_speed.py --model airplanes32 --data cifar10_airplane_test.npz --n 256

Extracts the first N test images as PNG files into a temporary folder, then runs, each in a
fresh process: `fit` of one image (3 times), `fit` of all N, `pack` of all N. Reports the
inversion seconds the commands print (`--json`), the wall time of each whole command
(Python and torch start-up included) and images per second. Writes
results/fit_speed_<model>.{json,md}. Run it on an otherwise idle machine.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from invcomp.files import write_atomic
from invcomp.io.datasets import load_npz_images, resolve_data_path


def run(cmd: list[str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--data", default="cifar10_airplane_test.npz")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("results"))
    args = ap.parse_args()
    images, _ = load_npz_images(resolve_data_path(args.data))
    inv = [sys.executable, "-m", "invcomp"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "many").mkdir()
        for i, im in enumerate(images[: args.n]):
            Image.fromarray(im).save(tmp / "many" / f"img{i:05d}.png")
        Image.fromarray(images[0]).save(tmp / "one.png")
        single = []
        for k in range(3):
            rep, wall = run(inv + ["fit", str(tmp / "one.png"), "-o", str(tmp / f"one{k}.icz"), "-m", args.model,
                                   "--device", "cpu", "--json"])
            single.append({"inversion_seconds": rep["summary"]["seconds"], "wall_seconds": round(wall, 3)})
        rep, wall = run(inv + ["fit", str(tmp / "many"), "-o", str(tmp / "out"), "-m", args.model, "--device", "cpu",
                               "--json"])
        many = {"images": rep["summary"]["images"], "seconds": rep["summary"]["seconds"], "wall_seconds": round(wall, 3),
                "images_per_second": round(rep["summary"]["images"] / rep["summary"]["seconds"], 2),
                "mean_ssim": rep["summary"]["mean_ssim"]}
        rep, wall = run(inv + ["pack", str(tmp / "many"), "-o", str(tmp / "many.icza"), "-m", args.model,
                               "--device", "cpu", "--json"])
        pack = {"images": args.n, "seconds": rep.get("seconds"), "wall_seconds": round(wall, 3),
                "images_per_second": rep.get("pictures_per_second")}
    report = {"model": args.model, "data": args.data, "n": args.n, "threads": int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count()),
              "cpu": platform.processor() or platform.machine(), "fit_one": single, "fit_many": many, "pack": pack}
    md = [f"# Command timings: {args.model}, {args.n} images of {args.data}, {report['threads']} thread(s)", "",
          "| command | images | inversion s | wall s (whole command) | images / s |", "|---|---:|---:|---:|---:|"]
    for i, s in enumerate(single):
        md.append(f"| fit one image (run {i + 1}) | 1 | {s['inversion_seconds']:.3f} | {s['wall_seconds']:.2f} | |")
    md.append(f"| fit a folder | {many['images']} | {many['seconds']:.2f} | {many['wall_seconds']:.2f} | "
              f"{many['images_per_second']:.1f} |")
    md.append(f"| pack a folder | {args.n} | {pack['seconds']} | {pack['wall_seconds']:.2f} | {pack['images_per_second']} |")
    md += ["", f"Command: `python scripts/fit_speed.py --model {args.model} --data {args.data} --n {args.n}`", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"fit_speed_{args.model}"
    write_atomic(stem.with_suffix(".json"), (json.dumps(report, indent=2) + "\n").encode())
    write_atomic(stem.with_suffix(".md"), "\n".join(md).encode())
    print("\n".join(md))


if __name__ == "__main__":
    main()
