"""How much harder one CIFAR-10 class is than another, at equal bits per pixel, by every codec in both
benches: each codec's PSNR curve (linear in log bpp between its measured points) read at bpps inside
both domains' measured ranges, and the difference.

    python scripts/class_gap.py      # airplanes32 against automobiles32, from their results/bench_*.json

Why: the moonshot's figures (a converged hyperprior on all ten CIFAR-10 classes) are class averages; a
class that costs every codec the same decibels says how far a miss on it is the class, not the codec.
Writes results/class_gap.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = {"airplanes32": "results/bench_airplanes32_cifar10_airplane_test.json",
         "automobiles32": "results/bench_automobiles32_cifar10_automobile_test.json"}
SKIP = ("@1/2", "@1/4")  # the downscaled variants are the same codecs again
POINTS = 5  # bpps read per codec, evenly spaced in log bpp over the common range


def curve(rows: list[dict], codec: str) -> list[tuple[float, float]]:
    """(log bpp, PSNR) of one codec's points, by bpp; a point not below the previous one's PSNR only
    (a lower PSNR at more bits is a setting the codec would not choose)."""
    pts, best = [], -math.inf
    for x in sorted((r for r in rows if r["codec"] == codec), key=lambda r: r["bpp"]):
        if x["psnr"] > best:
            pts.append((math.log(x["bpp"]), x["psnr"]))
            best = x["psnr"]
    return pts


def read(pts: list[tuple[float, float]], at: float) -> float:
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= at <= x1:
            return y0 + (y1 - y0) * (at - x0) / (x1 - x0)
    raise ValueError(at)


def gaps(easy: list[dict], hard: list[dict]) -> list[dict]:
    out = []
    for codec in sorted({r["codec"] for r in easy} & {r["codec"] for r in hard}):
        if codec.endswith(SKIP):
            continue
        a, b = curve(easy, codec), curve(hard, codec)
        if len(a) < 2 or len(b) < 2:
            continue
        lo, hi = max(a[0][0], b[0][0]), min(a[-1][0], b[-1][0])
        if lo >= hi:
            continue
        at = [min(hi, lo + (hi - lo) * i / (POINTS - 1)) for i in range(POINTS)]
        g = [read(a, x) - read(b, x) for x in at]
        out.append({"codec": codec, "bpp": [round(math.exp(x), 3) for x in at], "gap_db": [round(v, 2) for v in g],
                    "mean_gap_db": round(sum(g) / len(g), 2)})
    return out


def name(codec: str) -> str:
    """One name for invcomp's latent-only curve in both domains (its codec name carries the model)."""
    return "invcomp (latent only)" if codec.startswith("invcomp ") and codec != "invcomp + parts" else codec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--easy", default="airplanes32")
    ap.add_argument("--hard", default="automobiles32")
    args = ap.parse_args()
    rows = {m: [{**r, "codec": name(r["codec"])} for r in json.loads((ROOT / BENCH[m]).read_text())["rows"]]
            for m in (args.easy, args.hard)}
    table = gaps(rows[args.easy], rows[args.hard])
    report = {"easy": args.easy, "hard": args.hard, "benches": [BENCH[args.easy], BENCH[args.hard]], "codecs": table}
    md = [f"PSNR of {args.easy}'s test images minus {args.hard}'s, each codec at equal bpp (its curve, linear in log "
          "bpp, read inside both measured ranges)", "",
          "| codec | bpp range | gap at each bpp (dB) | mean gap (dB) |", "|---|---|---|---:|"]
    for t in table:
        md.append(f"| {t['codec']} | {t['bpp'][0]:.2f}–{t['bpp'][-1]:.2f} | "
                  f"{' / '.join(f'{g:+.2f}' for g in t['gap_db'])} | {t['mean_gap_db']:+.2f} |")
    out = ROOT / "results"
    (out / "class_gap.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "class_gap.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
