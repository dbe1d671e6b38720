"""`--quality` presets: 1..5 are the base alone at 2..6 bits per latent dimension (the files release
0.1.0 wrote); 6..10 add one enhancement part at a fixed step (on a 6-bit base, then a 4-bit one),
each preset's step half the one before (preset 10 is about 41 dB on airplanes; --target-psnr goes
further).
docs/RESULTS.md lists each preset's bytes and quality per domain (scripts/presets.py)."""
from __future__ import annotations

from invcomp.errors import InvcompError
from invcomp.inversion.rate import OPERATING_BITS

STEP_LEVELS = 128  # a part's step index i: step = 2 ** ((i - 8) / 8) pixel levels, 0.5 .. ~24000 (orthonormal DCT)
# presets 6..10: (base bits, part step index); steps 64, 32, 16, 8 and 4 pixel levels. Preset 6 keeps
# preset 5's 6-bit base so that SSIM does not dip below it (on a 4-bit base it did, on airplanes);
# above it the part dominates the bytes and a 4-bit base is the cheaper start.
ENHANCED = ((6, 56), (4, 48), (4, 40), (4, 32), (4, 24))


def step_size(index: int) -> float:
    return 2.0 ** ((index - 8) / 8)


def presets() -> dict[int, tuple[int, int | None]]:
    """{level: (base bits, enhancement step index or None)}; level 1 is the smallest file."""
    table: dict[int, tuple[int, int | None]] = {i: (b, None) for i, b in enumerate(OPERATING_BITS, start=1)}
    first = len(table) + 1
    table.update({first + i: preset for i, preset in enumerate(ENHANCED)})
    return table


def preset(level: int) -> tuple[int, int | None]:
    table = presets()
    if level not in table:
        raise InvcompError(f"--quality must be 1..{len(table)} (1 = smallest files), not {level}")
    return table[level]
