"""Hostile weights (issue 7): pickle payloads that must not run, tampered or oversized weights, bad stored configs."""
import ast
import hashlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, one_line_failure, tiny_nets
from PIL import Image

from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.formats.icz import Header, encode_file
from invcomp.models import weights
from invcomp.models.weights import load_net, weights_bytes
from invcomp.models.zoo import load_model

ROOT = Path(__file__).resolve().parents[2]


def test_every_torch_load_in_the_package_is_weights_only():
    calls = []
    for path in (ROOT / "invcomp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                calls.append((path.name, node.lineno, ok))
    assert calls, "expected torch.load calls in weights.py and train.py"
    assert all(ok for _, _, ok in calls), [c for c in calls if not c[2]]
    for path in (ROOT / "invcomp").rglob("*.py"):  # no other unpickler either
        text = path.read_text()
        assert "pickle.load" not in text and "allow_pickle=True" not in text, path.name


def _evil_payloads(marker: Path):
    class System:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    class Exec:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').close()",))

    return [System(), Exec()]


def _evil_files(marker: Path) -> list[bytes]:
    """Weights-shaped files whose unpickling would create `marker`: torch zip and legacy formats,
    the payload inside the state dict and as the whole object, and a bare pickle."""
    out = []
    for payload in _evil_payloads(marker):
        g, _ = tiny_nets(0)
        state = {k: v for k, v in g.state_dict().items()}
        for obj in ({"format": 1, "kind": "generator", "config": TINY.to_dict(), "state_dict": state, "x": payload},
                    payload):
            for zipped in (True, False):
                buf = io.BytesIO()
                torch.save(obj, buf, _use_new_zipfile_serialization=zipped)
                out.append(buf.getvalue())
        out.append(pickle.dumps(payload))
    return out


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_payloads_would_run_but_cannot(tmp_path):
    marker = tmp_path / "pwned"
    files = _evil_files(marker)
    # the payloads are real: an unsafe load runs them (so this test can fail)
    for unsafe_load in (lambda: torch.load(io.BytesIO(files[0]), weights_only=False), lambda: pickle.loads(files[-1])):
        unsafe_load()
        assert marker.exists()
        marker.unlink()
    for i, data in enumerate(files):
        with pytest.raises(InvcompError, match="not a loadable invcomp weights file"):
            load_net(data, "generator", f"evil{i}.pt")
        assert not marker.exists()
        path = tmp_path / f"evil{i}.pt"
        path.write_bytes(data)
        with pytest.raises(InvcompError):
            Codec(str(path), "cpu")
        assert not marker.exists()


def test_pickle_payload_through_the_cli(tmp_path, tiny_model):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(_evil_files(marker)[0])
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(src)
    (tmp_path / "files").mkdir()
    icz = tmp_path / "files" / "b.icz"
    icz.write_bytes(encode_file(Header(tiny_model.fingerprint, 4, 0, None), np.zeros(8, int), 3.0))
    one_line_failure(["fit", str(src), "--model", str(evil), "--steps", "1"], "not a loadable invcomp weights file")
    one_line_failure(["decode", str(icz), "--model", str(evil)], "not a loadable invcomp weights file")
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "b.icz", "evil.pt", "files"]


def test_other_valid_weights_under_a_registered_name_are_refused(fake_registry):
    """Not just a flipped bit: a complete, loadable generator with other weights is refused by name,
    and loads only when the user names its file explicitly (a custom model)."""
    good = load_model("t")
    other, _ = tiny_nets(5)
    swapped = weights_bytes("generator", other, TINY)
    (fake_registry / "t.pt").write_bytes(swapped)
    load_model.cache_clear()
    with pytest.raises(InvcompError, match="does not match the registry"):
        load_model("t")
    with pytest.raises(InvcompError, match="does not match the registry"):
        Codec("t", "cpu")
    custom = Codec(str(fake_registry / "t.pt"), "cpu").model
    assert custom.sha256 == hashlib.sha256(swapped).hexdigest() != good.sha256
    # a file made with the registered model is refused by the custom one (the fingerprint differs)
    data = encode_file(Header(good.fingerprint, 4, 0, None), np.zeros(8, int), 3.0)
    with pytest.raises(InvcompError, match="model 't'"):
        Codec(custom, "cpu").decompress(data)


def _weights_file(config, state=None, kind="generator"):
    if state is None:
        state = tiny_nets(0)[0].state_dict()
    buf = io.BytesIO()
    torch.save({"format": 1, "kind": kind, "config": config, "state_dict": state}, buf)
    return buf.getvalue()


def test_huge_claimed_architecture_is_refused_without_building_it(monkeypatch):
    """A config claiming the largest network (about 1 GB of parameters) over tiny tensors is refused
    after a shape check on the meta device; no real network is ever allocated."""
    built = []

    class Recording(weights.Generator):
        def __init__(self, cfg):
            super().__init__(cfg)
            built.append(next(self.parameters()).device.type)

    monkeypatch.setattr(weights, "Generator", Recording)
    huge = {"resolution": 64, "latent_dim": 1024, "width": 512, "latent_range": 3.0}
    with pytest.raises(InvcompError, match="do not match the generator architecture"):
        load_net(_weights_file(huge), "generator", "huge.pt")
    assert built == ["meta"]
    built.clear()
    load_net(_weights_file(TINY.to_dict()), "generator", "tiny.pt")  # the recording class works
    assert built == ["meta", "cpu"]


@pytest.mark.parametrize("change", [
    {"latent_range": float("nan")}, {"latent_range": float("inf")}, {"latent_range": -3.0}, {"latent_range": "3"},
    {"width": 8.5}, {"width": True}, {"latent_dim": 0}, {"resolution": 48}, {"extra": 1}, None,
])
def test_bad_stored_config_refused(change):
    cfg = dict(TINY.to_dict(), **change) if change else None
    with pytest.raises(InvcompError):
        load_net(_weights_file(cfg), "generator", "bad.pt")


def test_state_dict_must_hold_tensors():
    with pytest.raises(InvcompError, match="no tensor state_dict"):
        load_net(_weights_file(TINY.to_dict(), state={"net.0.weight": [1, 2, 3]}), "generator", "bad.pt")
    with pytest.raises(InvcompError):
        load_net(_weights_file(TINY.to_dict(), state="nope"), "generator", "bad.pt")
