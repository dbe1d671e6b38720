"""Training: a warm start from a published model, and the best held-out epoch kept beside the last."""
import json

import numpy as np
import pytest
import torch
from conftest import TINY, tiny_nets
from typer.testing import CliRunner

from invcomp.cli import app
from invcomp.errors import InvcompError
from invcomp.models.nets import NetConfig
from invcomp.models.train import TrainConfig, Trainer
from invcomp.models.zoo import resolve_model

runner = CliRunner()


def _images(n=40):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_warm_start_copies_generator_and_encoder_and_refuses_other_shapes(tmp_path):
    cfg = TrainConfig(net=TINY, epochs=1, batch_size=4, holdout=8)
    trainer = Trainer(cfg, _images(), tmp_path, tmp_path / "g.pt", torch.device("cpu"))
    g, e = tiny_nets(3)
    trainer.warm_start(g, e)
    for mine, theirs in ((trainer.G, g), (trainer.E, e)):
        assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    with pytest.raises(InvcompError, match="no encoder"):
        trainer.warm_start(g, None)
    wide, _ = tiny_nets(0, NetConfig(resolution=32, latent_dim=8, width=16))
    with pytest.raises(InvcompError, match="configuration differs"):
        trainer.warm_start(wide, e)


def test_train_from_init_keeps_the_best_epoch(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "d.npz", images=_images())
    args = ["train", "d.npz", "-o", "out/g.pt", "--work-dir", "wd", "--latent", "8", "--width", "8", "--epochs", "2",
            "--batch-size", "4", "--holdout", "8", "--device", "cpu", "--init", str(tiny_weights)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "starting from" in r.stderr
    records = [json.loads(line) for line in (tmp_path / "wd" / "log.jsonl").read_text().splitlines()]
    assert records[0]["best"] is True  # the first validated epoch is the best so far
    best = max(records, key=lambda x: x["val_ssim"])
    assert best.get("best") is True
    kept = resolve_model(tmp_path / "out" / "g.best.pt")
    assert kept.sha256 == best["generator"]
    r = runner.invoke(app, [*args[:-2], "--init", "nosuchmodel"])
    assert r.exit_code != 0  # the work dir's checkpoint exists: refused before anything else


def test_ae_recipe_trains_generator_and_encoder_and_leaves_the_discriminator_alone(tmp_path):
    cfg = TrainConfig(net=TINY, recipe="ae", epochs=1, batch_size=4, holdout=8)
    trainer = Trainer(cfg, _images(), tmp_path, tmp_path / "g.pt", torch.device("cpu"))
    before = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in
              (("G", trainer.G), ("E", trainer.E), ("D", trainer.D))}
    x = trainer._batch(torch.arange(4))
    stats = trainer.step(x)
    assert set(stats) == {"ssim", "l1"} and 0 <= stats["l1"] and -1 <= stats["ssim"] <= 1
    changed = {name: any(not torch.equal(v, getattr(trainer, name).state_dict()[k]) for k, v in state.items())
               for name, state in before.items()}
    assert changed == {"G": True, "E": True, "D": False}
    with pytest.raises(InvcompError, match="unknown recipe"):
        TrainConfig(net=TINY, recipe="vae")
