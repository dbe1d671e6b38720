"""Pictures to pack, listed by name before any pixel is read: image files, folders, globs and
the rows of .npz files (streamed, so memory holds one batch, not a whole array)."""
from __future__ import annotations

import glob
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invcomp.errors import InvcompError
from invcomp.formats.icza import check_name
from invcomp.io.datasets import list_image_files, npz_row_names
from invcomp.io.images import fit_to_square, read_image


@dataclass(frozen=True)
class Item:
    """One image to pack: its archive name and where its pixels are."""

    name: str
    path: Path
    row: int = -1  # row of an .npz `images` array, or -1 for an image file

    def where(self) -> str:
        return f"{self.path}[{self.row}]" if self.row >= 0 else str(self.path)


class NpzRows:
    """Rows of an .npz file's `images` array read in order from the zip stream, so memory
    holds one batch, not the whole array (np.load would decompress all of it)."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None
        self._next = 0
        self.shape: tuple[int, ...] = ()
        self._open()

    def _open(self) -> None:
        self.close()
        try:
            self._zip = zipfile.ZipFile(self.path)
            self._file = self._zip.open("images.npy")
            version = np.lib.format.read_magic(self._file)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read(self._file)
        except KeyError:
            raise InvcompError(f"{self.path}: no 'images' array in this .npz file") from None
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise InvcompError(f"{self.path}: cannot read .npz file ({e})") from None
        if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3 or fortran:
            raise InvcompError(f"{self.path}: 'images' must be uint8 N x H x W x 3, got {dtype} {shape}")
        self.shape, self._next = shape, 0

    def row(self, i: int) -> np.ndarray:
        if i < self._next:
            self._open()
        size = int(np.prod(self.shape[1:]))
        try:
            if i > self._next:
                self._skip((i - self._next) * size)
            raw = self._file.read(size)
        except (OSError, zipfile.BadZipFile, zlib.error) as e:
            raise InvcompError(f"{self.path}: cannot read .npz file ({e})") from None
        if len(raw) != size:
            raise InvcompError(f"{self.path}: truncated 'images' array")
        self._next = i + 1
        return np.frombuffer(raw, np.uint8).reshape(self.shape[1:]).copy()

    def _skip(self, nbytes: int) -> None:
        while nbytes > 0:
            got = len(self._file.read(min(nbytes, 1 << 20)))
            if not got:
                raise InvcompError(f"{self.path}: truncated 'images' array")
            nbytes -= got

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._zip.close()
            self._file = None


def npz_names(path: Path, count: int) -> list[str]:
    """Per-image names the way datasets.load_npz_images gives them: `filenames` stems, else
    image_<id>, else <file stem>_<row>."""
    try:
        with np.load(path, allow_pickle=False) as f:
            names = npz_row_names(f, path, count)
    except (OSError, ValueError) as e:
        raise InvcompError(f"{path}: cannot read .npz file ({e})") from None
    if len(names) != count:
        raise InvcompError(f"{path}: {len(names)} names for {count} images")
    return names


def list_sources(sources: Sequence[Path]) -> list[Item]:
    """Every image of the sources, named: a file by its stem, a file in a folder by its
    path inside the folder without suffix ('/'-separated), an .npz row by the .npz's names.
    A name that occurs twice is an error naming both places."""
    items: list[Item] = []
    for src in sources:
        paths = [src]
        if not src.exists() and glob.has_magic(str(src)):
            paths = [Path(p) for p in sorted(glob.glob(str(src), recursive=True))]
            if not paths:
                raise InvcompError(f"{src}: no file matches")
        for p in paths:
            if p.is_dir():
                items += [Item(f.relative_to(p).with_suffix("").as_posix(), f) for f in list_image_files(p)]
            elif not p.exists():
                raise InvcompError(f"{p}: no such file")
            elif p.suffix.lower() == ".npz":
                rows = NpzRows(p)
                rows.close()
                items += [Item(n, p, i) for i, n in enumerate(npz_names(p, rows.shape[0]))]
            else:
                items.append(Item(p.stem, p))
    if not items:
        raise InvcompError("no images found in " + ", ".join(map(str, sources)))
    seen: dict[str, Item] = {}
    for it in items:
        check_name(it.name)
        if it.name in seen:
            raise InvcompError(f"two images would be named {it.name!r}: {seen[it.name].where()} and {it.where()} "
                               "(rename one, or pack them into separate archives)")
        seen[it.name] = it
    return items


def read_batches(items: Sequence[Item], batch_size: int, resolution: int, skip_unreadable: bool,
                 notes: Callable[[str], None]) -> Iterator[tuple[list[Item], list[np.ndarray], list[tuple[int, int] | None]]]:
    """(items, pixels at the model's size, original (width, height) where that differs) a batch at a time."""
    npz: dict[Path, NpzRows] = {}
    try:
        batch: list[tuple[Item, np.ndarray, tuple[int, int] | None]] = []
        for it in items:
            try:
                if it.row >= 0:
                    if it.path not in npz:
                        npz[it.path] = NpzRows(it.path)
                    pixels = npz[it.path].row(it.row)
                else:
                    loaded = read_image(it.path)
                    pixels = loaded.pixels
                    for n in loaded.notes:
                        notes(f"{it.where()}: {n}")
            except InvcompError as e:
                if not skip_unreadable:
                    raise
                notes(f"skipped {e}")
                continue
            h, w = pixels.shape[:2]
            size = None
            if (h, w) != (resolution, resolution):
                notes(f"{it.where()}: {w}x{h} centre-cropped and resized to {resolution}x{resolution}")
                size = (w, h)
            batch.append((it, fit_to_square(pixels, resolution), size))
            if len(batch) == batch_size:
                yield tuple(map(list, zip(*batch)))
                batch = []
        if batch:
            yield tuple(map(list, zip(*batch)))
    finally:
        for rows in npz.values():
            rows.close()
