"""Enhancement parts: the residual transform, parts, version 2 files (split, join, cut, trim) and the
joint choice of base and parts."""
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from invcomp.cli import app
from invcomp.codec import Codec, compress, decompress
from invcomp.enhance import parts, residual
from invcomp.enhance.choose import Base, Target, best_kind, choose_enhanced, layered
from invcomp.errors import InvcompError
from invcomp.formats import icz
from invcomp.metrics import image_quality

runner = CliRunner()


def _pair(seed=0, noise=25.0):
    """A smooth target and a noisy 'base picture' of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    target = np.stack([128 + 90 * np.sin(xx / 5 + c) * np.cos(yy / 7) for c in range(3)], -1).clip(0, 255).astype(np.uint8)
    base = (target + rng.normal(0, noise, target.shape)).clip(0, 255).astype(np.uint8)
    return target, base


def _psnr(a, b):
    return float(image_quality(a[None], b[None])[0][0])


def test_finest_step_is_near_lossless_and_bytes_fall_with_the_step():
    target, base = _pair()
    sizes = []
    for step in (0, 16, 32, 48, 64):
        part, recon = parts.encode_part(target, base.astype(np.float64), step)
        data = part.to_bytes()
        sizes.append(len(data))
        out = parts.apply_parts(base, [data])
        assert np.array_equal(out, residual.to_pixels(recon))  # what the encoder measured is what decodes
        if step == 0:  # near-lossless: above 50 dB, no pixel off by more than 3 levels
            assert _psnr(target, out) > 50 and np.abs(out.astype(int) - target).max() <= 3
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0] / 10


@pytest.mark.parametrize("block", [4, 8])
def test_transform_inverts(block):
    rng = np.random.default_rng(1)
    r = rng.normal(0, 30, (32, 32, 3))
    coefs = residual.forward(r, block, 0, 0)
    back = residual.inverse(coefs, block, 0, 0)
    err = back - r  # step 0.5 (chroma too): quantization error only, at most 0.7 step per coefficient
    assert np.sqrt((err**2).mean()) < 0.3 and np.abs(err).max() < 2


def test_part_bytes_layout_and_refusals():
    target, base = _pair()
    part, _ = parts.encode_part(target, base.astype(np.float64), 40, block=4, chroma=6)
    data = part.to_bytes()
    assert data[:4] == bytes([0, 2, 40, 6]) and len(data) == 4 + len(part.coded) + 1
    assert parts.parse_part(data) == part
    for bad, msg in ((bytes([2]) + data[1:], "kind 2"), (data[:1] + bytes([5]) + data[2:], "parameters"),
                     (data[:-1] + bytes([data[-1] ^ 1]), "check byte"), (data[:4], "too short")):
        with pytest.raises(InvcompError, match=msg):
            parts.parse_part(bad)
    with pytest.raises(InvcompError, match="blocks"):
        parts.encode_part(target[:30, :30], base[:30, :30].astype(np.float64), 40)


def test_version_2_layout_cut_points_and_version_1_unchanged(tiny_model, rng_image):
    codec = Codec(tiny_model, "cpu")
    plain = codec.compress_batch([rng_image], codec.config(steps=2))[0]
    assert plain[2] == 1
    header, base, found = icz.split_file(plain)
    assert found == [] and icz.join_file(header, base, []) == plain
    p1, p2 = b"\x00" * 3, b"\x01" * 200
    two = icz.with_parts(plain, [p1, p2])
    head_len = icz.unpack_header(plain)[1]
    assert two[:2] == b"IC" and two[2] == 2 and two[3:head_len] == plain[3:head_len]
    assert two[head_len:] == bytes([len(base)]) + base + bytes([3]) + p1 + b"\xc8\x01" + p2
    cut_after_base = head_len + 1 + len(base)
    assert icz.split_file(two[:cut_after_base])[2] == []
    assert icz.split_file(two[: cut_after_base + 4])[2] == [p1]
    with pytest.raises(InvcompError, match="part 2 incomplete"):
        icz.split_file(two[:-1])
    with pytest.raises(InvcompError, match="base payload incomplete"):
        icz.split_file(two[: cut_after_base - 1])
    assert icz.with_parts(two, []) == plain  # the base alone is the version 1 file
    with pytest.raises(InvcompError, match="at most 16"):
        icz.with_parts(plain, [b"x"] * 17)


def test_enhanced_files_decode_through_the_codec_and_trim_to_each_part(tiny_model, tmp_path):
    target, _ = _pair()
    codec = Codec(tiny_model, "cpu")
    plain = codec.compress_batch([target], codec.config(steps=2))[0]
    base = codec.decompress(plain)
    found, recon = layered(target, base, 24, 3)
    data = icz.with_parts(plain, found)
    assert np.array_equal(codec.decompress(data), residual.to_pixels(recon))
    quality = [_psnr(target, codec.decompress(icz.with_parts(plain, found[:k]))) for k in range(4)]
    assert quality == sorted(quality) and quality[3] > quality[0] + 10  # each part adds quality
    (tmp_path / "f.icz").write_bytes(data)
    m = tmp_path / "m.pt"
    from invcomp.models.weights import save_weights
    save_weights(m, "generator", tiny_model.generator, tiny_model.config)
    for k, size in ((1, len(icz.with_parts(plain, found[:1]))), (2, len(icz.with_parts(plain, found[:2])))):
        r = runner.invoke(app, ["trim", str(tmp_path / "f.icz"), "-o", str(tmp_path / f"t{k}.icz"), "--max-bytes", str(size)])
        assert r.exit_code == 0, r.output
        assert (tmp_path / f"t{k}.icz").read_bytes() == data[:size]  # trimming = cutting after a part
    r = runner.invoke(app, ["trim", str(tmp_path / "f.icz"), "-o", str(tmp_path / "t0.icz"), "--parts", "0"])
    assert r.exit_code == 0 and (tmp_path / "t0.icz").read_bytes() == plain
    for args, msg in ((["--max-bytes", "3"], "base alone is"), (["--parts", "4"], "--parts must be 0..3"), ([], "one of")):
        r = runner.invoke(app, ["trim", str(tmp_path / "f.icz"), "-o", str(tmp_path / "x.icz"), *args])
        assert r.exit_code != 0 and msg in r.output and not (tmp_path / "x.icz").exists()
    r = runner.invoke(app, ["trim", str(tmp_path / "f.icz"), "-o", str(tmp_path / "f.icz"), "--parts", "1"])
    assert r.exit_code != 0 and "refusing to overwrite" in r.output and (tmp_path / "f.icz").read_bytes() == data
    r = runner.invoke(app, ["info", str(tmp_path / "f.icz"), "--json"])
    assert '"part_bytes": [' in r.output and '"version": 2' in r.output



def test_deblocking_filter_matches_its_definition_and_kind_1_parts_decode_as_the_encoder_saw():
    rng = np.random.default_rng(3)
    recon = rng.normal(128, 20, (32, 32, 3))
    step = 12.0
    want = recon.copy()  # the definition in docs/FORMAT.md, one edge at a time
    for axis in (0, 1):
        for b in range(8, 32, 8):
            at = [(slice(None),) * axis + (k,) for k in (b - 2, b - 1, b, b + 1)]
            p1, p0, q0, q1 = (want[i].copy() for i in at)
            d = np.clip((4 * (q0 - p0) - (q1 - p1)) / 8, -step / 2, step / 2) * (np.abs(q0 - p0) < step)
            want[at[1]], want[at[2]] = p0 + d, q0 - d
    got = residual.deblock(recon, 8, step)
    assert np.array_equal(got, want) and not np.array_equal(got, recon)
    inside = [i for i in range(32) if i % 8 not in (0, 7)]
    assert np.array_equal(got[inside][:, inside], recon[inside][:, inside])  # only pixels beside edges move
    target, base = _pair(noise=30.0)
    plain, decoded = parts.encode_part(target, base.astype(np.float64), 30)
    twin, filtered = parts.deblocked(plain, decoded)
    data = twin.to_bytes()
    assert data[0] == 1 and data[1:] == plain.to_bytes()[1:]  # the same bytes but the kind
    assert parts.parse_part(data) == twin and twin.deblock
    assert np.array_equal(parts.decode_part(twin, base.astype(np.float64)), filtered)
    assert np.array_equal(parts.apply_parts(base, [data]), residual.to_pixels(filtered))


def test_the_choice_takes_the_filter_only_where_it_pays(tiny_model, monkeypatch):
    target, _ = _pair()
    codec = Codec(tiny_model, "cpu")
    cands = codec.compress_candidates([target], config=codec.config(steps=2))[0]
    bases = [Base(c.bits, c.data, codec.decompress(c.data)) for c in cands]
    targets = [Target(max_bytes=budget, metric=metric) for budget in (80, 120, 200, 400) for metric in ("ssim", "psnr")]
    with monkeypatch.context() as m:
        m.setattr(parts, "deblocked", lambda part, decoded: (part, decoded))  # no filter: the twin is the part itself
        without = [choose_enhanced(target, bases, t).candidate for t in targets]
    kinds = set()
    for t, plain in zip(targets, without):
        with_filter = choose_enhanced(target, bases, t).candidate
        assert getattr(with_filter, t.metric) >= getattr(plain, t.metric) - 1e-9
        got = decompress(with_filter.data, tiny_model, "cpu")
        assert abs(_psnr(target, got) - with_filter.psnr) < 1e-6  # the figures are what decoding gives
        if with_filter.data[2] == 2:
            kinds.add(icz.split_file(with_filter.data)[2][0][0])
    assert 1 in kinds  # the filter wins somewhere (and never loses: above)


def test_targets_validate():
    for kw, msg in (({"max_bytes": 0}, "max-bytes"), ({"target_psnr": 0}, "target-psnr"), ({"metric": "mse"}, "metric"),
                    ({"layers": 9}, "layers"), ({"target_ssim": 1.5}, "target-ssim")):
        with pytest.raises(InvcompError, match=msg):
            Target(**kw)


def test_first_true_finds_the_boundary_from_any_guess():
    from invcomp.enhance.choose import first_true

    for lo, hi in ((0, 127), (3, 9), (5, 5)):
        for boundary in range(lo, hi + 2):
            for guess in range(lo - 2, hi + 3):
                probes = []
                pred = lambda s, b=boundary, seen=probes: seen.append(s) or s >= b  # noqa: E731
                assert first_true(pred, lo, hi, guess) == boundary
                assert all(lo <= s <= hi for s in probes) and len(probes) <= 2 * (hi - lo + 1).bit_length() + 1
    probes = []
    assert first_true(lambda s: probes.append(s) or s >= 40, 0, 127, 41) == 40 and len(probes) <= 4  # a near guess


def test_sized_guess_lands_near_the_boundary_and_says_when_nothing_fits():
    from invcomp.enhance.choose import first_true, sized_guess

    for per_halving, floor in ((5, 7), (8, 7), (11, 9)):
        def part_bytes(s, k=per_halving, f=floor):
            return f + int(3000 * 2 ** (-s / k))  # a part's bytes: halving every k indices, down to a floor

        for room in (floor + 1, 20, 60, 200, 900, 5000):
            probes = []
            size = lambda s, seen=probes: seen.append(s) or part_bytes(s)  # noqa: E731
            fits = lambda s, r=room: part_bytes(s) <= r  # noqa: E731
            boundary = first_true(fits, 0, 127, 64)
            start = sized_guess(size, room, 64, 127)
            assert len(probes) <= 3
            if part_bytes(64) > floor and room - floor >= 4:  # (at the floor, or a byte above it, sizes tell little)
                assert abs(start - boundary) <= 2, (per_halving, room, start, boundary)
            assert first_true(fits, 0, 127, start) == boundary
        tight = []
        assert sized_guess(lambda s, seen=tight: seen.append(s) or part_bytes(s), floor - 1, 64, 127) == 127
        assert tight == [127]  # one quick encoding at the coarsest step says that no step fits


def test_the_choice_is_the_same_from_any_start(tiny_model, monkeypatch):
    from invcomp.enhance import choose

    target, _ = _pair(seed=3)
    codec = Codec(tiny_model, "cpu")
    cands = codec.compress_candidates([target], config=codec.config(steps=2))[0]
    bases = [Base(c.bits, c.data, codec.decompress(c.data)) for c in cands]
    targets = [Target(max_bytes=b, metric=m) for b in (40, 90, 250, 600) for m in ("ssim", "psnr")]
    targets += [Target(target_psnr=p) for p in (24, 30, 36)] + [Target(target_ssim=v) for v in (0.8, 0.95)]
    targets += [Target(max_bytes=250, target_psnr=30), Target(target_psnr=30, target_ssim=0.9)]
    targets += [Target(max_bytes=400, layers=3), Target(target_psnr=32, layers=2)]  # parts `trim` can cut between
    sized = [choose_enhanced(target, bases, t).candidate for t in targets]
    monkeypatch.setattr(choose, "sized_guess", lambda part_bytes, room, guess, last: guess)  # release 0.5.4's start
    monkeypatch.setattr(choose, "quality_guess", lambda quality, target, guess, last: guess)
    assert [choose_enhanced(target, bases, t).candidate for t in targets] == sized
    assert len({c.data for c in sized}) > 4  # the settings choose different files


def test_choice_meets_budgets_and_targets(tiny_model):
    target, _ = _pair()
    codec = Codec(tiny_model, "cpu")
    cands = codec.compress_candidates([target], config=codec.config(steps=2))[0]
    bases = [Base(c.bits, c.data, codec.decompress(c.data)) for c in cands]
    base_best = max(_psnr(target, b.pixels) for b in bases)
    sizes = []
    for budget in (60, 150, 400):
        c = choose_enhanced(target, bases, Target(max_bytes=budget, metric="psnr")).candidate
        assert c.size <= budget and abs(_psnr(target, decompress(c.data, tiny_model, "cpu")) - c.psnr) < 1e-6
        sizes.append(c.psnr)
    assert sizes == sorted(sizes) and sizes[-1] > base_best + 5  # quality keeps rising with bytes
    choice = choose_enhanced(target, bases, Target(target_psnr=30))
    assert choice.met and choice.candidate.psnr >= 30
    cheaper = choose_enhanced(target, bases, Target(target_psnr=25)).candidate
    assert cheaper.size < choice.candidate.size
    alone = choose_enhanced(target, bases, Target(target_psnr=30), enhance=False)
    assert not alone.met and alone.candidate.data[2] == 1
    unsearched = [replace(b, searched=False) for b in bases]  # candidates alone: no parts on them
    assert choose_enhanced(target, unsearched, Target(target_psnr=30)).candidate == alone.candidate


def test_a_quality_target_out_of_reach_keeps_the_closest_file(tiny_model):
    """No step meets the target: the file kept is the finest part that fits (the budget, if any), ranked by the
    metric targeted, and the choice says the target was missed."""
    target, _ = _pair()
    codec = Codec(tiny_model, "cpu")
    cands = codec.compress_candidates([target], config=codec.config(steps=2))[0]
    bases = [Base(c.bits, c.data, codec.decompress(c.data)) for c in cands]
    finest = max(choose_enhanced(target, bases, Target(max_bytes=100_000, metric="psnr")).candidate.psnr,
                 choose_enhanced(target, bases, Target(max_bytes=100_000, metric="ssim")).candidate.psnr)
    out_of_reach = choose_enhanced(target, bases, Target(target_psnr=99))
    assert not out_of_reach.met and "PSNR 99" in out_of_reach.reason
    assert out_of_reach.candidate.psnr >= finest - 1e-9 > max(_psnr(target, b.pixels) for b in bases) + 10
    budget = 150  # within a budget: the best PSNR of the files that fit it, as with the budget alone
    within = choose_enhanced(target, bases, Target(max_bytes=budget, target_psnr=99))
    alone = choose_enhanced(target, bases, Target(max_bytes=budget, metric="psnr"))
    assert not within.met and within.candidate.size <= budget and within.candidate.psnr == alone.candidate.psnr
    ssim = choose_enhanced(target, bases, Target(target_ssim=1.0))
    assert not ssim.met and ssim.candidate.ssim >= choose_enhanced(target, bases, Target(target_ssim=0.999)).candidate.ssim



def test_targets_with_parts_also_choose_among_bases_fitted_for_parts(tiny_model, monkeypatch):
    from invcomp.inversion.rate import OPERATING_BITS, PARTS_BITS, PRIORLESS_BITS
    from invcomp.options import FitOptions

    target, _ = _pair()
    codec = Codec(tiny_model, "cpu")
    cfg = codec.config(steps=4)
    cands = codec.compress_candidates([target], OPERATING_BITS, cfg, parts_bits=PARTS_BITS)[0]
    assert [c.bits for c in cands] == [*OPERATING_BITS, *PARTS_BITS]
    plain = codec.compress_candidates([target], OPERATING_BITS, cfg)[0]
    assert [c.data for c in cands[: len(OPERATING_BITS)]] == [c.data for c in plain]  # the tails leave these alone
    fitted = codec._fit_bases([target], OPERATING_BITS, cfg, 64, None, PARTS_BITS)[0]
    for c, pixels in fitted:  # the pictures the part search codes against are what decoding the files gives
        assert np.array_equal(pixels, codec.decompress(c.data))
    seen = []
    real = Codec._fit_bases
    monkeypatch.setattr(Codec, "_fit_bases", lambda self, *a, **k: seen.append(a[5:]) or real(self, *a, **k))
    with_parts = codec.choose_files([target], FitOptions(cfg, max_bytes=150, metric="psnr"))[0]
    without = codec.choose_files([target], FitOptions(cfg, max_bytes=150, metric="psnr", enhance=False))[0]
    # the bases fitted for parts only where parts may follow; the priorless bases for every target; the budget
    assert seen == [(PARTS_BITS, PRIORLESS_BITS, 150), ((), PRIORLESS_BITS, 150)]
    assert with_parts.candidate.size <= 150 and with_parts.candidate.psnr >= without.candidate.psnr


def test_a_budget_skips_the_tails_of_depths_that_cannot_fit_it_and_chooses_the_same_files(tiny_model, monkeypatch):
    """`fit --max-bytes` runs no tail whose depth's file is estimated over budget + TAIL_SLACK (the lowest depth
    always runs); the files it chooses are those every base gives; the estimates track the files' sizes."""
    import torch

    from invcomp.inversion import invert as inv
    from invcomp.inversion.quantize import dequantize
    from invcomp.inversion.rate import OPERATING_BITS, PARTS_BITS, PRIORLESS_BITS, PRIORLESS_ROOM
    from invcomp.options import FitOptions

    target, _ = _pair()
    codec = Codec(tiny_model, "cpu")
    cfg = codec.config(steps=6, prior_weight=0.1)
    every = codec._fit_bases([target], OPERATING_BITS, cfg, 64, None, PARTS_BITS, PRIORLESS_BITS)[0]
    branches = codec.branches(OPERATING_BITS, cfg, PARTS_BITS, PRIORLESS_BITS)
    sizes = [c.size for c, _ in every]  # per branch
    fitted = dict(zip(OPERATING_BITS, sizes))  # the SSIM-fitted depths'
    r = tiny_model.config.latent_range
    for (b, *_), (c, _) in zip(branches, every):  # the estimate of a file's size from its latent: within 2 bytes
        estimate = codec.estimated_sizes(dequantize(torch.as_tensor(codec.decode(c.data)[1])[None], b, r), b)[0]
        assert c.size - 2 <= estimate <= c.size + 2
    kept = []
    real = inv.invert_branches

    def spy(*a, keep=None, **k):
        return real(*a, keep=lambda z: kept.append(keep(z)) or kept[-1], **k)
    monkeypatch.setattr("invcomp.codec.invert_branches", spy)
    searched = len(OPERATING_BITS) + len(PARTS_BITS)
    budgets = (3, fitted[2] + 1, fitted[3] + 2, fitted[5] + 30, 10_000)  # 3 bytes: nothing fits
    for budget in budgets:
        for metric in ("ssim", "psnr"):
            options = FitOptions(cfg, max_bytes=budget, metric=metric)
            got = codec.choose_files([target], options)[0]
            want = choose_enhanced(target, [Base(c.bits, c.data, d, j < searched) for j, (c, d) in enumerate(every)],
                                   options.target, True, PARTS_BITS)
            assert got.candidate == want.candidate and got.met == want.met
    runs = kept[::2]  # one per budget (each ran for both metrics)
    assert runs[0] == [True] + [False] * (len(branches) - 1)  # only the lowest depth, the fallback
    priorless = [len(b) == 3 for b in branches]
    assert any(priorless) and runs[-1] == [not p for p in priorless]  # ample room: every tail but the priorless
    for run, budget in zip(runs, budgets):  # no file that fits was skipped, but priorless ones with room beside them
        assert all(ran or size > budget or (p and size + PRIORLESS_ROOM <= budget)
                   for ran, size, p in zip(run, sizes, priorless))
    assert runs[1][priorless.index(True)]  # a budget 1 B above the 2-bit file: too tight for a part, the tail runs


def test_priorless_bases_are_the_files_of_a_schedule_without_the_prior_at_that_depth(tiny_model):
    from invcomp.inversion.rate import OPERATING_BITS, PRIORLESS_BITS

    target, _ = _pair()
    codec = Codec(tiny_model, "cpu")
    cfg = codec.config(steps=4, prior_weight=0.5)
    cands = codec.compress_candidates([target], OPERATING_BITS, cfg, priorless_bits=PRIORLESS_BITS)[0]
    assert [c.bits for c in cands] == [*OPERATING_BITS, *PRIORLESS_BITS]
    plain = codec.compress_candidates([target], OPERATING_BITS, cfg)[0]
    assert [c.data for c in cands[: len(OPERATING_BITS)]] == [c.data for c in plain]
    for b, c in zip(PRIORLESS_BITS, cands[len(OPERATING_BITS):]):
        free = replace(cfg, bits=b, prior_weights=((b, 0.0),))
        assert c.data == codec.compress_batch([target], free)[0]
        assert c.data != plain[OPERATING_BITS.index(b)].data  # a weight of 0.5 moves the latent
    # a depth whose tail has no prior already is the priorless file: no second copy
    none = codec.config(steps=4, prior_weight=0.5, prior_weights=tuple((b, 0.0) for b in PRIORLESS_BITS))
    assert codec.priorless(PRIORLESS_BITS, none) == ()
    assert len(codec.compress_candidates([target], OPERATING_BITS, none, priorless_bits=PRIORLESS_BITS)[0]) == len(OPERATING_BITS)


def test_best_kind_keeps_the_better_kind_by_the_metric_and_what_it_returns_decodes():
    target, base = _pair()
    found, recon = layered(target, base, 24, 1)
    _, filtered = parts.deblocked(parts.parse_part(found[0]), recon)
    qualities = [image_quality(target[None], residual.to_pixels(r)[None]) for r in (recon, filtered)]
    qualities = [(float(p[0]), float(s[0])) for p, s in qualities]
    for metric, order in (("ssim", lambda q: (q[1], q[0])), ("psnr", lambda q: q)):
        chosen, picture, quality = best_kind(target, found, recon, metric)
        assert quality == max(qualities, key=order)
        assert parts.parse_part(chosen[0]).deblock == (quality != qualities[0])
        assert np.array_equal(residual.to_pixels(picture), parts.apply_parts(base, chosen))
    several, recon2 = layered(target, base, 24, 2)
    assert best_kind(target, several, recon2)[0] == several  # several parts: kind 0 as they are


def test_api_and_presets_with_parts(tiny_model):
    target, _ = _pair()
    data = compress(target, tiny_model, "cpu", max_bytes=200, metric="psnr", steps=2)
    assert len(data) <= 200 and data[2] == 2
    six = compress(target, tiny_model, "cpu", quality=6, steps=2)
    ten = compress(target, tiny_model, "cpu", quality=10, steps=2)
    assert icz.unpack_header(six)[0].bits == 6 and icz.unpack_header(ten)[0].bits == 4 and len(ten) > len(six)
    assert _psnr(target, decompress(ten, tiny_model, "cpu")) > _psnr(target, decompress(six, tiny_model, "cpu"))
    with pytest.raises(InvcompError, match="1..10"):
        compress(target, tiny_model, "cpu", quality=11)
    with pytest.raises(InvcompError, match="masks"):
        compress(target, tiny_model, "cpu", quality=7, mask_scheme="random")


_THREADS_SCRIPT = """
import hashlib, json, os, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from invcomp.codec import decompress
from invcomp.enhance.parts import parse_part
from invcomp.formats import coefficients
from invcomp.formats.icz import split_file
data = open(sys.argv[2], 'rb').read()
codes = []
for p in split_file(data)[2]:
    part = parse_part(p)
    codes.append(coefficients.decode(part.coded, (3, 32 // part.block, 32 // part.block, part.block ** 2), (False, True, True)))
pixels = decompress(data, model=sys.argv[3] if len(sys.argv) > 3 else None, device='cpu')
print(json.dumps([hashlib.sha256(json.dumps(codes).encode()).hexdigest(), pixels.tolist()]))
"""


def _decode_in(threads, path, model=None):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(threads), str(path), *([str(model)] if model else [])],
                         capture_output=True, text=True, check=True, env=env).stdout
    digest, pixels = json.loads(out)
    return digest, np.asarray(pixels, dtype=np.int64)


def _check_threads(path, model=None):
    (d1, p1), (d2, p2) = _decode_in(1, path, model), _decode_in(2, path, model)
    assert d1 == d2  # the entropy-decoded coefficients: identical
    assert np.abs(p1 - p2).max() <= 1  # the pixels: at most one level apart


def test_enhanced_decoding_across_thread_counts(tmp_path, tiny_model, tiny_weights):
    target, _ = _pair(3)
    data = compress(target, tiny_model, "cpu", target_psnr=35, layers=2, steps=2)
    assert len(icz.split_file(data)[2]) == 2
    (tmp_path / "e.icz").write_bytes(data)
    _check_threads(tmp_path / "e.icz", tiny_weights)


@pytest.mark.slow
@pytest.mark.pretrained
def test_pretrained_enhanced_decoding_across_thread_counts(tmp_path):
    target, _ = _pair(4)
    data = compress(target, "airplanes32", "cpu", max_bytes=200, layers=2, steps=20)
    (tmp_path / "p.icz").write_bytes(data)
    _check_threads(tmp_path / "p.icz")
