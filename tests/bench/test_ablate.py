"""`invcomp ablate`: every mask scheme x density on the same images, written as a table, JSON and a figure."""
import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from invcomp.cli import app


def test_cli_ablate_writes_table_json_and_figure(tmp_path, tiny_weights, images):
    np.savez(tmp_path / "set.npz", images=images)
    r = CliRunner().invoke(app, ["ablate", str(tmp_path / "set.npz"), "--model", str(tiny_weights), "--n", "3",
                                 "--masks", "random,edges", "--keep", "0.05,0.2", "--losses", "ssim+mse,ssim",
                                 "--baseline-bits", "3,4", "--bits", "3", "--steps", "2", "--device", "cpu",
                                 "--out", str(tmp_path / "res"), "--json"])
    assert r.exit_code == 0, r.output
    stem = tmp_path / "res" / "ablate_tiny_set_n3"
    report = json.loads(stem.with_suffix(".json").read_text())
    rows = report["rows"]
    assert [r["label"] for r in rows][:2] == ["invcomp 3-bit latent", "invcomp 4-bit latent"]
    assert len(rows) == 2 + 4 + 1 and rows[-1]["loss"] == "ssim"
    for row in rows[2:]:
        assert 0 < row["kept_fraction"] <= 0.25 and row["mean_bytes"] > rows[0]["mean_bytes"]
    assert stem.with_suffix(".md").read_text().count("\n") == len(rows) + 2
    assert Image.open(stem.with_suffix(".png")).size[0] > 100
