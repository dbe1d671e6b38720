"""bf16 fitting: chosen automatically only where it is native, close to fp32 in quality, and never
changing decoding (files decode to the same pixels whatever precision fitted them)."""
import numpy as np
import pytest
import torch
from conftest import TINY, tiny_nets

from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.inversion.invert import FastGenerator, InversionConfig, invert
from invcomp.metrics import ssim01
from invcomp.models.device import bf16_native, pick_precision

NATIVE = bf16_native(torch.device("cpu"))


def test_auto_is_bf16_exactly_where_native():
    cpu = torch.device("cpu")
    assert pick_precision("auto", cpu) == (torch.bfloat16 if NATIVE else torch.float32)
    assert pick_precision("fp32", cpu) == torch.float32 and pick_precision("bf16", cpu) == torch.bfloat16
    with pytest.raises(InvcompError, match="unknown precision"):
        pick_precision("fp16", cpu)


def test_bf16_generator_is_close_to_fp32():
    g, _ = tiny_nets(0)
    z = torch.randn(16, TINY.latent_dim, generator=torch.Generator().manual_seed(1))
    fp32, bf16 = FastGenerator(g)(z), FastGenerator(g, torch.bfloat16)(z)
    assert bf16.dtype == torch.float32  # images leave the generator in fp32: the loss stays fp32
    assert (fp32 - bf16).abs().max() < 0.05 and not torch.equal(fp32, bf16)


@pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16 (avx512_bf16 / amx_bf16): bf16 is not used here")
def test_bf16_fit_matches_fp32_quality():
    g, e = tiny_nets(0)
    with torch.no_grad():  # targets the generator can draw, so quality differences are meaningful
        targets = (g(torch.randn(24, TINY.latent_dim, generator=torch.Generator().manual_seed(2)).clamp(-2, 2)) + 1) / 2
    cfg = InversionConfig(bits=5, steps=40)
    quality = {}
    for dtype in (torch.float32, torch.bfloat16):
        codes = invert(g, targets, cfg, e, dtype=dtype).codes
        with torch.no_grad():
            z = codes.float() * (2 * TINY.latent_range / 31) - TINY.latent_range
            quality[dtype] = ssim01((g(z) + 1) / 2, targets).mean().item()
    assert abs(quality[torch.bfloat16] - quality[torch.float32]) < 0.01


def test_files_decode_the_same_whatever_precision_fitted_them(tiny_model, rng_image):
    fp32, bf16 = Codec(tiny_model, "cpu", "fp32"), Codec(tiny_model, "cpu", "bf16")
    cfg = fp32.config(steps=6)
    for data in (fp32.compress(rng_image, cfg), bf16.compress(rng_image, cfg)):
        assert np.array_equal(fp32.decompress(data), bf16.decompress(data))
