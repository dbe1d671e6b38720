"""A Pillow plugin for .icz files: `import invcomp.pillow` registers the format "ICZ".

    from PIL import Image
    import invcomp.pillow

    im = Image.open("airplane.icz")      # format "ICZ", mode RGB; header fields in im.info
    im.size                              # the original size when the file stores one, else the model's
    im.save("copy.icz", model="airplanes32", quality=3)   # or bits=, target_ssim=, target_psnr=, max_bytes=, ...

Size: a file made from an image of another size than the model's stores that original size, and
`Image.open` reports it; `load()` decodes at the model's resolution and resizes with Lanczos, as
`invcomp decode --original-size` does. `im.info["model_resolution"]` is the size the generator
made (`invcomp.decompress(data)` gives those pixels unresized).

Opening reads only the header (no torch); `load()` imports torch and runs the generator. Only
registered models (`invcomp models`) decode through Pillow. Errors follow Pillow's types: a file
that is not an .icz file gives Pillow's `UnidentifiedImageError`; an .icz file whose header is
damaged, or whose model is not installed, gives `UnidentifiedImageError` with invcomp's message;
a damaged payload gives an `OSError` with invcomp's message when the pixels are loaded; a save
that cannot be done (bad options, a `max_bytes` that cannot be met) raises `OSError` and Pillow
removes the file it had created.
"""
from __future__ import annotations

import io

from PIL import Image, ImageFile, UnidentifiedImageError

from invcomp.errors import InvcompError
from invcomp.formats.icz import ENCODING_NAMES, MAGIC, split_file, unpack_header
from invcomp.models.registry import model_for_fingerprint

FORMAT = "ICZ"
EXTENSION = ".icz"
MIME = "image/x-icz"
# an .icz file is a few dozen bytes, a few kilobytes with enhancement parts; the largest possible
# (a 64 KiB extension block, 1024 latent dimensions at 12 bits, an original size, 16 parts of at
# most 2 MiB) is below this
MAX_FILE_BYTES = 34_000_000
# the options of im.save(..., **options) passed to invcomp.compress; Pillow's own (dpi, exif, ...) are ignored
SAVE_OPTIONS = ("model", "device", "quality", "bits", "target_ssim", "target_psnr", "max_bytes", "metric", "layers",
                "enhance", "steps", "restarts", "seed", "mask", "mask_scheme", "keep", "assist_bits", "loss", "drop_outside")


def _accept(prefix: bytes) -> bool:
    return prefix[:2] == MAGIC


def _name(im: ImageFile.ImageFile) -> str:
    return repr(im.filename) if getattr(im, "filename", None) else "(file object)"


class IczImageFile(ImageFile.ImageFile):
    """An .icz file: its header read on open, its pixels decoded by `load()`."""

    format = FORMAT
    format_description = "invcomp GAN latent image"

    def _open(self) -> None:
        assert self.fp is not None
        data = self.fp.read(MAX_FILE_BYTES + 1)
        try:
            if len(data) > MAX_FILE_BYTES:
                raise InvcompError(f"not an invcomp file (more than {MAX_FILE_BYTES} bytes)")
            header, pos = unpack_header(data)
            _, base, parts = split_file(data)
            model = model_for_fingerprint(header.fingerprint)
            if model is None:
                raise InvcompError(f"file was made with an unknown model (fingerprint {header.fingerprint.hex()}); "
                                   "is it installed? (`invcomp models` lists the installed ones)")
        except InvcompError as e:
            # raised from _open, UnidentifiedImageError leaves Image.open at once, carrying our message
            # (a SyntaxError would be swallowed into Pillow's generic "cannot identify image file")
            raise UnidentifiedImageError(f"cannot identify image file {_name(self)}: {e}") from None
        self._mode = "RGB"
        self._size = header.original_size or (model.resolution, model.resolution)
        self.info.update({"model": model.name, "bits": header.bits, "encoding": ENCODING_NAMES[header.encoding],
                          "fingerprint": header.fingerprint.hex(), "original_size": header.original_size,
                          "model_resolution": model.resolution, "mask_scheme": _mask_scheme(header.extension),
                          "header_bytes": pos, "payload_bytes": len(base), "part_bytes": [len(x) for x in parts]})
        self._icz = data
        self.tile = []

    def load(self) -> Image.core.PixelAccess | None:
        if self._icz is not None:
            from invcomp.codec import decompress

            try:
                pixels = decompress(self._icz, original_size=True)
            except InvcompError as e:
                raise OSError(f"cannot decode ICZ image {_name(self)}: {e}") from None
            self._icz = None
            if self.fp and self._exclusive_fp:
                self.fp.close()
            self.fp = io.BytesIO(pixels.tobytes())
            self.tile = [_tile((0, 0, *self.size))]
        return super().load()

    def load_seek(self, pos: int) -> None:
        """Reading goes through the decoded pixels (as in Pillow's WebP plugin): no seek, no mmap of the file."""


def _tile(box: tuple[int, int, int, int]):
    tile = getattr(ImageFile, "_Tile", None)  # Pillow >= 11; a plain tuple before
    return tile("raw", box, 0, "RGB") if tile else ("raw", box, 0, "RGB")


def _mask_scheme(extension: bytes | None) -> str | None:
    if extension is None:
        return None
    from invcomp.formats.icz import MASK_SCHEMES as SCHEMES

    return SCHEMES[extension[0]] if extension[0] < len(SCHEMES) else f"unknown ({extension[0]})"


def _save(im: Image.Image, fp, filename: str | bytes) -> None:
    """im.save(..., format="ICZ" or a .icz name, model=..., quality=... or bits=..., target_ssim=...,
    max_bytes=..., steps=..., ...): the options of invcomp.compress."""
    from invcomp.codec import compress
    from invcomp.io.images import to_rgb8

    options = {k: v for k, v in im.encoderinfo.items() if k in SAVE_OPTIONS}
    if "model" not in options and im.format == FORMAT and im.info.get("model"):
        options["model"] = im.info["model"]  # re-saving an .icz image keeps its model
    try:
        data = compress(to_rgb8(im)[0], **options)
    except InvcompError as e:
        raise OSError(f"cannot write ICZ image: {e}") from None
    fp.write(data)


Image.register_open(FORMAT, IczImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, EXTENSION)
Image.register_mime(FORMAT, MIME)
