"""invcomp: generative image compression by GAN latent inversion.

    import invcomp
    data = invcomp.compress("airplane.png", model="airplanes32")   # bytes
    pixels = invcomp.decompress(data)                             # H x W x 3 uint8

Layers, lowest first (each imports only from those before it): `errors`, `files`;
`formats` (the .icz and .icza bytes); `io` (image files, data collections); `metrics`;
`models` (networks, registry, weights, training); `inversion` (the search for z, rate
control); `masks` (kept pixels); `codec` (the public objects); `archive` (packing many
images); `bench`; `cli`. See docs/ARCHITECTURE.md.

The public names below are imported on first use, so that `import invcomp` (and commands
that only read headers) do not pay for importing torch.
"""
from __future__ import annotations

import importlib

__version__ = "0.5.5"

_PUBLIC = {
    "Codec": "invcomp.codec", "FitOptions": "invcomp.codec", "compress": "invcomp.codec",
    "compress_batch": "invcomp.codec", "decompress": "invcomp.codec", "decompress_batch": "invcomp.codec",
    "InvcompError": "invcomp.errors", "InversionConfig": "invcomp.inversion.invert", "invert": "invcomp.inversion.invert",
    "REGISTRY": "invcomp.models.registry", "Model": "invcomp.models.zoo", "load_model": "invcomp.models.zoo",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'invcomp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
