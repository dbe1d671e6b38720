"""How long decoding takes, by file size: files of the quality presets (the latent alone, and with one
enhancement part at steps 64 to 4), each decoded with `invcomp.decompress` in this process, best of
several runs; and how much of it is entropy-decoding the part's coefficients.

    python scripts/decode_speed.py --model flowers64 --data flowers_64_test.npz --n 8

Writes results/decode_speed_<model>.{json,md}. To compare two checkouts, run each with its own
PYTHONPATH on the same machine, one after the other.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def best_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="flowers64")
    ap.add_argument("--data", default="flowers_64_test.npz")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--qualities", type=int, nargs="+", default=[2, 6, 8, 10])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import invcomp
    from invcomp.bench.data import load_bench_data
    from invcomp.codec import get_codec
    from invcomp.enhance.parts import parse_part
    from invcomp.enhance.residual import CHROMA
    from invcomp.formats import coefficients
    from invcomp.formats.icz import split_file

    codec = get_codec(args.model, "cpu")
    images = load_bench_data(args.data, codec.resolution, args.n).images
    rows = []
    for q in args.qualities:
        files = invcomp.compress_batch(list(images), model=args.model, device="cpu", quality=q)
        for f in files:
            codec.decompress(f)  # warm-up
        whole = [best_seconds(lambda f=f: codec.decompress(f), args.repeats) for f in files]
        coded = []
        for f in files:
            parts = [parse_part(p) for p in split_file(f)[2]]
            for part in parts:
                side = codec.resolution // part.block
                shape = (3, side, side, part.block ** 2)
                coded.append(best_seconds(lambda p=part, s=shape: coefficients.decode(p.coded, s, CHROMA), args.repeats))
        rows.append({"quality": q, "files": len(files), "mean_bytes": round(float(np.mean([len(f) for f in files])), 1),
                     "decode_ms": round(1000 * float(np.mean(whole)), 2),
                     "coefficients_ms": round(1000 * float(np.mean(coded)), 2) if coded else None})
        print(json.dumps(rows[-1]), flush=True)
    report = {"model": args.model, "data": args.data, "threads": 1, "invcomp": invcomp.__version__,
              "invcomp_path": str(Path(invcomp.__file__).parent), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"decode_speed_{args.model}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    md = [f"{args.model}, first {args.n} images of {args.data}, one thread, best of {args.repeats} per file "
          f"(invcomp {invcomp.__version__}):", "", "| --quality | mean bytes | decode (ms) | of which coefficients (ms) |",
          "|---:|---:|---:|---:|"]
    md += [f"| {r['quality']} | {r['mean_bytes']} | {r['decode_ms']} | {'-' if r['coefficients_ms'] is None else r['coefficients_ms']} |"
           for r in rows]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
