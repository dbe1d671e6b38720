"""The classic codecs the benches compare against: Pillow's JPEG, WebP, AVIF and JPEG 2000, at full and reduced size."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from invcomp.errors import InvcompError


@dataclass(frozen=True)
class ClassicCodec:
    """A Pillow codec swept over `settings`; scale k > 1 encodes at 1/k size and upscales on decode."""

    name: str
    pil_format: str
    settings: tuple[int, ...]
    scale: int = 1

    def options(self, setting: int) -> dict:
        if self.pil_format == "JPEG":
            return {"quality": setting, "optimize": True}
        if self.pil_format == "WEBP":
            return {"quality": setting, "method": 6}
        if self.pil_format == "AVIF":
            return {"quality": setting}
        if self.pil_format == "JPEG2000":  # raw codestream; target PSNR in dB (rate mode floors at the header)
            return {"quality_mode": "dB", "quality_layers": [setting], "no_jp2": True, "num_resolutions": 3}
        raise InvcompError(f"unknown Pillow format {self.pil_format}")

    @property
    def key(self) -> str:
        return self.name.lower().replace(" ", "").replace("@1/", "_div")

    def setting_label(self, setting: int) -> str:
        return f"{setting} dB" if self.pil_format == "JPEG2000" else f"q{setting}"

    def roundtrip(self, pixels: np.ndarray, setting: int) -> tuple[bytes, np.ndarray]:
        """The encoded file and the decoded image at the input's size."""
        h, w = pixels.shape[:2]
        img = Image.fromarray(pixels)
        if self.scale > 1:
            img = img.resize((max(1, w // self.scale), max(1, h // self.scale)), Image.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format=self.pil_format, **self.options(setting))
        data = buf.getvalue()
        decoded = Image.open(io.BytesIO(data)).convert("RGB")
        if decoded.size != (w, h):
            decoded = decoded.resize((w, h), Image.LANCZOS)
        return data, np.asarray(decoded, dtype=np.uint8)


def classic_roundtrip(pil_format: str, pixels: np.ndarray, setting: int) -> tuple[bytes, np.ndarray]:
    """One image through a Pillow codec at full size, with the bench's options: (file, decoded)."""
    return ClassicCodec(pil_format, pil_format, (setting,)).roundtrip(pixels, setting)


CLASSIC_CODECS = (
    ClassicCodec("JPEG", "JPEG", (1, 5, 10, 20, 30, 50, 75, 90)),
    ClassicCodec("WebP", "WEBP", (0, 5, 10, 20, 30, 50, 75, 90)),
    ClassicCodec("AVIF", "AVIF", (0, 10, 20, 30, 50, 70, 90)),
    ClassicCodec("JPEG 2000", "JPEG2000", (16, 18, 20, 22, 24, 27, 30, 34)),
    ClassicCodec("WebP@1/2", "WEBP", (0, 10, 30, 50, 75, 90), 2),
    ClassicCodec("WebP@1/4", "WEBP", (0, 30, 75, 90), 4),
    ClassicCodec("JPEG@1/2", "JPEG", (1, 10, 30, 50, 75, 90), 2),
    ClassicCodec("JPEG@1/4", "JPEG", (1, 30, 75, 90), 4),
)
