"""Gathering many images (files, folders, .npz) into one batch at the model's resolution."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from invcomp.errors import InvcompError
from invcomp.io.datasets import list_image_files, load_npz_images
from invcomp.io.images import fit_to_square, read_image


def load_collection(sources: list[Path], resolution: int) -> tuple[np.ndarray, list[str], list[str]]:
    """Images (N, S, S, 3) uint8, their names, and notes on conversions, from files, folders and .npz."""
    images: list[np.ndarray] = []
    names: list[str] = []
    notes: list[str] = []
    for src in sources:
        if src.suffix == ".npz" and src.is_file():
            arr, nm = load_npz_images(src)
            if arr.shape[1:3] != (resolution, resolution):
                notes.append(f"{src}: resized {arr.shape[1]}x{arr.shape[2]} images to {resolution}x{resolution}")
                arr = np.stack([fit_to_square(a, resolution) for a in arr])
            images.extend(arr)
            names.extend(nm)
            continue
        files = list_image_files(src) if src.is_dir() else [src]
        for f in files:
            loaded = read_image(f)
            images.append(fit_to_square(loaded.pixels, resolution))
            names.append(f.stem)
            notes.extend(f"{f}: {n}" for n in loaded.notes)
    if not images:
        raise InvcompError("no images found in " + ", ".join(map(str, sources)))
    return np.stack(images), names, notes
