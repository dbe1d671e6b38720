import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from invcomp.cli import app

runner = CliRunner()
FAST = ["--steps", "5", "--restarts", "1", "--device", "cpu"]


def _png(path, size=(32, 32), mode="RGB"):
    arr = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def test_fit_decode_info_end_to_end(tmp_path, tiny_weights):
    src = _png(tmp_path / "a.png")
    r = runner.invoke(app, ["fit", str(src), "--model", str(tiny_weights), "--json", *FAST])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    icz = tmp_path / "a.icz"
    assert report["files"][0]["bytes"] == icz.stat().st_size <= 7 + 4
    assert 0 < report["files"][0]["ssim"] <= 1
    r = runner.invoke(app, ["decode", str(icz), "--model", str(tiny_weights), "-o", str(tmp_path / "out.png")])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "out.png").size == (32, 32)
    r = runner.invoke(app, ["info", str(icz), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["bits"] == 4


def test_fit_folder_conversions_and_original_size(tmp_path, tiny_weights):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _png(folder / "grey.png", mode="L")
    _png(folder / "pal.png", mode="P")
    _png(folder / "alpha.png", mode="RGBA")
    _png(folder / "wide.png", size=(64, 40))
    out = tmp_path / "out"
    r = runner.invoke(app, ["fit", str(folder), "-o", str(out), "--model", str(tiny_weights), *FAST])
    assert r.exit_code == 0, r.output
    assert "converted grey" in r.stderr and "palette" in r.stderr and "alpha" in r.stderr
    assert "64x40 centre-cropped" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["alpha.icz", "grey.icz", "pal.icz", "wide.icz"]
    r = runner.invoke(app, ["decode", str(out / "wide.icz"), "--original-size", "--model", str(tiny_weights)])
    assert r.exit_code == 0, r.output
    assert Image.open(out / "wide.png").size == (64, 40)


def _fails(args, match):
    r = runner.invoke(app, args)
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0], r.stderr
    return r


def test_clean_errors_leave_no_output(tmp_path, tiny_weights):
    _fails(["fit", str(tmp_path / "missing.png"), "--model", str(tiny_weights)], "no such file")
    notimg = tmp_path / "notes.png"
    notimg.write_text("hello")
    _fails(["fit", str(notimg), "--model", str(tiny_weights)], "not a readable image")
    assert not (tmp_path / "notes.icz").exists()
    src = _png(tmp_path / "b.png")
    _fails(["fit", str(src), "--model", "nope"], "unknown model")
    _fails(["fit", str(src), "--model", str(tiny_weights), "--bits", "20"], "--bits must be")
    _fails(["fit", str(src), "--model", str(tiny_weights), "--device", "tpu"], "unknown device")
    assert not (tmp_path / "b.icz").exists()
    assert not list(tmp_path.glob("*.tmp"))
    bad = tmp_path / "bad.icz"
    bad.write_bytes(b"garbage!")
    _fails(["decode", str(bad)], "not an invcomp file")
    _fails(["info", str(bad)], "not an invcomp file")
    assert not (tmp_path / "bad.png").exists()


def test_refuses_to_overwrite_input(tmp_path, tiny_weights):
    src = _png(tmp_path / "c.png")
    before = src.read_bytes()
    _fails(["fit", str(src), "-o", str(src), "--model", str(tiny_weights), *FAST], "overwrite the input")
    assert src.read_bytes() == before
    runner.invoke(app, ["fit", str(src), "--model", str(tiny_weights), *FAST])
    icz = tmp_path / "c.icz"
    kept = icz.read_bytes()
    _fails(["decode", str(icz), "-o", str(icz), "--model", str(tiny_weights)], "overwrite the input")
    assert icz.read_bytes() == kept


def test_decode_truncated_file(tmp_path, tiny_weights):
    src = _png(tmp_path / "d.png")
    runner.invoke(app, ["fit", str(src), "--model", str(tiny_weights), *FAST])
    icz = tmp_path / "d.icz"
    icz.write_bytes(icz.read_bytes()[:-1])
    _fails(["decode", str(icz), "--model", str(tiny_weights)], "corrupt payload")
    assert not (tmp_path / "d.png.tmp").exists()


@pytest.mark.pretrained
def test_fit_model_auto_picks_a_model_per_image(tmp_path):
    from conftest import data_file

    planes = np.load(data_file("cifar10_airplane_test.npz"))["images"][:2]
    flowers = np.load(data_file("flowers_64_test.npz"))["images"][:2]
    for i, im in enumerate([*planes, *flowers]):
        Image.fromarray(im).save(tmp_path / f"in{i}.png")
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "in0.png"), str(tmp_path / "in1.png"), str(tmp_path / "in2.png"),
                                 str(tmp_path / "in3.png"), "-o", str(tmp_path / "out"), "-m", "auto", "--steps", "10",
                                 "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["files"]
    assert [row["model"] for row in rows[2:]] == ["flowers64", "flowers64"]  # 64 x 64 flowers: the only 64 px model
    assert all(row["model"].endswith("32") for row in rows[:2])
    for row in rows:  # each file names its own model and decodes without being told which
        r = CliRunner().invoke(app, ["decode", row["output"], "--device", "cpu"])
        assert r.exit_code == 0, r.output


def test_help_lists_each_command_on_one_paragraph():
    """`invcomp --help` shows each command's first docstring paragraph, re-wrapped (not broken where the
    docstring's lines break)."""
    from invcomp.cli.codec import trim
    from invcomp.cli.common import short_help

    r = runner.invoke(app, ["--help"], terminal_width=200)
    assert r.exit_code == 0, r.output
    line = short_help(trim)
    assert "\n" not in line and line.startswith("Make a smaller file") and line.endswith("that quality).")
    assert "without fitting again (the result is exactly" in r.output


def test_errors_about_a_file_name_it(tmp_path, tiny_weights):
    """decode, info and trim: a damaged or foreign input gives one line naming it, exit 2, nothing written."""
    src = _png(tmp_path / "a.png")
    assert runner.invoke(app, ["fit", str(src), "--model", str(tiny_weights), *FAST]).exit_code == 0
    good = (tmp_path / "a.icz").read_bytes()
    bad = tmp_path / "bad.icz"
    bad.write_bytes(good[:5])  # inside the header
    for args in (["decode", str(bad), "-o", str(tmp_path / "b.png"), "--model", str(tiny_weights)], ["info", str(bad)],
                 ["trim", str(bad), "-o", str(tmp_path / "t.icz"), "--parts", "0"],
                 ["decode", str(src), "-o", str(tmp_path / "c.png")]):
        r = runner.invoke(app, args)
        name = bad if str(bad) in args else src
        assert r.exit_code == 2 and r.output.startswith(f"invcomp: error: {name}: "), r.output
        assert r.output.count("\n") == 1
    assert not any((tmp_path / n).exists() for n in ("b.png", "t.icz", "c.png"))
