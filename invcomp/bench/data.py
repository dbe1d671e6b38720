"""The images a bench runs on: a test file or folder at the model's resolution, optionally its first n images."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invcomp.errors import InvcompError
from invcomp.io.collection import load_collection
from invcomp.io.datasets import resolve_data_path


@dataclass(frozen=True)
class BenchData:
    """Test images (N, S, S, 3) uint8, where they came from, and the first-n limit asked for (None: all)."""

    path: Path
    images: np.ndarray
    notes: tuple[str, ...] = ()
    n: int | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return self.path.stem


def load_bench_data(data: str | os.PathLike, resolution: int, n: int | None = None) -> BenchData:
    """A .npz test file or a folder of images (also looked up in the data folder), resized to `resolution`."""
    if n is not None and n < 1:
        raise InvcompError("--n must be >= 1")
    src = resolve_data_path(data)
    images, _, notes = load_collection([src], resolution)
    return BenchData(src, images if n is None else images[:n], tuple(notes), n)
