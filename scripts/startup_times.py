"""Whole-process start-up of the commands that need no network: `--help`, `info`, `ls`, `models`, `verify`.

    python scripts/startup_times.py                          # this checkout
    python scripts/startup_times.py --compare /tmp/old       # and another release's source tree, interleaved

Each command runs in a fresh process (`python -m invcomp ...`), --runs times, interleaved between the
trees so that both see the same machine; reports the best and the median wall time. The files read
are the compatibility vectors (tests/vectors/0.1.0): a one-image .icz and a 12-image .icza.
Writes results/startup_times.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors" / "0.1.0"
COMMANDS = {
    "--help": ["--help"],
    "info FILE.icz": ["info", str(VECTORS / "airplanes32_default.icz")],
    "ls ARCHIVE": ["ls", str(VECTORS / "airplanes32_samples.icza")],
    "models": ["models"],
    "verify ARCHIVE": ["verify", str(VECTORS / "airplanes32_samples.icza")],
}


def once(tree: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "invcomp", *args], env=env, capture_output=True, cwd="/")
    seconds = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"invcomp {' '.join(args)} failed in {tree}: {r.stderr.decode()[-300:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", type=Path, help="another source tree (e.g. a checkout of the previous release)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    args = ap.parse_args()
    trees = {"this": ROOT} | ({"compared": args.compare} if args.compare else {})
    times: dict[str, dict[str, list[float]]] = {t: {c: [] for c in COMMANDS} for t in trees}
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            for tree, path in trees.items():
                times[tree][name].append(once(path, cmd))
    rows = [{"command": c, **{f"{t}_best_s": round(min(times[t][c]), 3) for t in trees},
             **{f"{t}_median_s": round(statistics.median(times[t][c]), 3) for t in trees}} for c in COMMANDS]
    report = {"runs": args.runs, "trees": {t: str(p) for t, p in trees.items()}, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup_times.json").write_text(json.dumps(report, indent=2) + "\n")
    head = "| command | " + " | ".join(f"{t}: best s | {t}: median s" for t in trees) + " |"
    lines = [f"Whole-process wall time, best and median of {args.runs} interleaved runs "
             f"({', '.join(f'{t} = {p}' for t, p in trees.items())}).", "", head,
             "|---|" + "---:|---:|" * len(trees)]
    for r in rows:
        lines.append(f"| `invcomp {r['command']}` | " + " | ".join(f"{r[f'{t}_best_s']:.2f} | {r[f'{t}_median_s']:.2f}"
                                                             for t in trees) + " |")
    (args.out / "startup_times.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
