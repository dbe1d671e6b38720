"""What a fit is asked for: `FitOptions` (the inversion settings, a per-image target, a preset's part, kept
pixels) and `fit_options`, which builds them from the options `fit` takes (the API's and the command's) with
the command's checks."""
from __future__ import annotations

from dataclasses import dataclass, replace

from invcomp.enhance.choose import Target
from invcomp.errors import InvcompError
from invcomp.inversion.invert import InversionConfig
from invcomp.masks.inpaint import MaskOptions


@dataclass(frozen=True)
class FitOptions:
    """How `Codec.choose_files` chooses each file: the inversion settings, an optional per-image target
    (the cheapest file with SSIM >= target_ssim and PSNR >= target_psnr, the best `metric` within
    max_bytes; base bits and enhancement parts chosen jointly unless enhance is False), a preset's
    fixed enhancement step, and optional kept pixels (masks). Targets and masks do not combine yet."""

    inversion: InversionConfig
    target_ssim: float | None = None
    max_bytes: int | None = None
    mask: MaskOptions | None = None
    target_psnr: float | None = None
    metric: str = "ssim"
    layers: int = 1  # enhancement parts per file (each twice as fine as the one before; `trim` cuts between them)
    enhance: bool = True
    part_step: int | None = None  # quality presets above the base's: one part at this step index
    # a target's base bit depths (None: every operating depth). An archive codes all its images at one depth,
    # so `pack` gives only its own: its bases are then that depth fitted each way, all searched for parts.
    depths: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        Target(self.max_bytes, self.target_ssim, self.target_psnr, self.metric, self.layers)  # checks the values
        if self.depths is not None:
            object.__setattr__(self, "depths", tuple(dict.fromkeys(int(b) for b in self.depths)))
            if not self.depths:
                raise InvcompError("a target needs at least one base bit depth")
            for b in self.depths:
                replace(self.inversion, bits=b)  # validates the range
        if self.targeted and self.mask is not None:
            raise InvcompError("--target-ssim/--target-psnr/--max-bytes cannot be combined with masks yet")

    @property
    def target(self) -> Target:
        return Target(self.max_bytes, self.target_ssim, self.target_psnr, self.metric, self.layers)

    @property
    def targeted(self) -> bool:
        return self.target_ssim is not None or self.max_bytes is not None or self.target_psnr is not None



def fit_options(config: InversionConfig, quality: int | None = None, target_ssim: float | None = None,
                max_bytes: int | None = None, mask_scheme: str | None = None, keep: float = 0.05, user_mask: bool = False,
                drop_outside: bool = False, assist_bits: int = 4, loss: str = "ssim+mse",
                bits_given: bool = False, target_psnr: float | None = None, metric: str = "ssim", layers: int = 1,
                enhance: bool = True) -> FitOptions:
    """FitOptions from the rate, target and mask options of `fit` (the API's and the command's), with
    the command's checks: one of bits / quality / targets, masks not combined with targets."""
    from invcomp.enhance.presets import preset
    from invcomp.masks.inpaint import mask_options

    targeted = target_ssim is not None or max_bytes is not None or target_psnr is not None
    if bits_given + (quality is not None) + targeted > 1:
        raise InvcompError("give at most one of --bits, --quality, and --target-ssim/--target-psnr/--max-bytes")
    step = None
    if quality is not None:
        bits, step = preset(quality)
        config = replace(config, bits=bits)
    if (step is not None or layers > 1) and (mask_scheme is not None or user_mask):
        raise InvcompError("enhancement parts (--quality above the base presets, --layers) cannot be combined with masks yet")
    masks = mask_options(mask_scheme, keep, user_mask, drop_outside, assist_bits, loss, config.seed)
    return FitOptions(config, target_ssim, max_bytes, masks, target_psnr, metric, layers, enhance, step)
