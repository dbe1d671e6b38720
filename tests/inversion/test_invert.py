from dataclasses import replace

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


def test_keep_skips_tails_and_leaves_the_others_unchanged():
    """keep sees the shared run's latents (restarts x N x latent) and names the tails to run: those run give
    exactly the files they give with every tail run; the others are None."""
    from invcomp.inversion.invert import invert_branches
    from invcomp.models.nets import Generator

    torch.manual_seed(0)
    g = Generator(TINY).eval().requires_grad_(False)
    x = _targets()
    cfg = InversionConfig(bits=3, steps=20, restarts=2, seed=1, lr=0.1, prior_weight=0.2)
    branches = [(2, 1.0), (4, 1.0), (4, 100.0), (6, 1.0, 0.0)]
    every = invert_branches(g, x, cfg, branches)
    shapes = []
    some = invert_branches(g, x, cfg, branches, keep=lambda z: shapes.append(tuple(z.shape)) or [False, True, False, True])
    assert shapes == [(2, len(x), TINY.latent_dim)]
    assert some[0] is None and some[2] is None
    for i in (1, 3):
        assert torch.equal(some[i].codes, every[i].codes)
    one = invert_branches(g, x, cfg, branches, keep=lambda z: [False, False, True, False])
    assert torch.equal(one[2].codes, every[2].codes) and one.count(None) == 3
    assert invert_branches(g, x, cfg, branches, keep=lambda z: [False] * 4) == [None] * 4
    with pytest.raises(InvcompError, match="each of the 4 branches"):
        invert_branches(g, x, cfg, branches, keep=lambda z: [True])


def test_a_branch_with_its_own_prior_weight_is_the_tail_a_schedule_gives():
    """(bits, mse_weight, prior_weight): the tail under that prior weight, exactly the file a config whose
    schedule gives that depth the weight fits (the shared run keeps cfg.prior_weight); the weight matters."""
    from invcomp.inversion.invert import invert_branches
    from invcomp.models.nets import Generator

    torch.manual_seed(0)
    g = Generator(TINY).eval().requires_grad_(False)
    x = _targets()
    cfg = InversionConfig(bits=3, steps=20, restarts=2, seed=1, lr=0.1, prior_weight=0.5)
    plain, free = invert_branches(g, x, cfg, [(3, 1.0), (3, 1.0, 0.0)])
    assert torch.equal(plain.codes, invert(g, x, cfg).codes)
    assert torch.equal(free.codes, invert(g, x, replace(cfg, prior_weights=((3, 0.0),))).codes)
    assert not torch.equal(plain.codes, free.codes)
    with pytest.raises(InvcompError, match=">= 0"):
        invert_branches(g, x, cfg, [(3, 1.0, -1.0)])
    with pytest.raises(InvcompError, match="default loss"):
        invert_branches(g, x, cfg, [(3, 1.0, 0.0)], loss_fn=image_loss)

def test_a_prior_schedule_weights_each_depths_tail_and_keeps_depths_independent():
    """With qat_fraction 1 the whole run is the tail: each depth is a run under its own prior weight,
    the same whether the depths run together or alone; depths outside the schedule keep prior_weight."""
    from invcomp.inversion.invert import invert_rates
    from invcomp.models.nets import Generator

    torch.manual_seed(0)
    g = Generator(TINY).eval().requires_grad_(False)
    x = _targets()
    base = dict(steps=20, restarts=2, seed=1, qat_fraction=1.0, lr=0.1, prior_weight=0.0)
    cfg = InversionConfig(bits=4, prior_weights=((6, 2.0),), **base)
    together = invert_rates(g, x, cfg, (4, 6))
    for b, weight in ((4, 0.0), (6, 2.0)):
        assert cfg.prior_at(b) == weight
        alone = invert(g, x, InversionConfig(bits=b, **{**base, "prior_weight": weight}))
        assert torch.equal(together[b].codes, alone.codes)
        assert torch.allclose(together[b].loss, alone.loss, atol=1e-5)
    plain = invert(g, x, InversionConfig(bits=6, **base))
    assert dequantize(together[6].codes, 6, 3.0).pow(2).mean() < dequantize(plain.codes, 6, 3.0).pow(2).mean()
    # a shorter tail: the run before it is shared and uses prior_weight, so depths stay independent
    cfg = InversionConfig(bits=4, prior_weights=((6, 2.0),), **{**base, "qat_fraction": 0.3})
    together = invert_rates(g, x, cfg, (4, 6))
    assert torch.equal(together[6].codes, invert(g, x, replace(cfg, bits=6)).codes)


def test_a_prior_schedule_is_checked_and_normalised():
    cfg = InversionConfig(prior_weights=[[5, 0], [3, 0.04]])  # as an archive header gives it back
    assert cfg.prior_weights == ((3, 0.04), (5, 0.0)) and cfg.prior_at(5) == 0.0 and cfg.prior_at(4) == 0.02
    assert "prior_weights" not in InversionConfig().settings()
    assert InversionConfig(**cfg.settings()) == cfg
    for bad in ([[3]], [["x", 1]], [[3, -1]]):
        with pytest.raises(InvcompError, match="prior"):
            InversionConfig(prior_weights=bad)
    with pytest.raises(InvcompError, match="prior"):
        InversionConfig(prior_weight=-0.1)


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
