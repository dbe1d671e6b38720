"""Rate control over the whole range: per image, the base bit depth and the enhancement part chosen
jointly for a byte budget or a quality target.

The inputs are the image and its base files (one per operating bit depth, with the pixels they decode
to); a file is a base alone or a base with parts (`icz.with_parts`). The search per base is a
search over the part's step (`first_true`), starting from the step that encodings near the previous
base's step predict (`sized_guess` for a budget, `quality_guess` for a PSNR target): about 2.5 encodings
per base under a budget instead of a bisection's 7."""
from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from invcomp.enhance import parts as enh
from invcomp.enhance.presets import STEP_LEVELS
from invcomp.enhance.residual import to_pixels
from invcomp.errors import InvcompError
from invcomp.formats.icz import with_parts
from invcomp.inversion.rate import Candidate, Choice
from invcomp.metrics import image_quality

METRICS = ("ssim", "psnr")
MAX_LAYERS = 8


@dataclass(frozen=True)
class Target:
    """What a file must meet: at most max_bytes; at least target_ssim / target_psnr (the cheapest file
    that does). With only a budget, the best `metric` within it. layers > 1 splits the enhancement
    into that many parts, each twice as fine as the one before, so that `trim` can cut between them."""

    max_bytes: int | None = None
    target_ssim: float | None = None
    target_psnr: float | None = None
    metric: str = "ssim"
    layers: int = 1
    block: int = enh.DEFAULT_BLOCK  # the parts' transform on every base (pilots compare others: scripts/enhance_pilot.py)
    second_block: int | None = 4  # also tried on the winning base alone: each block side wins on some images
    chroma: int = enh.DEFAULT_CHROMA

    def __post_init__(self) -> None:
        if self.max_bytes is not None and self.max_bytes < 1:
            raise InvcompError(f"--max-bytes must be >= 1, not {self.max_bytes}")
        if self.target_ssim is not None and not 0 < self.target_ssim <= 1:
            raise InvcompError(f"--target-ssim must be in (0, 1], not {self.target_ssim}")
        if self.target_psnr is not None and not 0 < self.target_psnr <= 100:
            raise InvcompError(f"--target-psnr must be in (0, 100] dB, not {self.target_psnr}")
        if self.metric not in METRICS:
            raise InvcompError(f"--metric must be one of {', '.join(METRICS)}, not {self.metric!r}")
        if not 1 <= self.layers <= MAX_LAYERS:
            raise InvcompError(f"--layers must be 1..{MAX_LAYERS}, not {self.layers}")

    @property
    def quality_target(self) -> bool:
        return self.target_ssim is not None or self.target_psnr is not None

    def good(self, psnr: float, ssim: float) -> bool:
        return ((self.target_ssim is None or ssim >= self.target_ssim)
                and (self.target_psnr is None or psnr >= self.target_psnr))


@dataclass(frozen=True)
class Base:
    """One base file (a latent at one bit depth) and the uint8 picture it decodes to; `searched` False: a
    candidate alone, no part search on it (the priorless bases: parts on them measured no better)."""

    bits: int
    data: bytes
    pixels: np.ndarray
    searched: bool = True


def _quality(image: np.ndarray, pixels: np.ndarray) -> tuple[float, float]:
    p, s = image_quality(image[None], pixels[None])
    return float(p[0]), float(s[0])


def layered(image: np.ndarray, base: np.ndarray, step: int, layers: int, block: int = enh.DEFAULT_BLOCK,
            chroma: int = enh.DEFAULT_CHROMA) -> tuple[list[bytes], np.ndarray]:
    """Parts whose last has step index `step`, each earlier one 8 indices (2x) coarser; the float picture."""
    recon, out = base.astype(np.float64), []
    for k in range(layers - 1, -1, -1):
        part, recon = enh.encode_part(image, recon, min(step + 8 * k, STEP_LEVELS - 1), block, chroma)
        out.append(part.to_bytes())
    return out, recon


def best_kind(image: np.ndarray, found: list[bytes], recon: np.ndarray,
              metric: str = "ssim") -> tuple[list[bytes], np.ndarray, tuple[float, float]]:
    """One part of kind 0 and the float picture it decodes to -> the better by `metric` of it and its
    kind-1 twin (the same bytes with the deblocking filter, which wins on some images only), with that
    picture and its (PSNR, SSIM). Several parts are kept as they are."""
    plain = (found, recon, _quality(image, to_pixels(recon)))
    if len(found) != 1:
        return plain
    part, filtered = enh.deblocked(enh.parse_part(found[0]), recon)
    other = ([part.to_bytes()], filtered, _quality(image, to_pixels(filtered)))
    order = _order(metric)
    return max(plain, other, key=lambda option: order(*option[2]))  # a tie keeps kind 0


def first_true(pred: Callable[[int], bool], lo: int, hi: int, guess: int) -> int:
    """The first index in [lo, hi] where the monotone predicate holds (hi + 1 if none): galloping out of
    `guess` and then bisecting, so a good guess costs about 3 probes instead of log2(hi - lo + 1)."""
    guess = min(max(guess, lo), hi)
    if pred(guess):  # the answer is at or below guess
        good, gap = guess, 1
        while good - gap >= lo and pred(good - gap):
            good, gap = good - gap, 2 * gap
        bad = max(lo - 1, good - gap)
    else:
        bad, gap = guess, 1
        while bad + gap <= hi and not pred(bad + gap):
            bad, gap = bad + gap, 2 * gap
        good = min(hi + 1, bad + gap)
    while good - bad > 1:  # pred(bad) is false (or bad < lo), pred(good) is true (or good > hi)
        mid = (bad + good) // 2
        if pred(mid):
            good = mid
        else:
            bad = mid
    return good


STEPS_PER_HALVING = 6  # the first guess at how many step indices halve a part's bytes (8 would double the step)
STEPS_PER_DB = 8 / 6.02  # ... and at how many lose a dB of PSNR (doubling the step costs about 6 dB)
BLIND = STEP_LEVELS // 2  # where a search starts with nothing known
TIGHT_ROOM = 16  # bytes: below this, first check that the coarsest step's part (every coefficient zero) fits at all


def secant_guess(measure: Callable[[int], float], goal: float, guess: int, last: int, per_unit: float) -> int:
    """The step where `measure`, falling as the step grows, meets `goal`: measured at `guess` (the step the
    image's previous base needed), then where a line of `per_unit` indices per unit predicts, then where
    the line through both measurements predicts (its slope kept within 3x of per_unit). A search's answer
    is the same from any start; a near one saves encodings (scripts/search_start_pilot.py)."""

    def towards(step: int, value: float, slope: float) -> int:
        return min(max(step + round(slope * (value - goal)), 0), last)

    value = measure(guess)
    second = towards(guess, value, per_unit)
    if second == guess:
        return guess
    value2 = measure(second)
    if value2 == value:
        return second
    return towards(second, value2, min(max((second - guess) / (value - value2), per_unit / 3), per_unit * 3))


def sized_guess(part_bytes: Callable[[int], int], room: int, guess: int, last: int) -> int:
    """Where the search for the finest step whose parts fit `room` bytes starts: `last` if the room is tight
    and not even its part fits (a quick encoding: no coefficient survives the coarsest step); else where
    the parts' bytes, in log2 above what no step removes, meet the room's (`secant_guess`)."""
    floor = 0  # bytes that no step removes, where known
    if room < TIGHT_ROOM:
        floor = part_bytes(last)
        if floor > room:
            return last
    return secant_guess(lambda s: math.log2(max(part_bytes(s) - floor, 1)), math.log2(max(room - floor, 1)),
                        guess, last, STEPS_PER_HALVING)


def quality_guess(quality: Callable[[int], tuple[float, float]], target: Target, guess: int, last: int) -> int:
    """Where the search for a PSNR target starts: where PSNR meets it (`secant_guess`). An SSIM target keeps
    `guess`: SSIM against the step is not monotone on every image, so another start may find another,
    larger file (tried: a few of 200 test airplanes changed)."""
    if target.target_ssim is None and target.target_psnr is not None:
        return secant_guess(lambda s: quality(s)[0], target.target_psnr, guess, last, STEPS_PER_DB)
    return guess


def _search(image: np.ndarray, base: Base, target: Target, block: int, guess: int) -> tuple[Candidate | None, int]:
    """The best file on this base with parts (within the budget; the cheapest meeting a quality target)
    and its step index (the next search's guess)."""
    overhead = len(with_parts(base.data, [b"x"])) - 1 - len(base.data)  # version 2's length fields, one part
    budget = target.max_bytes
    if budget is not None and budget - len(base.data) - overhead < enh.part_overhead() + 1:
        return None, guess
    coded: dict[int, tuple[list[bytes], np.ndarray]] = {}
    tried: dict[int, Candidate] = {}

    def parts_of(step: int) -> tuple[list[bytes], np.ndarray]:
        if step not in coded:
            coded[step] = layered(image, base.pixels, step, target.layers, block, target.chroma)
        return coded[step]

    def file_of(step: int) -> Candidate:
        if step not in tried:
            found, _, quality = best_kind(image, *parts_of(step), target.metric)
            tried[step] = Candidate(base.bits, with_parts(base.data, found), *quality)
        return tried[step]

    def fits(step: int) -> bool:  # the size alone: with only a budget, quality is measured at the chosen step only
        return budget is None or len(with_parts(base.data, parts_of(step)[0])) <= budget

    last = STEP_LEVELS - 1
    if not target.quality_target:  # the finest step that fits (steps grow coarser with the index)
        start = guess if budget is None else sized_guess(
            lambda s: len(with_parts(base.data, parts_of(s)[0])) - len(base.data), budget - len(base.data), guess, last)
        step = first_true(fits, 0, last, start)
        return (file_of(step), step) if step <= last else (None, guess)
    # quality targets: steps run from "too large" through "meets the targets" to "too poor"; the last that meets them
    start = quality_guess(lambda s: (file_of(s).psnr, file_of(s).ssim), target, guess, last)
    poor = first_true(lambda s: fits(s) and not target.good(file_of(s).psnr, file_of(s).ssim), 0, last, start)
    step = poor - 1
    if step >= 0 and fits(step) and target.good(file_of(step).psnr, file_of(step).ssim):
        return file_of(step), step
    if poor <= last:  # no step meets them: the finest step that fits, this base's best try (steps finer are too large)
        return file_of(poor), poor
    return None, guess


def choose_enhanced(image: np.ndarray, bases: Sequence[Base], target: Target, enhance: bool = True,
                    part_bits: Collection[int] | None = None) -> Choice:
    """Per image: every base alone and (unless not enhance) every searched base whose bits are in
    `part_bits` (None: every base) with its best parts; the cheapest meeting the quality targets (within the
    budget), or with only a budget the best `metric` within it."""
    candidates, guess, origin = [], BLIND, {}
    for base in bases:
        psnr, ssim = _quality(image, base.pixels)
        candidates.append(Candidate(base.bits, base.data, psnr, ssim))
        if enhance and base.searched and (part_bits is None or base.bits in part_bits):
            found, guess = _search(image, base, target, target.block, guess)
            if found is not None:
                candidates.append(found)
                origin[found.data] = (base, guess)  # (two bases may share a bit depth: SSIM- and parts-fitted)
    choice = _pick(candidates, target)
    if enhance and target.second_block and choice.candidate.data in origin:
        base, step = origin[choice.candidate.data]
        found, _ = _search(image, base, target, target.second_block, step)
        if found is not None:
            choice = _pick([*candidates, found], target)
    return choice


def _order(metric: str) -> Callable[[float, float], tuple[float, float]]:
    """(PSNR, SSIM) -> the key that ranks by `metric` first and the other metric second."""
    return (lambda psnr, ssim: (ssim, psnr)) if metric == "ssim" else (lambda psnr, ssim: (psnr, ssim))


def _score(target: Target, missed: bool = False) -> Callable[[Candidate], tuple[float, float]]:
    """How candidates rank: by `metric`; for a missed quality target (`missed`), by the one metric targeted when
    only one is, so that the file kept is the closest to it."""
    metric = target.metric
    if missed and (target.target_ssim is None) != (target.target_psnr is None):
        metric = "ssim" if target.target_ssim is not None else "psnr"
    order = _order(metric)
    return lambda c: order(c.psnr, c.ssim)


def _pick(candidates: list[Candidate], target: Target) -> Choice:
    fitting = [c for c in candidates if target.max_bytes is None or c.size <= target.max_bytes]
    if not fitting:
        smallest = min(candidates, key=lambda c: c.size)
        return Choice(smallest, False, f"smallest file is {smallest.size} bytes > --max-bytes {target.max_bytes}")
    score = _score(target)
    if target.quality_target:
        meeting = [c for c in fitting if target.good(c.psnr, c.ssim)]
        if meeting:
            return Choice(min(meeting, key=lambda c: (c.size, [-v for v in score(c)])), True)
        best = max(fitting, key=_score(target, missed=True))
        wanted = " and ".join(f"{name} {v}" for name, v in (("SSIM", target.target_ssim), ("PSNR", target.target_psnr))
                              if v is not None)
        return Choice(best, False, f"best reached is SSIM {best.ssim:.4f}, PSNR {best.psnr:.2f} dB < target {wanted}")
    return Choice(max(fitting, key=lambda c: (*score(c), -c.size)), True)
