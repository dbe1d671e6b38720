"""Which pretrained model suits an image (`--model auto`), and whether a fit landed far below its
model's usual quality (the out-of-domain note).

Choosing is cheap: one forward pass of each candidate's encoder and generator, scored by the SSIM
of G(E(x)) against x at that model's resolution (x centre-cropped and resized as a fit would). The
encoder start predicts the fitted result well: on 100 test images of each 32 px domain the chosen
model's fit reached mean SSIM 0.808 (airplanes), 0.743 (automobiles) and 0.721 (flowers), against
0.812 / 0.754 / 0.724 for the best model per image found by fitting with every one, and 0.807 /
0.734 / 0.724 for the domain's own model (default settings).

Candidates: an image whose size is a model's resolution (S x S) is fitted without resizing, so only
the models of that resolution compete; an image of any other size is resized anyway, so every
registered model competes, each at its own resolution. SSIM at 32 px is usually higher than at
64 px for the same picture (less detail to match), so such images mostly go to a 32 px model;
ask for flowers64 by name to keep more detail.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from invcomp.io.images import fit_to_square
from invcomp.metrics import ssim01, to_unit
from invcomp.models import registry
from invcomp.models.device import pick_device
from invcomp.models.zoo import load_model, to_device

AUTO = "auto"

# Per model and bit depth, the SSIM that 99 % of its own held-out test images reach: the 1st
# percentile of per-image SSIM over the first 400 images of its test file (Codec.compress_candidates,
# 100 steps, 1 start, CPU, bf16 fitting where native, the newest version of each name: version 2 of
# airplanes32 and flowers32 (the former with release 0.4.1's prior schedule), version 3 of flowers64
# (release 0.5.0) and of automobiles32 (release 0.5.1); the means were 0.73-0.87 for airplanes32,
# 0.64-0.83 automobiles32, 0.66-0.80 flowers32
# and 0.57-0.72 flowers64 from 2 to 6 bits). A fit
# below it is far outside the model's usual band
# (an older version of a name, a little weaker, is held to the same floor). The Kodak parrots
# (kodim23) through airplanes32 at 3 bits give 0.59. Bit depths past the table use its nearest row
# (quality stops improving after 6 bits). Reproduce with `python scripts/quality_floors.py --n 400`
# (results/quality_floors.{json,md}).
QUALITY_FLOORS: dict[str, dict[int, float]] = {
    "airplanes32": {2: 0.550, 3: 0.645, 4: 0.692, 5: 0.700, 6: 0.702},
    "automobiles32": {2: 0.473, 3: 0.629, 4: 0.678, 5: 0.691, 6: 0.694},
    "flowers32": {2: 0.494, 3: 0.559, 4: 0.601, 5: 0.613, 6: 0.617},
    "flowers64": {2: 0.402, 3: 0.491, 4: 0.527, 5: 0.538, 6: 0.541},
}


def candidates(shape: tuple[int, ...]) -> list[str]:
    """The registered models that compete for an image of this (H, W, ...) shape."""
    h, w = shape[:2]
    same = [name for name, info in registry.REGISTRY.items() if info.resolution == h == w]
    return same or list(registry.REGISTRY)


@torch.no_grad()
def encoder_scores(name: str, images: Sequence[np.ndarray], device: str = "auto", batch_size: int = 64) -> np.ndarray:
    """SSIM of G(E(x)) against x per image (H x W x 3 uint8, any size), at the model's resolution."""
    model = load_model(name)
    if model.encoder is None:
        return np.full(len(images), -1.0)
    dev = pick_device(device)
    to_device(model, dev)
    size = model.config.resolution
    out = []
    for i in range(0, len(images), batch_size):
        x = to_unit(np.stack([fit_to_square(im, size) for im in images[i : i + batch_size]])).to(dev)
        g = (model.generator(model.encoder(x * 2 - 1)) + 1) / 2
        out.append(ssim01(g.clamp(0, 1), x).cpu().numpy())
    return np.concatenate(out).astype(float) if out else np.zeros(0)


def choose_models(images: Sequence[np.ndarray], device: str = "auto", batch_size: int = 64) -> list[str]:
    """Per image (H x W x 3 uint8), the name of the registered model whose encoder start fits it best."""
    per_image = [candidates(im.shape) for im in images]
    scores = np.full((len(images), len(registry.REGISTRY)), -np.inf)
    names = list(registry.REGISTRY)
    for j, name in enumerate(names):
        rows = [i for i, c in enumerate(per_image) if name in c]
        if rows:
            scores[rows, j] = encoder_scores(name, [images[i] for i in rows], device, batch_size)
    return [names[int(np.argmax(s))] for s in scores]


def quality_note(model: str, ssim: float, bits: int, better: str | None = None) -> str | None:
    """One line when `ssim` is far below what the model usually reaches at this bit depth, else None;
    `better` names a model to suggest instead (choose_models' pick for the image)."""
    floors = QUALITY_FLOORS.get(model)
    if not floors:
        return None
    floor = floors[min(max(bits, min(floors)), max(floors))]
    if ssim >= floor:
        return None
    info = registry.REGISTRY.get(model)
    domain = f" ({info.domain.split(' (')[0]})" if info and info.domain else ""
    other = f"--model {better} (its encoder fits this image best)" if better and better != model else "another model"
    return (f"SSIM {ssim:.3f} is far below what {model}{domain} usually reaches at {bits} bits "
            f"(99% of its test images reach {floor:.2f}): the image looks unlike its domain; try {other} "
            "or a classic codec (WebP, AVIF)")


def quality_notes(model: str, images: Sequence[np.ndarray], ssim: Sequence[float], bits: Sequence[int],
                  device: str = "auto") -> list[str | None]:
    """quality_note per image (H x W x 3 uint8 as given to the fit), suggesting the model that
    choose_models picks for each image that gets a note (only those are scored)."""
    low = [i for i in range(len(images)) if quality_note(model, ssim[i], bits[i]) is not None]
    picks = dict(zip(low, choose_models([images[i] for i in low], device))) if low else {}
    return [quality_note(model, ssim[i], bits[i], picks.get(i)) for i in range(len(images))]
