"""Bytes and quality of every `--quality` preset per model (docs/RESULTS.md, "Quality presets").

    python scripts/presets.py --n 100          # the four pretrained models on their test files
    python scripts/presets.py --n 100 --models airplanes32   # one model; the others' rows are kept

Presets 1..5 are the base alone at 2..6 bits; 6..10 a 4-bit base with one enhancement part at a fixed
step (invcomp/enhance/presets.py). The files are those `invcomp fit --quality Q` writes (the base
files come from one multi-rate inversion run, which writes the same files as a fit at each depth).
Writes results/presets.json and results/presets.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = {"airplanes32": "cifar10_airplane_test.npz", "automobiles32": "cifar10_automobile_test.npz",
        "flowers32": "flowers_32_test.npz", "flowers64": "flowers_64_test.npz"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(DATA), choices=list(DATA))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from invcomp.bench.data import load_bench_data
    from invcomp.codec import Codec
    from invcomp.enhance.choose import layered
    from invcomp.enhance.presets import presets, step_size
    from invcomp.files import write_atomic
    from invcomp.formats.icz import with_parts
    from invcomp.metrics import image_quality

    table = presets()
    rows = []
    for name in args.models:
        codec = Codec(name, "cpu")
        images = load_bench_data(DATA[name], codec.resolution, args.n).images
        cands = codec.compress_candidates(list(images))
        for level, (bits, step) in table.items():
            files, decoded = [], []
            for x, cs in zip(images, cands):
                base = next(c for c in cs if c.bits == bits)
                if step is None:
                    files.append(base.data)
                    decoded.append(codec.decompress(base.data))
                    continue
                found, _ = layered(x, codec.decompress(base.data), step, 1)
                files.append(with_parts(base.data, found))
                decoded.append(codec.decompress(files[-1]))
            psnr, ssim = image_quality(images, np.stack(decoded))
            rows.append({"model": name, "quality": level, "bits": bits, "part_step": None if step is None else step_size(step),
                         "mean_bytes": round(float(np.mean([len(f) for f in files])), 1),
                         "bpp": round(8 * float(np.mean([len(f) for f in files])) / codec.resolution**2, 3),
                         "psnr": round(float(psnr.mean()), 2), "ssim": round(float(ssim.mean()), 4)})
            print(rows[-1], flush=True)
    out = ROOT / "results" / "presets.json"
    if out.exists():  # keep the other models' rows of an earlier run over the same images
        old = json.loads(out.read_text())
        if old["images_per_model"] == args.n:
            rows += [r for r in old["rows"] if r["model"] not in args.models]
    rows.sort(key=lambda r: (list(DATA).index(r["model"]) if r["model"] in DATA else len(DATA), r["quality"]))
    out.parent.mkdir(exist_ok=True)
    write_atomic(out, (json.dumps({"images_per_model": args.n, "rows": rows}, indent=2) + "\n").encode())
    lines = [f"First {args.n} test images per model; bytes are whole .icz files.", "",
             "| model | --quality | base bits | part step | bytes | bpp | PSNR | SSIM |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        step = "-" if r["part_step"] is None else f"{r['part_step']:g}"
        lines.append(f"| {r['model']} | {r['quality']} | {r['bits']} | {step} | {r['mean_bytes']} | {r['bpp']} | {r['psnr']} | "
                     f"{r['ssim']} |")
    write_atomic(ROOT / "results" / "presets.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
