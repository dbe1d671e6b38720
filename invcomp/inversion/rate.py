"""Rate control: the operating points of a model and choosing one per image.

An operating point is a bit depth of the latent code (one model per domain here, so the
latent size is fixed by the model). `--quality LEVEL` names a point directly; a target
(`--target-ssim`, `--max-bytes`) is met per image by fitting every point in one run
(`invert_rates`) and keeping the cheapest file that meets it.
"""
from __future__ import annotations

from dataclasses import dataclass

from invcomp.errors import InvcompError

# Bit depths from the lowest rate to where quality stops improving (docs/RESULTS.md shows
# SSIM flattening out between 5 and 6 bits for every pretrained model).
OPERATING_BITS = (2, 3, 4, 5, 6)

# Bases for enhancement parts. A part codes the pixel error its base leaves, so targets with parts also
# fit these depths with the pixel error weighted 100x (1 - SSIM + 100 MSE) in the inversion's
# quantization-aware tail, branched from the same run as the SSIM-fitted depths (invert_branches):
# more PSNR at equal bytes and no lower SSIM beside the SSIM-fitted bases (`scripts/parts_base_pilot.py`,
# docs/RESULTS.md). The depths are those such bases win at from 0.5x to 3x WebP-q0's bytes.
PARTS_BITS = (3, 4, 5)
PARTS_MSE_WEIGHT = 100.0

# Targets also fit these depths with no latent prior in the tail, where the model's schedule gives them
# one: the prior makes the default file smaller, and at a budget a few bytes above it the same depth
# without the prior is the better file (airplanes32 at 0.5x WebP-q0's bytes: +0.008 SSIM; docs/RESULTS.md,
# "The latent prior weight per bit depth"). One more tail of the shared run.
PRIORLESS_BITS = (3,)
# ... but only at budgets that leave an image less than this many bytes beside its file at that depth: with more
# room a part (or the next depth) is the better use of the bytes, and the tail is skipped (`Codec.depths_within`):
# on 200 test airplanes the priorless base changed the choice only at 0.5x WebP-q0's bytes, not from 0.6x
# (`scripts/priorless_pilot.py --stem priorless_room`, docs/RESULTS.md).
PRIORLESS_ROOM = 16

# A byte budget skips the tails of depths whose files cannot fit it, judged before the tails from the
# shared run's latent quantized at each depth (`Codec.depths_within`), with this many bytes to spare: a
# tail moves the codes, and its file ended at most 1 B below the estimate on 200 test airplanes and 100
# flowers64 images (`scripts/budget_tails_pilot.py`, docs/RESULTS.md).
TAIL_SLACK = 4


def quality_levels(bits: tuple[int, ...] = OPERATING_BITS) -> dict[int, int]:
    """{quality level: bits}; level 1 is the lowest rate."""
    return {level: b for level, b in enumerate(bits, start=1)}


def bits_for_quality(level: int, bits: tuple[int, ...] = OPERATING_BITS) -> int:
    levels = quality_levels(bits)
    if level not in levels:
        raise InvcompError(f"--quality must be 1..{len(levels)} (1 = smallest files), not {level}")
    return levels[level]


@dataclass(frozen=True)
class Candidate:
    """One image fitted at one operating point: the file and the quality of its decoding."""

    bits: int
    data: bytes
    psnr: float
    ssim: float

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Choice:
    candidate: Candidate
    met: bool  # False: no operating point meets the target; candidate is the closest one
    reason: str = ""

    def within(self, max_bytes: int | None) -> bool:
        """Whether the file keeps a byte limit (None: no limit): a file over it is never written, while one that
        keeps it and misses a quality target is, marked as missing it."""
        return max_bytes is None or self.candidate.size <= max_bytes


def choose(candidates: list[Candidate], target_ssim: float | None = None, max_bytes: int | None = None) -> Choice:
    """The cheapest candidate meeting every target given (ties: higher SSIM).

    target_ssim: SSIM at least this; when no point reaches it, the best-SSIM file is kept
    and the choice says so. max_bytes: file at most this many bytes, a hard limit; when
    no point fits, the smallest file is returned with met=False (callers refuse to write it).
    """
    if not candidates:
        raise InvcompError("no candidates to choose from")
    if target_ssim is not None and not 0 < target_ssim <= 1:
        raise InvcompError(f"--target-ssim must be in (0, 1], not {target_ssim}")
    if max_bytes is not None and max_bytes < 1:
        raise InvcompError(f"--max-bytes must be >= 1, not {max_bytes}")
    fitting = [c for c in candidates if max_bytes is None or c.size <= max_bytes]
    if not fitting:
        smallest = min(candidates, key=lambda c: (c.size, -c.ssim))
        return Choice(smallest, False, f"smallest file is {smallest.size} bytes > --max-bytes {max_bytes}")
    if target_ssim is None:  # only a byte budget: best quality within it
        return Choice(max(fitting, key=lambda c: (c.ssim, -c.size)), True)
    meeting = [c for c in fitting if c.ssim >= target_ssim]
    if meeting:
        return Choice(min(meeting, key=lambda c: (c.size, -c.ssim)), True)
    best = max(fitting, key=lambda c: (c.ssim, -c.size))
    limit = f" within {max_bytes} bytes" if max_bytes is not None else ""
    return Choice(best, False, f"best SSIM{limit} is {best.ssim:.4f} < target {target_ssim}")
