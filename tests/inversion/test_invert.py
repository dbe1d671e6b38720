import pytest
import torch
from conftest import TINY, tiny_nets

from invcomp.errors import InvcompError
from invcomp.inversion.invert import InversionConfig, image_loss, invert
from invcomp.inversion.quantize import dequantize


def _targets(n=3):
    torch.manual_seed(5)
    return torch.rand(n, 3, 32, 32)


def test_inversion_lowers_loss():
    from invcomp.models.nets import Generator

    torch.manual_seed(0)
    g = Generator(TINY).eval().requires_grad_(False)  # PyTorch's default init: a non-flat G
    e = None
    x = _targets()
    cfg0 = InversionConfig(bits=8, steps=0, restarts=1)
    cfg = InversionConfig(bits=8, steps=60, restarts=1, lr=0.1)
    before = invert(g, x, cfg0, e).loss
    after = invert(g, x, cfg, e).loss
    assert (after < before).all()


def test_restarts_keep_best_and_result_is_consistent():
    g, e = tiny_nets(0)
    x = _targets()
    one = invert(g, x, InversionConfig(bits=6, steps=20, restarts=1), e)
    four = invert(g, x, InversionConfig(bits=6, steps=20, restarts=4), e)
    # restart 0 is the same run in both cases, so the best of four can only be better or equal
    assert (four.loss <= one.loss + 1e-6).all()
    zq = dequantize(four.codes, 6, g.cfg.latent_range)
    with torch.no_grad():
        recomputed = image_loss(g(zq), x, zq, InversionConfig(bits=6))
    assert torch.allclose(recomputed, four.loss, atol=1e-5)


def test_deterministic_on_cpu():
    g, e = tiny_nets(0)
    x = _targets()
    cfg = InversionConfig(bits=4, steps=15, restarts=2, seed=3)
    assert torch.equal(invert(g, x, cfg, e).codes, invert(g, x, cfg, e).codes)


def test_invert_rates_equals_separate_runs():
    from invcomp.inversion.invert import invert_rates

    g, e = tiny_nets(0)
    x = _targets()
    cfg = InversionConfig(bits=4, steps=20, restarts=2, seed=1)
    together = invert_rates(g, x, cfg, (2, 4, 6), e)
    assert sorted(together) == [2, 4, 6]
    for b in (2, 4, 6):
        alone = invert(g, x, InversionConfig(bits=b, steps=20, restarts=2, seed=1), e)
        assert torch.equal(together[b].codes, alone.codes)
        assert torch.allclose(together[b].loss, alone.loss, atol=1e-6)



def test_branches_apply_their_own_pixel_weight():
    """Tails with their own mse_weight: with the whole run in the tail (qat_fraction 1) each branch is
    exactly a run of its own with that weight, and a branch's loss is reported under its weight."""
    from invcomp.inversion.invert import invert_branches

    torch.manual_seed(0)
    from invcomp.models.nets import Generator

    g = Generator(TINY).eval().requires_grad_(False)  # PyTorch's default init: a non-flat G
    x = _targets()
    cfg = InversionConfig(bits=4, steps=20, restarts=2, seed=1, qat_fraction=1.0, lr=0.1)
    found = invert_branches(g, x, cfg, [(4, 1.0), (4, 1000.0), (6, 1000.0)])
    for (b, w), got in zip([(4, 1.0), (4, 1000.0), (6, 1000.0)], found):
        alone = invert(g, x, InversionConfig(bits=b, steps=20, restarts=2, seed=1, qat_fraction=1.0, lr=0.1, mse_weight=w))
        assert torch.equal(got.codes, alone.codes)
        assert torch.allclose(got.loss, alone.loss, atol=1e-5)
    assert not torch.equal(found[0].codes, found[1].codes)  # the weight changed the search
    with pytest.raises(InvcompError, match="default loss"):
        invert_branches(g, x, cfg, [(4, 5.0)], loss_fn=image_loss)

@pytest.mark.slow
def test_latent_adam_matches_torch_adam_to_the_bit():
    from invcomp.inversion.invert import LatentAdam

    torch.manual_seed(0)
    start = torch.randn(6, 5)
    target = torch.randn(6, 5)
    ours_z, ref_z = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    ours, ref = LatentAdam(ours_z), torch.optim.Adam([ref_z], lr=0.05)
    for i in range(25):
        lr = 0.05 * (i + 1) / 25
        for g in ref.param_groups:
            g["lr"] = lr
        for z in (ours_z, ref_z):
            z.grad = None
            ((z - target) ** 3).abs().sum().backward()
        ours.step(lr)
        ref.step()
        assert torch.equal(ours_z, ref_z)
