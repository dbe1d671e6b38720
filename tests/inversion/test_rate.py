import json

import pytest
from typer.testing import CliRunner

from invcomp import Codec, InvcompError
from invcomp.cli import app
from invcomp.inversion.invert import InversionConfig
from invcomp.inversion.rate import OPERATING_BITS, PRIORLESS_BITS, Candidate, bits_for_quality, choose

CFG = InversionConfig(steps=6, restarts=1)
runner = CliRunner()


def _cands():
    return [Candidate(2, b"x" * 10, 18.0, 0.60), Candidate(3, b"x" * 14, 19.0, 0.70), Candidate(4, b"x" * 19, 20.0, 0.75)]


def test_choose_cheapest_meeting_target_and_reports_failure():
    c = _cands()
    assert choose(c, target_ssim=0.65).candidate.bits == 3
    assert choose(c, target_ssim=0.60).candidate.bits == 2
    miss = choose(c, target_ssim=0.9)
    assert not miss.met and miss.candidate.bits == 4 and "0.7500 < target 0.9" in miss.reason
    assert choose(c, max_bytes=15).candidate.bits == 3  # best quality within the budget
    assert choose(c, target_ssim=0.72, max_bytes=15).met is False  # both targets: budget wins, target missed
    hard = choose(c, max_bytes=9)
    assert not hard.met and hard.candidate.size == 10 and "> --max-bytes 9" in hard.reason
    for bad in (dict(target_ssim=0.0), dict(target_ssim=1.5), dict(max_bytes=0)):
        with pytest.raises(InvcompError):
            choose(c, **bad)


def test_quality_levels():
    assert [bits_for_quality(q) for q in range(1, len(OPERATING_BITS) + 1)] == list(OPERATING_BITS)
    for bad in (0, len(OPERATING_BITS) + 1):
        with pytest.raises(InvcompError, match="--quality must be"):
            bits_for_quality(bad)


def test_candidates_equal_single_depth_files(tiny_model, rng_image):
    codec = Codec(tiny_model, "cpu")
    imgs = [rng_image, rng_image[::-1].copy()]
    found = codec.compress_candidates(imgs, (2, 4, 6), CFG)
    for j, per_image in enumerate(found):
        assert [c.bits for c in per_image] == [2, 4, 6]
        for c in per_image:
            alone = codec.compress_batch([imgs[j]], InversionConfig(bits=c.bits, steps=6, restarts=1))[0]
            assert c.data == alone
            assert 0 < c.ssim <= 1 and c.psnr > 0


def _png(tmp_path, rng_image):
    from PIL import Image

    path = tmp_path / "a.png"
    Image.fromarray(rng_image).save(path)
    return path


def test_fit_target_ssim_met_and_unmet(tmp_path, tiny_weights, tiny_model, rng_image):
    src = _png(tmp_path, rng_image)
    codec = Codec(tiny_model, "cpu")  # what the CLI fits for a target: every depth, and the priorless ones
    found = codec.compress_candidates([rng_image], OPERATING_BITS, codec.config(steps=6), priorless_bits=PRIORLESS_BITS)[0]
    reachable = max(c.ssim for c in found)
    args = ["fit", str(src), "--model", str(tiny_weights), "--steps", "6", "--device", "cpu", "--json", "--no-enhance"]
    r = runner.invoke(app, args + ["--target-ssim", f"{reachable - 1e-6:.7f}"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)["files"][0]
    assert row["target_met"] and row["ssim"] >= reachable - 1e-4
    cheapest_ok = min((c for c in found if c.ssim >= reachable - 1e-6), key=lambda c: c.size)
    assert row["bytes"] == cheapest_ok.size
    r = runner.invoke(app, args + ["--target-ssim", "0.99999"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)["files"][0]
    assert row["target_met"] is False and "target" in row["reason"] and (tmp_path / "a.icz").exists()
    r = runner.invoke(app, args[:-1] + ["--target-ssim", "0.99"])  # enhancement parts reach past the latent's ceiling
    row = json.loads(r.stdout)["files"][0]
    assert r.exit_code == 0 and row["target_met"] and row["ssim"] >= 0.99 and row["parts"] == 1


def test_fit_max_bytes_unreachable_writes_nothing(tmp_path, tiny_weights, rng_image):
    src = _png(tmp_path, rng_image)
    out = tmp_path / "never.icz"
    r = runner.invoke(app, ["fit", str(src), "-o", str(out), "--model", str(tiny_weights), "--steps", "4",
                            "--device", "cpu", "--max-bytes", "3"])
    assert r.exit_code == 1
    assert "cannot meet --max-bytes 3" in r.output and not out.exists()
    r = runner.invoke(app, ["fit", str(src), "--model", str(tiny_weights), "--bits", "3", "--quality", "2"])
    assert r.exit_code == 2 and "at most one of" in r.output


def test_fit_within_a_budget_missing_a_quality_target_writes_the_closest_file(tmp_path, tiny_weights, rng_image):
    """--max-bytes with a quality target out of reach: the best file within the budget is written and marked
    as missing the target (exit 0), as a quality target alone is; only a file over the budget is never written."""
    import warnings

    from invcomp.codec import compress

    src = _png(tmp_path, rng_image)
    out = tmp_path / "a.icz"
    args = ["fit", str(src), "-o", str(out), "--model", str(tiny_weights), "--steps", "4", "--device", "cpu", "--json"]
    r = runner.invoke(app, args + ["--max-bytes", "150", "--target-psnr", "99"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)["files"][0]
    assert row["target_met"] is False and "PSNR 99" in row["reason"] and row["output"] == str(out)
    assert out.stat().st_size == row["bytes"] <= 150 and row["parts"] == 1
    best = json.loads(runner.invoke(app, args + ["--max-bytes", "150", "--metric", "psnr"]).stdout)["files"][0]
    assert row["psnr"] == best["psnr"]  # the closest to the PSNR target: the best PSNR within the budget
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = compress(rng_image, tiny_weights, "cpu", steps=4, max_bytes=150, target_psnr=99)
    assert len(data) <= 150 and any("target not met" in str(w.message) for w in caught)
