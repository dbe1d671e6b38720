"""The learned peer: its measured series (no CompressAI needed) and, where the `[peers]` extra is
installed, training and measuring (skipped otherwise: our tests must not need the extra)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from invcomp.bench import peers
from invcomp.bench.data import BenchData
from invcomp.bench.peer import PeerConfig
from invcomp.cli import app
from invcomp.errors import InvcompError

runner = CliRunner()


def _images(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _points(images: np.ndarray) -> list[tuple]:
    """Fake trained points: noisier pictures for lower lambdas, bytes rising with lambda."""
    rng = np.random.default_rng(0)
    out = []
    for objective, lmbdas in (("ssim", (5.0, 2.0)), ("mse", (0.002,))):
        for lm in lmbdas:
            noise = rng.normal(0, 40 / (1 + 10 * lm), images.shape)
            decoded = np.clip(images + noise, 0, 255).astype(np.uint8)
            sizes = [int(20 + 10 * lm + i % 3) for i in range(len(images))]
            out.append((PeerConfig(objective, lm, 1.0), {"steps": 10}, sizes, decoded))
    return out


def test_series_round_trip_and_which_images_they_serve(tmp_path):
    images = _images(12)
    series = peers.series_from_points(images, _points(images))
    assert [s.codec for s in series] == ["learned peer (SSIM)", "learned peer (MSE)"]
    assert series[0].settings == [2.0, 5.0] and series[0].labels == ["lambda 2", "lambda 5"]  # rising lambda
    assert series[0].points[0]["bytes"][:3] == [40, 41, 42]
    assert series[0].points[1]["ssim"][0] > series[0].points[0]["ssim"][0]  # less noise at the higher lambda
    data = BenchData(tmp_path / "few.npz", images)
    for s in series:
        assert peers.save_peer_series(tmp_path, "tiny", data, s).name in ("tiny_few_ssim.json", "tiny_few_mse.json")
    assert peers.load_peer_series(tmp_path, "tiny", data) == sorted(series, key=lambda s: s.codec)
    first10 = peers.load_peer_series(tmp_path, "tiny", BenchData(data.path, images[:10], n=10))
    assert [len(p["psnr"]) for s in first10 for p in s.points] == [10, 10, 10]
    assert first10[1].points[1]["psnr"] == series[0].points[1]["psnr"][:10]
    # not a measured prefix, other pixels, another test file or another model: not used
    assert peers.load_peer_series(tmp_path, "tiny", BenchData(data.path, images[:5], n=5)) == []
    assert peers.load_peer_series(tmp_path, "tiny", BenchData(data.path, _images(12, seed=4))) == []
    assert peers.load_peer_series(tmp_path, "tiny", BenchData(tmp_path / "other.npz", images)) == []
    assert peers.load_peer_series(tmp_path, "airplanes32", data) == []


def test_points_measured_later_join_the_stored_series():
    images = _images(6)
    points = _points(images)
    ssim_all = peers.series_from_points(images, points)[0]
    first = peers.series_from_points(images, [points[0]])[0]  # lambda 5, measured first
    later = peers.series_from_points(images, [points[1]])[0]  # lambda 2, trained later
    assert peers.merge_series(first, later) == ssim_all == peers.merge_series(later, first)
    assert peers.merge_series(ssim_all, first) == ssim_all  # a point measured again replaces itself
    other = peers.series_from_points(_images(6, seed=4), [points[1]])[0]
    with pytest.raises(InvcompError, match="same images"):
        peers.merge_series(first, other)
    with pytest.raises(InvcompError, match="same images"):
        peers.merge_series(first, peers.series_from_points(images, [points[2]])[0])  # another objective


def test_bench_puts_the_peer_beside_invcomp(tmp_path, tiny_weights):
    images = _images(4)
    npz = tmp_path / "few.npz"
    np.savez(npz, images=images)
    out = tmp_path / "results"
    for s in peers.series_from_points(images, _points(images)):
        peers.save_peer_series(out, "tiny", BenchData(npz, images), s)
    r = runner.invoke(app, ["bench", str(npz), "--model", str(tiny_weights), "--steps", "2", "--device", "cpu",
                            "--out", str(out), "--grid", "0", "--budgets", "1,2", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    rows = [row for row in report["rows"] if row["codec"] == "learned peer (SSIM)"]
    assert [row["setting"] for row in rows] == [2.0, 5.0] and rows[0]["images"] == 4
    assert [p["codec"] for p in report["peers"]] == ["learned peer (MSE)", "learned peer (SSIM)"]
    table = json.loads((out / "budgets_tiny_few.json").read_text())
    peer_rows = [row for row in table["rows"] if row["codec"] == "best learned peer (MSE) within budget"]
    assert len(peer_rows) == 2
    for row in peer_rows:
        assert row["within"] == 0 or row["bytes"] <= row["budget"]
    assert "best learned peer (SSIM) within budget" in (out / "budgets_tiny_few.md").read_text()


def test_config_and_missing_extra_fail_in_one_line(monkeypatch):
    with pytest.raises(InvcompError, match="objective"):
        PeerConfig("l1", 1.0, 1.0)
    with pytest.raises(InvcompError, match="positive"):
        PeerConfig("mse", 0.0, 1.0)
    with pytest.raises(InvcompError, match="multiple of 16"):
        PeerConfig("mse", 1.0, 1.0, crop=24)
    from invcomp.bench.peer import train

    with pytest.raises(InvcompError, match="larger than the 32x32"):
        train(PeerConfig("mse", 1.0, 1.0, crop=48), _images(2), Path("unused.ckpt"))
    monkeypatch.setitem(sys.modules, "compressai", None)  # as if the extra were not installed
    from invcomp.bench.peer import compressai

    with pytest.raises(InvcompError, match=r"\.\[peers\]"):
        compressai()


def test_train_resume_and_measure_with_compressai(tmp_path):
    pytest.importorskip("compressai", reason="the [peers] extra is not installed")
    import torch

    from invcomp.bench.peer import load_weights, measure, save_weights, train

    torch.manual_seed(0)
    cfg = PeerConfig("ssim", 5.0, 0.02, n=8, m=8, batch_size=4)
    images = _images(16)
    ckpt = tmp_path / "p.ckpt"
    model = train(cfg, images, ckpt, log=lambda s: None)
    steps = torch.load(ckpt, weights_only=True)["state"]["steps"]
    assert steps > 0
    train(cfg, images, ckpt, log=lambda s: None)  # the budget is spent: resuming trains no further
    assert torch.load(ckpt, weights_only=True)["state"]["steps"] == steps
    with pytest.raises(InvcompError, match="another configuration"):
        train(PeerConfig("mse", 5.0, 0.02, n=8, m=8, batch_size=4), images, ckpt, log=lambda s: None)
    save_weights(model, cfg, tmp_path / "p.pt", {"steps": steps, "torch": torch.__version__})  # a str subclass
    loaded, cfg2, trained = load_weights(tmp_path / "p.pt")
    assert cfg2 == cfg and trained == {"steps": steps, "torch": str(torch.__version__)}
    sizes, decoded = measure(loaded, images[:3])
    again, decoded2 = measure(loaded, images[:3])
    assert all(s > 0 for s in sizes) and sizes == again  # real bitstreams, the same each time
    assert decoded.shape == (3, 32, 32, 3) and decoded.dtype == np.uint8 and np.array_equal(decoded, decoded2)
    crop = PeerConfig("ssim", 5.0, 0.02, n=8, m=8, batch_size=4, crop=16)  # trained on 16 x 16 windows
    cropped = train(crop, images, tmp_path / "c.ckpt", log=lambda s: None)
    assert torch.load(tmp_path / "c.ckpt", weights_only=True)["state"]["steps"] > 0
    sizes, decoded = measure(cropped, images[:2])  # and codes whole images
    assert decoded.shape == (2, 32, 32, 3) and all(s > 0 for s in sizes)
