"""How .icza archives scale: pack-level writing and unpack-level reading of 1k, 10k and 100k images
in bounded memory, from latent codes directly (no inversion, no generator: the codes of the
generator's own samples, z ~ N(0, 1) quantized, with airplanes32's geometry: 96 latents, 3 bits,
range 3.0).

    .venv/bin/python scripts/archive_scale.py                       # 1000 10000 100000
    .venv/bin/python scripts/archive_scale.py --counts 1000 5000 --out /tmp/scale

Each measurement runs in its own process (so peak RSS, from getrusage, is that step's alone):

* pack:   `create_archive` a partial, `encode_segment` + `append_segment` per batch of 256 images
          (what `invcomp pack` commits per batch), then `write_compacted` into the final archive
          and delete the partial (what `pack` finishes with);
* open:   `ArchiveReader` on the finished archive (header and commit), then its full index
          (every chunk's names, lengths and checks: what `ls`, `verify` and unpacking all need);
* one:    open, then one image's codes by name (`reader.codes`, the middle name: a binary search
          that reads about log2(chunks) chunk indexes and decodes one record);
* unpack: open, then every image's codes in stored order (`reader.records()`, what `unpack`
          decodes before rendering; rendering is one forward pass per image, not measured here).

Writes <out>.json and <out>.md (default results/archive_scale).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from invcomp.files import write_atomic
from invcomp.formats import icza

LATENT, BITS, RANGE, BATCH = 96, 3, 3.0, 256
HEADER = icza.ArchiveHeader("d7a577045bad3f3b21a52d2964d51234899734036c77bae702a38898e79fc11b", "airplanes32",
                            32, LATENT, RANGE, BITS, icza.canonical_config({"bits": BITS}))


def sample_codes(start: int, n: int, seed: int = 0) -> np.ndarray:
    """Codes of images start..start+n-1: z ~ N(0, 1) per image (seeded by its number), clamped to
    the range and quantized as the codec quantizes."""
    levels = (1 << BITS) - 1
    out = np.empty((n, LATENT), np.int64)
    for k in range(n):
        z = np.random.default_rng([seed, start + k]).standard_normal(LATENT)
        out[k] = np.round((np.clip(z, -RANGE, RANGE) + RANGE) / (2 * RANGE / levels))
    return out


def name_of(i: int) -> str:
    return f"img_{i:06d}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def step_pack(path: Path, n: int) -> dict:
    partial = path.with_name(path.name + ".partial")
    t0 = time.perf_counter()
    icza.create_archive(partial, HEADER)
    for start in range(0, n, BATCH):
        k = min(BATCH, n - start)
        records = [icza.Record(name_of(start + j), c) for j, c in enumerate(sample_codes(start, k))]
        icza.append_segment(partial, icza.encode_segment(records, BITS, RANGE), k)
    t1 = time.perf_counter()
    with icza.ArchiveReader(partial) as r:
        icza.write_compacted(path, HEADER, [r])
    partial.unlink()
    t2 = time.perf_counter()
    return {"seconds": round(t2 - t0, 3), "append_seconds": round(t1 - t0, 3), "compact_seconds": round(t2 - t1, 3),
            "bytes": path.stat().st_size}


def step_open(path: Path, n: int) -> dict:
    """Opening (header and commit), then the full index (every chunk's names, lengths, checks;
    what `ls`, `verify` and unpacking everything need; an image by name needs only a few chunks)."""
    t0 = time.perf_counter()
    r = icza.ArchiveReader(path)
    t1 = time.perf_counter()
    rss_open = current_rss_mb()
    assert len(r) == n and not r.problems
    t2 = time.perf_counter()
    rss = current_rss_mb()
    r.close()
    return {"seconds": round(t1 - t0, 5), "index_seconds": round(t2 - t1, 4), "rss_open_mb": round(rss_open, 1),
            "rss_index_mb": round(rss, 1)}


def step_one(path: Path, n: int) -> dict:
    """Open, then one image's codes by name (what `invcomp unpack ARCHIVE NAME` reads)."""
    name = name_of(n // 2)
    t0 = time.perf_counter()
    with icza.ArchiveReader(path) as r:
        codes = r.codes(name)
        seconds = time.perf_counter() - t0
        visited = sum(len(s.seen) for s in r._sparse or [])
    assert np.array_equal(codes, sample_codes(n // 2, 1)[0])
    return {"seconds": round(seconds, 5), "chunk_indexes_read": visited}


def step_unpack(path: Path, n: int) -> dict:
    t0 = time.perf_counter()
    count = 0
    with icza.ArchiveReader(path) as r:
        for i, rec in enumerate(r.records()):
            if i % 997 == 0:
                assert np.array_equal(rec.codes, sample_codes(int(rec.name[4:]), 1)[0])
            count += 1
    assert count == n
    return {"seconds": round(time.perf_counter() - t0, 3)}


STEPS = {"pack": step_pack, "open": step_open, "one": step_one, "unpack": step_unpack}


def child(step: str, path: Path, n: int) -> None:
    base = current_rss_mb()
    result = STEPS[step](path, n)
    result.update(peak_rss_mb=round(peak_rss_mb(), 1), rss_before_mb=round(base, 1))
    print(json.dumps(result))


def measure(step: str, path: Path, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", step, "--path", str(path), "--n", str(n)],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode != 0:
        raise SystemExit(f"{step} at {n} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(report: dict) -> str:
    lines = ["| images | bytes per image | pack s | pack peak RSS MB | open ms | open + one image ms (chunk indexes read) | "
             "one image peak RSS MB | full index s | full index RSS MB | unpack (codes) s | unpack peak RSS MB | "
             "baseline RSS MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in report["rows"]:
        p, o, one, u = row["pack"], row["open"], row["one"], row["unpack"]
        lines.append(f"| {row['images']:,} | {row['bytes_per_image']:.2f} | {p['seconds']:.1f} | {p['peak_rss_mb']:.1f} | "
                     f"{o['seconds'] * 1000:.2f} | {one['seconds'] * 1000:.1f} ({one['chunk_indexes_read']}) | "
                     f"{one['peak_rss_mb']:.1f} | {o['index_seconds']:.2f} | {o['rss_index_mb']:.1f} | {u['seconds']:.1f} | "
                     f"{u['peak_rss_mb']:.1f} | {o['rss_before_mb']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--out", default="results/archive_scale", help="path without suffix for .json and .md")
    ap.add_argument("--child", choices=sorted(STEPS), help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, Path(args.path), args.n)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.counts:
            path = Path(tmp) / f"scale_{n}.icza"
            row = {"images": n, "pack": measure("pack", path, n)}
            row["bytes_per_image"] = round(row["pack"]["bytes"] / n, 3)
            for step in ("open", "one", "unpack"):
                row[step] = measure(step, path, n)
            rows.append(row)
            print(json.dumps(row), flush=True)
            path.unlink()
    report = {"latent": LATENT, "bits": BITS, "latent_range": RANGE, "batch": BATCH, "rows": rows,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out.with_suffix(".json"), (json.dumps(report, indent=2) + "\n").encode())
    write_atomic(out.with_suffix(".md"), markdown(report).encode())
    print(markdown(report))


if __name__ == "__main__":
    main()
