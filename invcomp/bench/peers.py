"""The learned peer's measured series, as the benches read them: one JSON file per objective under
results/peers/, written by `scripts/peer.py measure` (which needs the `[peers]` extra); reading them
needs nothing beyond invcomp.

A file holds a `Series` (kind "peer"; settings are the trained lambdas, higher = more bytes) with
per-image bytes, PSNR and SSIM for the images it was measured on and how each point was trained.
A bench uses it when it was measured on the same test file and on at least the bench's images
(the first n), checked by the digest of those images.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from invcomp.bench.data import BenchData
from invcomp.bench.rd import Series, images_digest, measure
from invcomp.errors import InvcompError
from invcomp.files import write_atomic

VERSION = 1


def series_from_points(images: np.ndarray, points: list[tuple]) -> list[Series]:
    """(config, trained, sizes, decoded) per trained point -> one Series per objective, by rising lambda."""
    out = []
    for objective in dict.fromkeys(p[0].objective for p in points):
        mine = sorted((p for p in points if p[0].objective == objective), key=lambda p: p[0].lmbda)
        prefix = [images_digest(images[:k]) for k in _prefixes(len(images))]
        out.append(Series(f"learned peer ({objective.upper()})", "peer", [p[0].lmbda for p in mine],
                          [f"lambda {p[0].lmbda:g}" for p in mine],
                          [measure(images, p[3], p[2]) for p in mine],
                          {"images": len(images), "prefix_digests": prefix},
                          {"configs": [asdict(p[0]) for p in mine], "trained": [p[1] for p in mine]}))
    return out


def _prefixes(n: int) -> list[int]:
    """Image counts a bench is likely to use (its --n): 50, 100, 200, ... and n itself."""
    ks = [k for k in (1, 10, 30, 50, 64, 100, 200, 300, 400, 500, 800, 1000) if k < n]
    return ks + [n]


def peer_path(results: Path, name: str, stem: str, codec: str) -> Path:
    objective = codec.split("(")[-1].rstrip(")").lower()
    return results / "peers" / f"{name}_{stem}_{objective}.json"


def save_peer_series(results: Path, name: str, data: BenchData, series: Series) -> Path:
    path = peer_path(results, name, data.stem, series.codec)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps({"version": VERSION, "model": name, "data": data.name, **asdict(series)}) + "\n").encode())
    return path


def read_peer_series(path: Path, data_name: str) -> Series | None:
    """The series stored at `path` if it is readable, of this version and measured on `data_name`."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if obj.pop("version", None) != VERSION or obj.pop("data", None) != data_name:
        return None
    obj.pop("model", None)
    return Series(**obj)


def merge_series(old: Series, new: Series) -> Series:
    """The points of both, by rising lambda (new's where both have one); both must be of one objective
    and measured on the same images, so points trained and measured at different times join one curve."""
    if old.codec != new.codec or old.key != new.key:
        raise InvcompError(f"cannot join {new.codec} to {old.codec}: not measured on the same images")
    by_lambda = {}
    for s in (old, new):
        for row in zip(s.settings, s.labels, s.points, s.extra["configs"], s.extra["trained"]):
            by_lambda[row[0]] = row
    rows = [by_lambda[k] for k in sorted(by_lambda)]
    return Series(new.codec, new.kind, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], new.key,
                  {"configs": [r[3] for r in rows], "trained": [r[4] for r in rows]})


def load_peer_series(results: Path, name: str, data: BenchData) -> list[Series]:
    """The peer series measured for this model's domain on these images (their first len(images)), or []."""
    n, found = len(data.images), []
    for path in sorted((results / "peers").glob(f"{name}_{data.stem}_*.json")):
        s = read_peer_series(path, data.name)
        if s is None:
            continue
        counts = _prefixes(s.key["images"])
        if n not in counts or s.key["prefix_digests"][counts.index(n)] != images_digest(data.images):
            continue
        found.append(replace(s, points=[{k: v[:n] for k, v in p.items()} for p in s.points]))
    return found
