"""Pilot: would richer contexts make enhancement parts smaller? (A new context set would be a new part kind.)

    python scripts/context_pilot.py --model airplanes32 --data cifar10_airplane_test.npz --n 100
    python scripts/context_pilot.py --model flowers64 --data flowers_64_test.npz --train flowers_64_train.npz --n 60

The residuals G(z) missed (each image's default base) at step indices 32, 40 and 48 (8, 16 and 32 pixel
levels; about 3x, 2x and 1x WebP q0's bytes on airplanes), coded by the adaptive binary coder under each
context variant. Every variant, the current syntax included, starts from its own table trained the same
way as `coefficients.START` (the mean adapted state over the first images of the training file), so a
variant with more contexts is not handicapped by untrained ones. Variants (all keep the bits: only the
contexts change):
  current   the release's contexts (coefficients.py)
  count     significance also by how many non-zero coefficients the block has so far (0, 1, 2+)
  template  significance also by whether the same position is non-zero in the upper or left block
  chroma    a chroma block's coded flag also by whether the luma block there is coded
  gt1band   the |v| > 1 decision also by band (DC, low, high)
  all       all of them
Writes results/enhance/context_pilot_<model>.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = (32, 40, 48)
VARIANTS = ("current", "count", "template", "chroma", "gt1band", "all")


def decisions(coefs: np.ndarray, variant: str) -> tuple[list[int], list[tuple]]:
    """Every binary decision of the part syntax (coefficients.py) in coding order: its bit and a context
    key (a tuple; bypass decisions are None)."""
    from invcomp.formats.coefficients import UNARY_MAX, band

    use = {v: variant in (v, "all") for v in VARIANTS}
    channels, rows, cols, size = coefs.shape
    bits, keys = [], []
    nonzero = coefs != 0
    coded = nonzero.any(-1)
    for c in range(channels):
        ct = int(c > 0)
        for r in range(rows):
            for q in range(cols):
                near = int(r > 0 and coded[c, r - 1, q]) + int(q > 0 and coded[c, r, q - 1])
                key = ("cbf", ct, near) + ((bool(coded[0, r, q]),) if use["chroma"] and c > 0 else ())
                bits.append(int(coded[c, r, q]))
                keys.append(key)
                if not coded[c, r, q]:
                    continue
                block = coefs[c, r, q]
                last = int(np.flatnonzero(block)[-1])
                count = 0
                for pos in range(last + 1):
                    nz = bool(block[pos])
                    if pos < size - 1:
                        key = ("sig", ct, band(pos))
                        if use["count"]:
                            key += (min(count, 2),)
                        if use["template"]:
                            key += (bool((r > 0 and nonzero[c, r - 1, q, pos]) or (q > 0 and nonzero[c, r, q - 1, pos])),)
                        bits.append(int(nz))
                        keys.append(key)
                        if nz:
                            bits.append(int(pos == last))
                            keys.append(("last", ct, band(pos)))
                    count += nz
                big = 0
                for pos in np.flatnonzero(block):
                    m = abs(int(block[pos]))
                    key = ("gt1", ct, min(4, big)) + ((0 if pos == 0 else 1 if pos < 6 else 2,) if use["gt1band"] else ())
                    bits.append(int(m > 1))
                    keys.append(key)
                    if m > 1:
                        for k in range(2, UNARY_MAX + 1):
                            bits.append(int(m > k))
                            keys.append(("level", ct, min(k - 2, 3)))
                            if m <= k:
                                break
                        if m > UNARY_MAX:  # exp-Golomb: 2w - 1 bypass bits
                            w = (m - UNARY_MAX).bit_length()
                            bits += [0] * (2 * w - 1)
                            keys += [None] * (2 * w - 1)
                    big += m > 1
                    bits.append(int(block[pos] < 0))
                    keys.append(None)
    return bits, keys


def coded_bytes(bits: list[int], keys: list[tuple], index: dict, start: list[int]) -> tuple[int, list[int]]:
    """The adaptive coder's bytes for these decisions (contexts numbered by `index`, new keys appended with
    probability 1/2 when `start` has no entry), and the adapted states."""
    from invcomp.formats.adaptive import BYPASS, HALF_PROB, BitEncoder

    for k in keys:
        if k is not None and k not in index:
            index[k] = len(index)
    p = list(start) + [HALF_PROB] * (len(index) - len(start))
    enc = BitEncoder(p)
    enc.code(bits, [BYPASS if k is None else index[k] for k in keys])
    return len(enc.finish()), enc.p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--data", default="cifar10_airplane_test.npz")
    ap.add_argument("--train", default="cifar10_airplane_train.npz", help="images the start tables are trained on")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--n-train", type=int, default=60)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from invcomp.bench.data import load_bench_data
    from invcomp.codec import Codec
    from invcomp.enhance import parts, residual
    from invcomp.formats import coefficients

    codec = Codec(args.model, "cpu")

    def residuals(name: str, n: int) -> list[tuple[int, np.ndarray]]:
        images = list(load_bench_data(name, codec.resolution, n).images)
        out = []
        for x, f in zip(images, codec.compress_batch(images)):
            base = codec.decompress(f).astype(np.float64)
            for step in STEPS:
                out.append((step, residual.forward(x.astype(np.float64) - base, parts.DEFAULT_BLOCK, step,
                                                   parts.DEFAULT_CHROMA)))
        return out

    train, test = residuals(args.train, args.n_train), residuals(args.data, args.n)
    rows = []
    for variant in VARIANTS:
        index: dict = {}
        states = []
        for _, coefs in train:  # the start table: mean adapted state from 1/2, as scripts/context_table.py
            states.append(coded_bytes(*decisions(coefs, variant), index, [])[1])
        width = len(index)
        start = np.mean([s + [32768] * (width - len(s)) for s in states], axis=0).round().astype(int).tolist()
        sizes = {s: [] for s in STEPS}
        for step, coefs in test:
            sizes[step].append(coded_bytes(*decisions(coefs, variant), dict(index), start)[0])
        row = {"variant": variant, "contexts": width, **{f"step {s}": round(float(np.mean(v)), 2) for s, v in sizes.items()}}
        if variant == "current":  # the trained table of this pilot against the release's START: the same syntax
            row["release_start"] = {f"step {s}": round(float(np.mean([len(coefficients.encode(c, residual.CHROMA))
                                                                       for st, c in test if st == s])), 2) for s in STEPS}
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    lines = [f"{args.model}, first {args.n} images of {args.data} (start tables from the first {args.n_train} of "
             f"{args.train}); mean coded bytes of a part's coefficients (no part header) at each step index, and the "
             "change against the current contexts.", "",
             "| variant | contexts | " + " | ".join(f"step {s}" for s in STEPS) + " |",
             "|---|---:|" + "---:|" * len(STEPS)]
    for r in rows:
        cells = [f"{r[f'step {s}']:.1f} ({100 * (r[f'step {s}'] / base[f'step {s}'] - 1):+.1f} %)" for s in STEPS]
        lines.append(f"| {r['variant']} | {r['contexts']} | " + " | ".join(cells) + " |")
    rel = base["release_start"]
    lines += ["", "The release's own START table on the same images: " + ", ".join(f"step {s} {rel[f'step {s}']:.1f}"
                                                                                   for s in STEPS) + "."]
    out = ROOT / "results" / "enhance"
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model, "data": args.data, "train": args.train, "images": args.n, "rows": rows}
    (out / f"context_pilot_{args.model}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"context_pilot_{args.model}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
