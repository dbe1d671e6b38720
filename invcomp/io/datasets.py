"""Image collections for training and evaluation: .npz files and folders of images."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from invcomp.errors import InvcompError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm"}


SHARED_DATA, LOCAL_DATA = Path("../shared/data"), Path("data")


def data_dir() -> Path:
    """The data folder: $INVCOMP_DATA, else ../shared/data if it exists, else ./data (where
    `invcomp data prepare` writes by default)."""
    if "INVCOMP_DATA" in os.environ:
        return Path(os.environ["INVCOMP_DATA"])
    return SHARED_DATA if SHARED_DATA.is_dir() or not LOCAL_DATA.is_dir() else LOCAL_DATA


def resolve_data_path(name: str | os.PathLike) -> Path:
    """A path as given if it exists, else the same name inside the data folder."""
    p = Path(name)
    if p.exists():
        return p
    q = data_dir() / p
    if q.exists():
        return q
    raise InvcompError(f"no such file or folder: {name} (also looked in {data_dir()}; "
                       "`invcomp data prepare NAME --root DIR` makes the data sets, INVCOMP_DATA=DIR finds them)")


def load_npz_images(path: Path) -> tuple[np.ndarray, list[str]]:
    """The `images` array (N, H, W, 3) uint8 of an .npz file and a name per image."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "images" not in f:
                raise InvcompError(f"{path}: no 'images' array in this .npz file")
            images = np.asarray(f["images"])
            names = npz_row_names(f, path, len(images))
    except (OSError, ValueError) as e:
        raise InvcompError(f"{path}: cannot read .npz file ({e})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise InvcompError(f"{path}: 'images' must be uint8 N x H x W x 3, got {images.dtype} {images.shape}")
    return images, names


def npz_row_names(npz, path: Path, count: int) -> list[str]:
    """A name per image of an open .npz: its `filenames` stems, else image_<id>, else <file stem>_<row>."""
    if "filenames" in npz:
        return [Path(str(n)).stem for n in npz["filenames"]]
    if "image_ids" in npz:
        return [f"image_{int(i):05d}" for i in npz["image_ids"]]
    return [f"{path.stem}_{i:05d}" for i in range(count)]


def list_image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
