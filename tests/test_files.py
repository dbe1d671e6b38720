"""Files that outlive the run: the permissions every writer gives its outputs (the umask's, or the
replaced file's), and files naming their generator by version (docs/FORMAT.md, "Models and versions")."""
import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, tiny_nets
from PIL import Image
from typer.testing import CliRunner

from invcomp import codec as codec_module
from invcomp import files
from invcomp.archive import codec_for
from invcomp.cli import app
from invcomp.codec import Codec, compress, decompress, model_of_file
from invcomp.errors import InvcompError
from invcomp.formats import icza
from invcomp.formats.icz import Header, encode_file
from invcomp.models import registry, zoo
from invcomp.models.registry import ModelInfo
from invcomp.models.weights import weights_bytes
from invcomp.models.zoo import load_model

runner = CliRunner()
FAST = ["--steps", "2", "--device", "cpu"]


def _run(args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=["umask022", "umask077", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.fixture()
def pngs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def _no_temporaries(*folders: Path) -> None:
    left = [p for f in folders for p in f.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".partial")]
    assert not left, left


# --- permissions ------------------------------------------------------------------------------

def test_current_umask_is_read_without_changing_it(umask):
    assert files.current_umask() == umask
    assert os.umask(umask) == umask  # still in force


def test_write_atomic_new_and_replaced_files(tmp_path, umask):
    path = tmp_path / "x.bin"
    files.write_atomic(path, b"one")
    assert _mode(path) == 0o666 & ~umask and path.read_bytes() == b"one"
    path.chmod(0o640)
    files.write_atomic(path, b"two")
    assert _mode(path) == 0o640 and path.read_bytes() == b"two"  # a replaced file keeps its mode
    with files.atomic_writer(tmp_path / "y.bin") as f:  # seek and truncate, as the archive writer uses them
        f.write(b"abcdef")
        f.seek(0)
        f.write(b"X")
        f.truncate(3)
    assert (tmp_path / "y.bin").read_bytes() == b"Xbc" and _mode(tmp_path / "y.bin") == 0o666 & ~umask
    _no_temporaries(tmp_path)


def test_fit_and_decode_outputs_get_the_umask_mode(tmp_path, umask, pngs, tiny_weights):
    want = 0o666 & ~umask
    _run(["fit", pngs, "-o", tmp_path / "icz", "-m", tiny_weights, *FAST])
    written = sorted((tmp_path / "icz").glob("*.icz"))
    assert len(written) == 4 and all(_mode(p) == want for p in written)
    _run(["decode", tmp_path / "icz", "-o", tmp_path / "png", "-m", tiny_weights, "--device", "cpu"])
    decoded = sorted((tmp_path / "png").glob("*.png"))
    assert len(decoded) == 4 and all(_mode(p) == want for p in decoded)
    _no_temporaries(tmp_path / "icz", tmp_path / "png")


def test_fit_and_decode_keep_the_mode_of_a_file_they_replace(tmp_path, pngs, tiny_weights):
    icz, png = tmp_path / "p0.icz", tmp_path / "p0.png"
    icz.write_bytes(b"old")
    icz.chmod(0o604)
    png.write_bytes(b"old")
    png.chmod(0o660)
    _run(["fit", pngs / "p0.png", "-o", icz, "-m", tiny_weights, *FAST])
    _run(["decode", icz, "-o", png, "-m", tiny_weights, "--device", "cpu"])
    assert _mode(icz) == 0o604 and icz.read_bytes()[:2] == b"IC"
    assert _mode(png) == 0o660 and png.read_bytes()[:4] == b"\x89PNG"


def test_archive_writers_get_the_umask_mode(tmp_path, umask, pngs, tiny_weights):
    """pack (its partial and its archive), add (in place), merge, unpack."""
    want = 0o666 & ~umask
    a, b, merged = tmp_path / "a.icza", tmp_path / "b.icza", tmp_path / "m.icza"
    _run(["pack", pngs / "p0.png", pngs / "p1.png", "-o", a, "-m", tiny_weights, *FAST])
    _run(["pack", pngs / "p2.png", "-o", b, "-m", tiny_weights, *FAST])
    assert _mode(a) == want and _mode(b) == want
    a.chmod(0o640)
    _run(["add", a, pngs / "p3.png", "-m", tiny_weights, "--device", "cpu"])
    assert _mode(a) == 0o640  # appended in place: the archive keeps its mode
    _run(["merge", a, b, "-o", merged])
    assert _mode(merged) == want
    _run(["unpack", merged, "-o", tmp_path / "out", "-m", tiny_weights, "--device", "cpu"])
    out = sorted((tmp_path / "out").glob("*.png"))
    assert [p.stem for p in out] == ["p0", "p1", "p2", "p3"] and all(_mode(p) == want for p in out)
    _no_temporaries(tmp_path)


def test_partial_pack_gets_the_umask_mode(tmp_path, umask):
    header = icza.ArchiveHeader("ab" * 32, "t", 32, 8, 3.0, 4, icza.canonical_config({}))
    partial = tmp_path / "a.icza.partial"
    icza.create_archive(partial, header)
    assert _mode(partial) == 0o666 & ~umask


def test_pack_force_keeps_the_mode_of_the_archive_it_replaces(tmp_path, pngs, tiny_weights):
    a = tmp_path / "a.icza"
    _run(["pack", pngs / "p0.png", "-o", a, "-m", tiny_weights, *FAST])
    a.chmod(0o604)
    before = a.read_bytes()
    _run(["pack", pngs / "p0.png", pngs / "p1.png", "-o", a, "--force", "-m", tiny_weights, *FAST])
    assert _mode(a) == 0o604 and a.read_bytes() != before
    _run(["merge", a, "-o", a.with_name("m.icza")])
    a.with_name("m.icza").chmod(0o600)
    _run(["merge", a, "-o", a.with_name("m.icza"), "--force"])
    assert _mode(a.with_name("m.icza")) == 0o600
    _no_temporaries(tmp_path)


# --- model versions ---------------------------------------------------------------------------

def test_every_registered_version_is_distinct_and_the_newest_is_what_a_name_means():
    assert sorted(m.key for m in registry.MODELS) == [
        "airplanes32@1", "airplanes32@2", "automobiles32@1", "automobiles32@2", "automobiles32@3", "flowers32@1", "flowers32@2",
        "flowers32@3", "flowers64@1", "flowers64@2", "flowers64@3"]
    keys = [m.key for m in registry.MODELS]
    assert len(set(keys)) == len(keys)
    # the fingerprint is a file's only link to its generator: no two versions may share one
    assert len({m.fingerprint for m in registry.MODELS}) == len(registry.MODELS)
    assert len({m.sha256 for m in registry.MODELS}) == len(registry.MODELS)
    for name, info in registry.REGISTRY.items():
        assert info.version == max(m.version for m in registry.MODELS if m.name == name)
    assert registry.find("airplanes32") is registry.find("airplanes32@2") is registry.REGISTRY["airplanes32"]
    assert registry.find("airplanes32@1") is not registry.find("airplanes32")
    assert registry.find("airplanes32@3") is None and registry.find("nope") is None
    assert registry.find("flowers64") is registry.find("flowers64@3") is not registry.find("flowers64@2")
    assert registry.find("automobiles32") is registry.find("automobiles32@3") is not registry.find("automobiles32@2")
    assert registry.find("flowers32") is registry.find("flowers32@3") is not registry.find("flowers32@2")


def test_models_command_lists_versions_and_fingerprints():
    rows = json.loads(_run(["models", "--json"]).stdout)
    assert {(r["name"], r["version"], r["fingerprint"]) for r in rows} == {
        (m.name, m.version, m.fingerprint.hex()) for m in registry.MODELS}
    assert all(r["key"] == f"{r['name']}@{r['version']}" for r in rows)
    assert sorted(r["key"] for r in rows if not r["newest"]) == [  # the old versions stay listed
        "airplanes32@1", "automobiles32@1", "automobiles32@2", "flowers32@1", "flowers32@2", "flowers64@1",
        "flowers64@2"]
    text = _run(["models"]).stdout
    assert "version" in text.splitlines()[0] and "d7a577" in text


@pytest.fixture()
def two_versions(monkeypatch, tmp_path):
    """A registry in which model "t" was retrained: version 1 (tiny_nets(0)) and version 2 (tiny_nets(1))."""
    infos = []
    for version, seed in ((1, 0), (2, 1)):
        g, e = tiny_nets(seed)
        gb, eb = weights_bytes("generator", g, TINY), weights_bytes("encoder", e, TINY)
        suffix = "" if version == 1 else f".v{version}"
        (tmp_path / f"t{suffix}.pt").write_bytes(gb)
        (tmp_path / f"t{suffix}.encoder.pt").write_bytes(eb)
        infos.append(ModelInfo("t", f"t{suffix}.pt", 32, 8, hashlib.sha256(gb).hexdigest(), f"t{suffix}.encoder.pt",
                               hashlib.sha256(eb).hexdigest(), version=version,
                               default_prior_weight=0.02 if version == 1 else 0.2,
                               prior_weights=() if version == 1 else ((5, 0.0),)))
    models = tuple(infos)
    monkeypatch.setattr(registry, "MODELS", models)
    monkeypatch.setattr(registry, "REGISTRY", registry._newest(models))
    monkeypatch.setattr(registry, "OLDER", (infos[0],))
    monkeypatch.setattr(zoo, "_read_package_file", lambda name: (tmp_path / name).read_bytes())
    monkeypatch.setattr(codec_module, "_codecs", {})  # compress(model="t") must not leave a codec of this "t" behind
    load_model.cache_clear()
    yield infos
    load_model.cache_clear()


def test_a_retrained_model_is_a_new_version_and_the_old_files_still_decode(two_versions, tmp_path):
    v1, v2 = two_versions
    assert load_model("t").sha256 == v2.sha256 and load_model("t@1").sha256 == v1.sha256
    assert load_model("t@1").name == "t"  # files and archive headers carry the plain name
    codes = np.random.default_rng(0).integers(0, 16, 8)
    old = Codec("t@1", "cpu")
    data = old.encode(codes, 4)
    assert model_of_file(data) == "t@1"
    assert np.array_equal(decompress(data, device="cpu"), old.decode_codes(codes[None], 4)[0])
    new = Codec("t", "cpu")
    assert new.model.sha256 == v2.sha256 and model_of_file(new.encode(codes, 4)) == "t@2"
    with pytest.raises(InvcompError, match=r"model 't' version 1 \(t@1\), not t"):
        new.decode(data)  # asked for the newest, given a file of version 1: the message names the version
    header = icza.ArchiveHeader(v1.sha256, "t", 32, 8, 3.0, 4, icza.canonical_config({}))
    assert codec_for(header, device="cpu").model.sha256 == v1.sha256  # an archive of version 1 decodes with it
    rows = json.loads(_run(["models", "--json"]).stdout)
    assert [(r["key"], r["newest"]) for r in rows] == [("t@1", False), ("t@2", True)]
    path = tmp_path / "old.icz"
    path.write_bytes(data)
    info = json.loads(_run(["info", path, "--json"]).stdout)
    assert (info["model"], info["model_version"]) == ("t", 1)
    _run(["decode", path, "-o", tmp_path / "old.png", "--device", "cpu"])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "old.png")), old.decode_codes(codes[None], 4)[0])


def test_a_models_default_prior_weight_is_what_fitting_uses(two_versions):
    assert Codec("t@1", "cpu").config().prior_weight == 0.02
    assert Codec("t", "cpu").config().prior_weight == Codec("t", "cpu").config(bits=5).prior_weight == 0.2
    assert Codec("t", "cpu").config(bits=5).prior_at(5) == 0.0 and Codec("t", "cpu").config().prior_at(3) == 0.2
    explicit = Codec("t", "cpu").config(prior_weight=0.0)  # an explicit weight wins, at every depth
    assert explicit.prior_weight == 0.0 and explicit.prior_weights == ()
    image = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    fit = {"model": "t", "device": "cpu", "steps": 30, "bits": 4}
    assert compress(image, **fit) == compress(image, **fit, prior_weight=0.2) != compress(image, **fit, prior_weight=0.0)
    row = json.loads(_run(["models", "--json"]).stdout)[1]
    assert row["prior_weight"] == 0.2 and row["prior_weights"] == {"5": 0.0}


def _one_error_line(r, *needles):
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("invcomp: error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_a_file_of_a_model_not_installed_gets_one_line_saying_where_to_get_it(tmp_path):
    path = tmp_path / "x.icz"
    path.write_bytes(encode_file(Header(bytes.fromhex("abcdef"), 4, 0, None), np.zeros(96, int), 3.0))
    r = runner.invoke(app, ["decode", str(path), "--device", "cpu"])
    _one_error_line(r, "fingerprint abcdef", "later invcomp release", "--model PATH.pt")
    r = _run(["info", str(path)])
    assert "not installed" in r.stdout and "abcdef" in r.stdout


def test_an_archive_of_a_model_not_installed_gets_one_line_saying_where_to_get_it(tmp_path):
    header = icza.ArchiveHeader("ab" * 32, "retrained", 32, 8, 3.0, 4, icza.canonical_config({}))
    path = tmp_path / "x.icza"
    path.write_bytes(icza.build_archive(header, [icza.Record("a", np.zeros(8, np.int64))]))
    r = runner.invoke(app, ["unpack", str(path), "-o", str(tmp_path / "out"), "--device", "cpu"])
    _one_error_line(r, "'retrained'", "sha256 abababababab", "later invcomp release", "--model PATH.pt")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
