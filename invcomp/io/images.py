"""Reading, converting and writing image files (the only module that touches Pillow I/O)."""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from invcomp.errors import InvcompError
from invcomp.files import write_atomic

MAX_INPUT_PIXELS = 64_000_000  # refuse decompression bombs beyond this many pixels
# The formats read_image opens. Pillow picks a plugin by content, not by file name, and some
# plugins are risky on untrusted input (EPS runs Ghostscript), so only these are allowed.
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "TIFF", "GIF", "PPM")  # JPEG includes MPO


@dataclass(frozen=True)
class LoadedImage:
    pixels: np.ndarray  # H x W x 3 uint8 RGB
    notes: tuple[str, ...]  # conversions applied, in words


def to_rgb8(img: Image.Image) -> tuple[np.ndarray, list[str]]:
    """An RGB uint8 array from any Pillow image, with a note for each conversion made."""
    notes: list[str] = []
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(np.round(arr * (255.0 / peak)), 0, 255).astype(np.uint8)
        notes.append(f"converted {mode} ({'16-bit' if peak > 255 else 'integer'}) grey to 8-bit RGB")
        return np.repeat(arr[:, :, None], 3, axis=2), notes
    if mode == "P":
        notes.append("converted palette image to RGB")
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "RGB" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
        notes.append(f"flattened {mode} alpha onto white")
    elif mode in ("L", "1"):
        notes.append("converted grey image to RGB")
        img = img.convert("RGB")
    elif mode != "RGB":
        notes.append(f"converted {mode} to RGB")
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy(), notes


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Load an image file as RGB uint8; a one-line InvcompError for anything unusable."""
    p = Path(path)
    if not p.exists():
        raise InvcompError(f"{p}: no such file")
    if p.is_dir():
        raise InvcompError(f"{p}: is a folder, not an image")
    if p.stat().st_size == 0:
        raise InvcompError(f"{p}: empty file, not an image")
    Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about damaged metadata; we judge the pixels
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p, formats=INPUT_FORMATS) as img:
                notes: list[str] = []
                if img.width == 0 or img.height == 0:
                    raise InvcompError(f"{p}: image has zero size")
                if getattr(img, "n_frames", 1) > 1:
                    notes.append(f"used the first of {img.n_frames} frames")
                img.load()
                pixels, conv = to_rgb8(img)
    except InvcompError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvcompError(f"{p}: image too large (more than {MAX_INPUT_PIXELS} pixels)") from None
    except PermissionError:
        raise InvcompError(f"{p}: permission denied") from None
    except UnidentifiedImageError:
        raise InvcompError(f"{p}: not a readable image (damaged, or not PNG, JPEG, WebP, BMP, TIFF, GIF or PPM)") from None
    except MemoryError:
        raise InvcompError(f"{p}: image too large to decode in memory") from None
    except Exception as e:  # noqa: BLE001 - Pillow's parsers raise many types (struct.error, IndexError, ...) on damaged files
        raise InvcompError(f"{p}: not a readable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return LoadedImage(pixels, tuple(notes + conv))


def fit_to_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to size x size (Lanczos); identity if already that size."""
    h, w = pixels.shape[:2]
    _check_pixels(w, h)
    if (h, w) == (size, size):
        return pixels
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(pixels[top : top + side, left : left + side])
    return np.asarray(crop.resize((size, size), Image.LANCZOS), dtype=np.uint8)


def resize_to(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to an arbitrary size (used to restore an image's original size on decode)."""
    _check_pixels(width, height)
    if pixels.shape[:2] == (height, width):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((width, height), Image.LANCZOS), dtype=np.uint8)


def _check_pixels(width: int, height: int) -> None:
    """The size limits of read_image, for arrays that did not come through it, checked before allocating."""
    if width < 1 or height < 1:
        raise InvcompError(f"image has zero size ({width}x{height})")
    if width * height > MAX_INPUT_PIXELS:
        raise InvcompError(f"image too large ({width}x{height} is more than {MAX_INPUT_PIXELS} pixels)")


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: str | os.PathLike, pixels: np.ndarray) -> None:
    write_atomic(path, png_bytes(pixels))


def image_grid(images: np.ndarray, ncols: int) -> np.ndarray:
    """Tile N x H x W x 3 images into one array, ncols per row, with a 1-pixel gap."""
    n, h, w, _ = images.shape
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + 1) + 1, ncols * (w + 1) + 1, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, ncols)
        out[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = im
    return out
