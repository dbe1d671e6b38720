"""The quality bands behind `fit`'s out-of-domain note (invcomp.domain.QUALITY_FLOORS).

    python scripts/quality_floors.py --n 400          # every registered model on its own test file
    python scripts/quality_floors.py --n 400 --models flowers32   # one model; the others' rows are kept

Per model and operating point (2..6 bits, default inversion), the SSIM of each of the first N test
images; the floor is the 1st percentile: 99 % of the model's own test images reach it, so an image
below it is unlike the model's domain. Writes results/quality_floors.{json,md}; the table to paste
into invcomp/domain.py is printed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invcomp.codec import Codec  # noqa: E402
from invcomp.files import write_atomic  # noqa: E402
from invcomp.inversion.rate import OPERATING_BITS  # noqa: E402
from invcomp.io.datasets import load_npz_images, resolve_data_path  # noqa: E402
from invcomp.models.registry import REGISTRY  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--models", nargs="+", default=list(REGISTRY), choices=list(REGISTRY), help="measure only these; keep the others' rows")
    args = ap.parse_args()
    report = {"images": args.n, "precision": args.precision, "models": {}}
    earlier = args.out / "quality_floors.json"
    if earlier.exists():  # the other models' rows of an earlier run with the same settings
        old = json.loads(earlier.read_text())
        if (old["images"], old["precision"]) == (args.n, args.precision):
            report["models"] = {k: v for k, v in old["models"].items() if k in REGISTRY and k not in args.models}
    for name in args.models:
        info = REGISTRY[name]
        images = load_npz_images(resolve_data_path(info.test_data))[0][: args.n]
        codec = Codec(name, "cpu", args.precision)
        found = codec.compress_candidates(list(images), OPERATING_BITS, codec.config())
        per_bits = {b: [next(c.ssim for c in cands if c.bits == b) for cands in found] for b in OPERATING_BITS}
        report["models"][name] = {str(b): {"mean": round(float(np.mean(v)), 4), "floor": round(float(np.percentile(v, 1)), 3)}
                                  for b, v in per_bits.items()}
        print(name, {b: r["floor"] for b, r in report["models"][name].items()}, flush=True)
    report["models"] = {k: report["models"][k] for k in REGISTRY if k in report["models"]}
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "quality_floors.json", (json.dumps(report, indent=2) + "\n").encode())
    lines = [f"SSIM floors (1st percentile) and means, first {args.n} test images per model, precision {args.precision}.", "",
             "| model | " + " | ".join(f"{b} bits floor / mean" for b in OPERATING_BITS) + " |",
             "|---|" + "---:|" * len(OPERATING_BITS)]
    for name, rows in report["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{rows[str(b)]['floor']:.3f} / {rows[str(b)]['mean']:.3f}"
                                                  for b in OPERATING_BITS) + " |")
    write_atomic(args.out / "quality_floors.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))
    print("QUALITY_FLOORS = {")
    for name, rows in report["models"].items():
        print(f'    "{name}": {{' + ", ".join(f"{b}: {rows[str(b)]['floor']:.3f}" for b in OPERATING_BITS) + "},")
    print("}")


if __name__ == "__main__":
    main()
