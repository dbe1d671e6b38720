"""What the enhancement pilots share (scripts/*_pilot.py): their common options and their inputs, the
first test images, WebP-q0's mean bytes on them (budgets are multiples of it) and their base files."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pilot_parser(doc: str, budgets: list[float]) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--model", default="airplanes32")
    ap.add_argument("--data", default="cifar10_airplane_test.npz")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--budgets", type=float, nargs="+", default=budgets)
    ap.add_argument("--threads", type=int, default=1)
    return ap


def pilot_images(args: argparse.Namespace):
    """(codec, the first --n test images, WebP-q0's mean bytes on them); sets the thread count."""
    import torch

    torch.set_num_threads(args.threads)
    from invcomp.bench.classic import classic_roundtrip
    from invcomp.bench.data import load_bench_data
    from invcomp.codec import Codec

    codec = Codec(args.model, "cpu")
    images = load_bench_data(args.data, codec.resolution, args.n).images
    return codec, images, float(np.mean([len(classic_roundtrip("WEBP", im, 0)[0]) for im in images]))


def pilot_inputs(args: argparse.Namespace, parts_bits: tuple[int, ...] = ()):
    """pilot_images and, per image, its bases: the SSIM-fitted depths and `parts_bits` fitted for parts,
    as `fit` fits them, each with the picture it decodes to."""
    from invcomp.enhance.choose import Base
    from invcomp.inversion.rate import OPERATING_BITS

    codec, images, webp0 = pilot_images(args)
    found = codec.compress_candidates(list(images), OPERATING_BITS, codec.config(), parts_bits=parts_bits)
    bases = [[Base(c.bits, c.data, codec.decompress(c.data)) for c in per] for per in found]
    return codec, images, webp0, bases


def save_pilot(stem: str, report: dict, lines: list[str] | None = None) -> None:
    """results/enhance/<stem>.json, and <stem>.md from the Markdown `lines` (also printed) if given."""
    out = ROOT / "results" / "enhance"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    if lines is not None:
        (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
