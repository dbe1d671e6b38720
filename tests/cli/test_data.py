"""The data commands: `invcomp data list` and `invcomp data prepare`, on tiny sources in torchvision's
layout (tests/io/fake_sources.py) and with the network refused."""
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from invcomp.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from fake_sources import write_cifar  # noqa: E402

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("no_network")  # fixtures in tests/conftest.py


def test_failed_download_says_what_and_leaves_no_file(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    root = tmp_path / "data"
    r = runner.invoke(app, ["data", "prepare", "cifar10_airplane", "--root", str(root)])
    assert r.exit_code != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "cannot download CIFAR-10 from https://" in lines[0] and "name resolution" in lines[0]
    assert "check the network" in lines[0]
    assert not root.exists() or not any(root.rglob("*")), list(root.rglob("*"))


def test_no_download_with_nothing_there(tmp_path):
    r = runner.invoke(app, ["data", "prepare", "flowers_32", "--root", str(tmp_path), "--no-download"])
    assert r.exit_code != 0 and "flowers-102 is missing or incomplete" in r.stderr
    assert not any(tmp_path.rglob("*.npz"))


def test_data_commands_prepare_and_list(tmp_path, unchecked_md5):
    write_cifar(tmp_path / "raw")
    out = tmp_path / "out"
    r = runner.invoke(app, ["data", "prepare", "cifar10_automobile", "--root", str(out), "--downloads", str(tmp_path / "raw"),
                            "--split", "test", "--no-download"])
    assert r.exit_code == 0, r.output
    assert "cifar10_automobile_test.npz: 4 images, differs from the reference file" in r.stdout
    assert f"export INVCOMP_DATA={out.resolve()}" in r.stdout
    assert [p.name for p in out.glob("*.npz")] == ["cifar10_automobile_test.npz"]
    r = runner.invoke(app, ["data", "list", "--root", str(out)])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stdout.splitlines() if x.startswith("cifar10_automobile_test.npz"))
    assert "present, 4 images (expected 800)" in line
    assert "missing" in next(x for x in r.stdout.splitlines() if x.startswith("flowers_64_train.npz"))
    r = runner.invoke(app, ["data", "prepare", "nosuch", "--root", str(out)])
    assert r.exit_code != 0 and "unknown data set 'nosuch'" in r.stderr


class _CutResponse:
    """An HTTP response that sends some bytes, then loses the connection."""

    length, url = 1 << 20, None

    def __init__(self, url):
        self.url, self._sent = url, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, n=-1):
        if self._sent >= 3:
            raise ConnectionResetError(104, "Connection reset by peer")
        self._sent += 1
        return b"\x1f\x8b" + b"x" * 1000


def test_a_download_cut_halfway_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, *a, **k: _CutResponse(getattr(req, "full_url", req)))
    root = tmp_path / "data"
    root.mkdir()
    r = runner.invoke(app, ["data", "prepare", "flowers_64", "--root", str(root)])
    assert r.exit_code != 0
    lines = [line for line in r.stderr.splitlines() if line.strip() and "%" not in line and "B/s" not in line]
    assert len(lines) == 1 and "cannot download Oxford Flowers-102" in lines[0] and "Connection reset" in lines[0], r.stderr
    assert list(root.rglob("*")) == []  # neither the partial archive nor an empty downloads folder


def test_list_finds_the_folder_through_invcomp_data(tmp_path, monkeypatch):
    images = np.zeros((800, 32, 32, 3), np.uint8)
    np.savez_compressed(tmp_path / "cifar10_airplane_test.npz", images=images, labels=np.zeros(800, np.uint8))
    monkeypatch.setenv("INVCOMP_DATA", str(tmp_path))
    r = runner.invoke(app, ["data", "list", "--json"])
    assert r.exit_code == 0, r.output
    import json

    report = json.loads(r.stdout)
    assert report["root"] == str(tmp_path)
    present = [f["file"] for f in report["files"] if f["present"]]
    assert present == ["cifar10_airplane_test.npz"]
    assert {f["name"] for f in report["files"]} >= {"cifar10_airplane", "cifar10_truck", "flowers_32", "flowers_64"}


def test_data_list_does_not_import_torch(tmp_path):
    import subprocess

    code = ("import sys\nfrom typer.testing import CliRunner\nfrom invcomp.cli import app\n"
            f"r = CliRunner().invoke(app, ['data', 'list', '--root', {str(tmp_path)!r}])\n"
            "assert r.exit_code == 0, r.output\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
