"""The bench's SSIM and MS-SSIM are pytorch-msssim's, computed without its private functions."""
import ast
import inspect

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim, ssim

from invcomp.bench import msssim


def _pair(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen)
    return x, (x + 0.1 * torch.randn(shape, generator=gen)).clamp(0, 1)


@pytest.mark.parametrize("win_size", [3, 7, 11])
@pytest.mark.parametrize("shape", [(4, 3, 64, 64), (2, 3, 32, 47), (3, 1, 16, 16)])
def test_ssim_per_image_equals_pytorch_msssim(shape, win_size):
    x, y = _pair(shape)
    ref = ssim(x, y, data_range=1.0, size_average=False, win_size=win_size)
    assert torch.allclose(msssim.ssim_per_image(x, y, win_size), ref, atol=1e-6, rtol=0)


def test_ms_ssim_equals_pytorch_msssim_at_5_and_4_scales():
    x, y = _pair((4, 3, 64, 64), seed=1)
    five = msssim.ms_ssim_levels(x, y, 3, msssim.MSSSIM_WEIGHTS)
    ref5 = ms_ssim(x, y, data_range=1.0, size_average=False, win_size=3)
    assert torch.allclose(five, ref5, atol=1e-6, rtol=0)
    # 4 scales (the weights used at 32 px): ms_ssim runs as many scales as weights it is given
    win, weights = msssim.msssim_settings(32)
    assert win == 3 and len(weights) == 4 and abs(sum(weights) - 1) < 1e-9
    four = msssim.ms_ssim_levels(x, y, 3, weights)
    ref4 = ms_ssim(x, y, data_range=1.0, size_average=False, win_size=3, weights=list(weights))
    assert torch.allclose(four, ref4, atol=1e-6, rtol=0)
    assert not torch.allclose(four, five, atol=1e-4)  # the scale count matters: the test can tell them apart


def test_msssim_per_image_on_uint8_batches():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    x, y = (torch.from_numpy(v).permute(0, 3, 1, 2).float() / 255 for v in (a, b))
    ref = ms_ssim(x, y, data_range=1.0, size_average=False, win_size=3).numpy()
    assert np.allclose(msssim.msssim_per_image(a, b), ref, atol=1e-6, rtol=0)
    assert np.isfinite(msssim.msssim_per_image(a[:, :32, :32], b[:, :32, :32])).all()  # 4 scales at 32 px
    assert np.isnan(msssim.msssim_per_image(a[:, :16, :16], b[:, :16, :16])).all()  # undefined below 32 px


def test_window_and_size_errors():
    with pytest.raises(ValueError):
        msssim.gaussian_window(4)
    with pytest.raises(ValueError):
        msssim.ssim_per_image(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), 11)
    with pytest.raises(ValueError):
        msssim.ssim_per_image(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 31), 3)


def test_no_private_pytorch_msssim_import():
    tree = ast.parse(inspect.getsource(msssim))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("pytorch_msssim")]
