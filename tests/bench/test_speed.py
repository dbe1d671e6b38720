"""The fast inversion path computes the same things as the plain one; the speed bench is well formed."""
import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY, tiny_nets
from pytorch_msssim import ssim as reference_ssim

from invcomp import InvcompError, compress, decompress
from invcomp.bench.speed import run_speed_bench, speed_markdown, write_speed_report
from invcomp.inversion.invert import FastGenerator, InversionConfig, invert
from invcomp.inversion.quantize import quantize
from invcomp.metrics import SSIMTarget, ssim01
from invcomp.models.nets import Generator, NetConfig


def _pairs(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen)
    similar = (x + 0.1 * torch.randn(shape, generator=gen)).clamp(0, 1)
    unrelated = torch.rand(shape, generator=gen)
    flat = torch.full(shape, 0.5)
    return [(x, similar), (x, unrelated), (flat, x), (x, x)]


@pytest.mark.parametrize("shape", [(4, 3, 32, 32), (2, 3, 64, 64), (3, 1, 11, 20)])
def test_fused_ssim_equals_pytorch_msssim(shape):
    for i, (x, y) in enumerate(_pairs(shape, 7)):
        ref = reference_ssim(x, y, data_range=1.0, size_average=False, win_size=11)
        assert torch.allclose(ssim01(x, y), ref, atol=1e-5, rtol=0), i
        assert torch.allclose(SSIMTarget(y)(x), ref, atol=1e-5, rtol=0), i


def test_fused_ssim_gradient_equals_pytorch_msssim():
    x, y = _pairs((3, 3, 32, 32), 3)[0]
    a = x.clone().requires_grad_(True)
    reference_ssim(a, y, data_range=1.0, size_average=False).sum().backward()
    b = x.clone().requires_grad_(True)
    SSIMTarget(y)(b).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-7, rtol=1e-4)


def test_ssim_rejects_mismatched_or_tiny_images():
    with pytest.raises(ValueError):
        ssim01(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 31))
    with pytest.raises(ValueError):
        ssim01(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def _generator_with_batch_stats(cfg: NetConfig) -> Generator:
    """A generator whose batch norms have non-trivial running statistics (so folding matters)."""
    g, _ = tiny_nets(2, cfg)
    gen = torch.Generator().manual_seed(4)
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=gen))
    return g.eval()


@pytest.mark.parametrize("cfg", [TINY, NetConfig(resolution=64, latent_dim=8, width=8)])
def test_fast_generator_equals_generator(cfg):
    g = _generator_with_batch_stats(cfg)
    fast = FastGenerator(g)
    assert fast.layers is not None  # the folded path is the one under test
    z = torch.randn(5, cfg.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(fast(z), g(z), atol=1e-5, rtol=0)
    g.train()  # batch statistics: the generator is used as it is
    assert FastGenerator(g).layers is None


def test_inversion_computes_no_weight_gradients():
    g, e = tiny_nets(0)  # parameters still require grad here
    assert all(p.requires_grad for p in g.parameters())
    invert(g, torch.rand(2, 3, 32, 32), InversionConfig(steps=5), e)
    assert all(p.grad is None for p in g.parameters())
    assert all(p.grad is None for p in e.parameters())


def test_encoder_start_is_used_and_both_starts_give_files_that_decode(tiny_model, rng_image):
    x = torch.from_numpy(rng_image).permute(2, 0, 1)[None].float() / 255
    zero = invert(tiny_model.generator, x, InversionConfig(bits=5, steps=0), tiny_model.encoder)
    with torch.no_grad():
        expected = quantize(tiny_model.encoder(x * 2 - 1), 5, TINY.latent_range)
    assert torch.equal(zero.codes, expected)
    files = {}
    for use_encoder in (True, False):
        files[use_encoder] = compress(rng_image, model=tiny_model, device="cpu", steps=8, use_encoder=use_encoder)
        pixels = decompress(files[use_encoder], model=tiny_model, device="cpu")
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    assert files[True] != files[False]  # different starts, different latents


def test_speed_settings_do_not_change_decoded_output(tiny_model, rng_image):
    data = compress(rng_image, model=tiny_model, device="cpu", steps=6)
    threads = torch.get_num_threads()
    decoded = []
    try:
        for n in (1, 2, 1):
            torch.set_num_threads(n)
            decoded.append(decompress(data, model=tiny_model, device="cpu"))
            # an inversion in between (channels_last, folded weights) leaves the generator as it was
            invert(tiny_model.generator, torch.rand(3, 3, 32, 32), InversionConfig(steps=3), tiny_model.encoder)
    finally:
        torch.set_num_threads(threads)
    assert all(np.array_equal(decoded[0], d) for d in decoded[1:])


def _tiny_generator_flops(cfg: NetConfig) -> int:
    """Forward FLOPs of the DCGAN generator (2 x MACs of each transposed convolution)."""
    ch = cfg.width * 2 ** (cfg.n_up - 1)
    flops, size = 2 * cfg.latent_dim * ch * 16, 4
    for _ in range(cfg.n_up - 1):
        flops += 2 * ch * (ch // 2) * 16 * size * size
        ch, size = ch // 2, size * 2
    return flops + 2 * ch * 3 * 16 * size * size


def test_speed_bench_on_tiny_model_writes_well_formed_json(tiny_model, tmp_path):
    seen = []
    report = run_speed_bench([tiny_model], [1, 3], "cpu", steps=5, progress=lambda d, t: seen.append((d, t)),
                             repeats=2, warmup=1, ceiling_size=256)
    assert seen == [(i, 4) for i in range(1, 5)]
    (entry,) = report["models"]
    assert entry["model"] == "tiny" and [r["batch"] for r in entry["rows"]] == [1, 3]
    # forward + input-gradient backward of G: twice its forward, exactly
    assert entry["generator_flops"] == 2 * _tiny_generator_flops(TINY)
    assert entry["loss_flops"] > 0
    assert entry["flops_per_image_step"] == entry["generator_flops"] + entry["loss_flops"]
    assert report["ceiling_gflops"] > 0 and report["threads"] == torch.get_num_threads()
    for r in entry["rows"]:
        assert r["image_steps_per_s"] > 0 and math.isfinite(r["image_steps_per_s"])
        assert r["image_steps_per_s"] >= r["image_steps_per_s_median"]
        assert r["gflops"] == pytest.approx(r["image_steps_per_s"] * entry["flops_per_image_step"] / 1e9)
        assert r["ratio"] == pytest.approx(r["gflops"] / report["ceiling_gflops"])
    paths = write_speed_report(report, tmp_path / "results")
    assert [p.name for p in paths] == ["speed_cpu.json", "speed_cpu.md"]
    assert json.loads(paths[0].read_text()) == report
    table = paths[1].read_text()
    assert table == speed_markdown(report) and table.count("| tiny |") == 2


def test_speed_bench_rejects_bad_settings(tiny_model):
    with pytest.raises(InvcompError):
        run_speed_bench([tiny_model], [1], "cpu", steps=2)
    with pytest.raises(InvcompError):  # the default 3 warm-up steps would leave no timed step
        run_speed_bench([tiny_model], [1], "cpu", steps=4)
    with pytest.raises(InvcompError):
        run_speed_bench([tiny_model], [0], "cpu", steps=5)
    with pytest.raises(InvcompError):
        run_speed_bench([], [1], "cpu", steps=5)
