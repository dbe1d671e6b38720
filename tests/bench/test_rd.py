import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from invcomp.bench import analysis, classic, msssim, rd
from invcomp.cli import app

runner = CliRunner()


@pytest.fixture()
def tiny_npz(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    path = tmp_path / "few.npz"
    np.savez(path, images=images)
    return path


def test_bench_writes_every_codec_and_reuses_cache(tmp_path, tiny_weights, tiny_npz, monkeypatch):
    out = tmp_path / "results"
    args = ["bench", str(tiny_npz), "--model", str(tiny_weights), "--steps", "4", "--device", "cpu",
            "--out", str(out), "--grid", "2", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    names = {row["codec"] for row in report["rows"]}
    assert names == {"invcomp tiny", "invcomp + parts"} | {c.name for c in classic.CLASSIC_CODECS}
    parts = [row for row in report["rows"] if row["codec"] == "invcomp + parts"]
    assert [row["setting"] for row in parts] == ["0.5x", "1x", "1.5x", "2x", "3x", "4x"]
    assert [row["mean_bytes"] for row in parts] == sorted(row["mean_bytes"] for row in parts)
    assert parts[-1]["psnr"] > parts[0]["psnr"] + 1  # quality keeps rising with the budget (noise images: slowly)
    budgets = json.loads(open(out / "budgets_tiny_few.json").read())
    for row in budgets["rows"]:
        if row["codec"].startswith("invcomp"):
            assert row["within"] == 4 and row["bytes"] <= row["budget"]
    for row in report["rows"]:
        if row["codec"] == "invcomp + parts":
            continue
        assert row["images"] == 4 and row["mean_bytes"] > 0
        assert abs(row["bpp"] - 8 * row["mean_bytes"] / 1024) < 1e-3
        assert 0 < row["ssim"] <= 1 and row["psnr"] > 0 and 0 <= row["msssim"] <= 1
    ours = [row for row in report["rows"] if row["codec"] == "invcomp tiny"]
    assert [row["setting"] for row in ours] == [2, 3, 4, 5, 6]
    assert "default_vs_webp_q0" in report["analysis"]
    for key in ("ssim_plot", "psnr_plot", "grid"):
        assert open(report["outputs"][key], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "| invcomp tiny | 3-bit |" in open(report["outputs"]["markdown"]).read()
    assert json.loads(open(report["outputs"]["json"]).read())["rows"] == report["rows"]
    # a rerun reads every series from the cache: no codec and no inversion runs again
    monkeypatch.setattr(classic.ClassicCodec, "roundtrip", lambda *a: pytest.fail("classic codec re-run"))
    monkeypatch.setattr(rd, "run_invcomp", lambda *a, **k: pytest.fail("inversion re-run"))
    from invcomp.bench import choices

    monkeypatch.setattr(choices, "choose_enhanced", lambda *a, **k: pytest.fail("enhancement choice re-run"))
    r2 = runner.invoke(app, args[:-3] + ["--grid", "0", "--json"])
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.stdout)["rows"] == report["rows"]


def test_invcomp_cache_holds_a_prior_schedule(tmp_path, tiny_weights, tiny_npz, monkeypatch):
    """The key is compared as the cache file holds it: a schedule's tuples once made every rerun miss."""
    from invcomp.bench.data import load_bench_data
    from invcomp.codec import Codec

    codec = Codec(str(tiny_weights), "cpu")
    data = load_bench_data(str(tiny_npz), codec.resolution, 2)
    cfg = codec.config(steps=2, prior_weights=((4, 0.01), (5, 0.0)))
    first = rd.invcomp_series(codec, data, cfg, tmp_path)
    monkeypatch.setattr(rd, "run_invcomp", lambda *a, **k: pytest.fail("inversion re-run"))
    assert rd.invcomp_series(codec, data, cfg, tmp_path) == first
    # the priorless base the budgets choose from: the 3-bit file of a schedule with no prior at 3 bits
    assert list(first.extra["priorless_files"]) == ["3"]
    free = codec.compress_batch(list(data.images), replace(cfg, bits=3, prior_weights=((3, 0.0), (4, 0.01), (5, 0.0))))
    assert [bytes.fromhex(h) for h in first.extra["priorless_files"]["3"]] == free


def test_bench_bad_input(tmp_path, tiny_weights):
    r = runner.invoke(app, ["bench", str(tmp_path / "none.npz"), "--model", str(tiny_weights)])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(app, ["bench", str(tmp_path), "--model", str(tiny_weights), "--n", "0"])
    assert r.exit_code == 2


def test_ms_ssim_levels_equals_pytorch_msssim_at_64():
    from pytorch_msssim import ms_ssim

    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 64)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    ours = msssim.ms_ssim_levels(x, y, 3, msssim.MSSSIM_WEIGHTS)
    ref = ms_ssim(x, y, data_range=1.0, size_average=False, win_size=3)
    assert torch.allclose(ours, ref, atol=1e-6)
    assert msssim.msssim_settings(32)[0] == 3 and abs(sum(msssim.msssim_settings(32)[1]) - 1) < 1e-9
    assert msssim.msssim_settings(16) is None


def _rows(codec, pts):
    return [{"codec": codec, "setting": i, "label": str(i), "mean_bytes": b, "ssim": q, "psnr": 10 * q} for i, (b, q) in enumerate(pts)]


def test_crossings_and_target_analysis():
    ours = _rows("invcomp m", [(20, 0.6), (35, 0.75), (50, 0.8)])
    # a classic curve below ours at low rates that overtakes it at ~40 bytes
    theirs = _rows("Other", [(30, 0.5), (45, 0.85)])
    c = analysis.crossings(ours, theirs, "ssim")
    assert c["from_bytes"] == 30 and c["leader"] == "invcomp"
    (x,) = c["changes"]
    assert 35 < x < 45
    # a curve that starts beyond ours is compared with our best point (flat budget envelope)
    later = analysis.crossings(ours, _rows("Late", [(80, 0.7), (120, 0.9)]), "ssim")
    assert later["from_bytes"] == 80 and later["leader"] == "invcomp" and 80 < later["changes"][0] < 120
    webp = [{"codec": "WebP", "setting": 0, "label": "q0", "mean_bytes": 90.0, "ssim": 0.7, "psnr": 7.0}]
    a = analysis.analyse(ours + theirs + webp, default_bits=1)
    d = a["default_vs_webp_q0"]
    assert d["target_met"] and d["bytes_ratio"] == round(35 / 90, 4)
    assert 20 / 90 < a["bytes_ratio_at_webp_q0_ssim"] < 35 / 90  # ours reaches 0.7 between 20 and 35 bytes
    dom = a["ssim_curve_above_classics_below_webp_q0"]
    assert dom["classic_points_checked"] == 2 and [v["mean_bytes"] for v in dom["violations"]] == [45]


def test_best_within_takes_the_highest_setting_that_fits():
    from invcomp.bench.budgets import best_within

    series = rd.Series("X", "classic", [0, 50, 90], ["q0", "q50", "q90"],
                       [{"bytes": [10, 30], "psnr": [20.0, 21.0], "ssim": [0.5, 0.6]},
                        {"bytes": [20, 40], "psnr": [25.0, 26.0], "ssim": [0.7, 0.8]},
                        {"bytes": [50, 60], "psnr": [30.0, 31.0], "ssim": [0.9, 0.95]}])
    assert best_within(series, 25, 2) == {"within": 1, "bytes": 20.0, "psnr": 25.0, "ssim": 0.7,  # image 1 has no file
                                          "images": [0]}
    assert best_within(series, 9, 2) == {"within": 0, "bytes": None, "psnr": None, "ssim": None, "images": []}
    assert best_within(series, 45, 2)["psnr"] == 25.5


def test_a_codec_with_files_for_some_images_is_paired_with_invcomp_on_those_images():
    from invcomp.bench.budgets import best_within, markdown, same_images

    series = rd.Series("X", "classic", [0], ["q0"], [{"bytes": [20, 40, 30], "psnr": [25.0, 26.0, 27.0],
                                                      "ssim": [0.7, 0.8, 0.9]}])
    # invcomp's choices per image: (bytes, PSNR, SSIM, has parts), one list per metric
    choices = {"35 psnr": [(30, 30.0, 0.80, True), (33, 20.0, 0.60, True), (34, 28.0, 0.85, True)],
               "35 ssim": [(31, 29.0, 0.90, True), (30, 19.0, 0.70, True), (20, 27.0, 0.95, True)]}
    row = same_images(best_within(series, 35, 3), choices, 35, 3)  # the codec fits images 0 and 2
    assert row["within"] == 2 and row["psnr"] == 26.0
    assert row["invcomp_psnr"] == 29.0 and row["invcomp_ssim"] == 0.925  # images 0 and 2 only, not image 1
    assert "invcomp_psnr" not in same_images(best_within(series, 45, 3), choices, 45, 3)  # every image: no pair
    report = {"model": "m", "data": "d", "images": 3, "webp_q0_mean_bytes": 35.0,
              "rows": [{"multiple": 1.0, "budget": 35, "codec": "best X within budget", **row}]}
    assert markdown(report).splitlines()[-1] == "| 1x (35 B) | best X within budget | 2 | 25.00 | 26.00 | 0.8000 | 29.00 / 0.9250 |"
