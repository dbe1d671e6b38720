
import pytest
import torch
from conftest import TINY, tiny_nets

from invcomp.errors import InvcompError
from invcomp.models import registry
from invcomp.models.weights import load_net, weights_bytes
from invcomp.models.zoo import load_model


def test_registered_model_loads_with_checked_hash(fake_registry):
    m = load_model("t")
    assert m.encoder is not None and m.config == TINY
    assert registry.model_for_fingerprint(m.fingerprint).name == "t"


def test_tampered_weights_refused(fake_registry):
    path = fake_registry / "t.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(InvcompError, match="does not match the registry"):
        load_model("t")


def test_unknown_model():
    with pytest.raises(InvcompError, match="unknown model 'nope'"):
        load_model("nope")


def test_strict_loading_and_kind_checked():
    g, e = tiny_nets(0)
    data = weights_bytes("generator", g, TINY)
    with pytest.raises(InvcompError, match="not an invcomp encoder"):
        load_net(data, "encoder", "x")
    import io

    obj = torch.load(io.BytesIO(data), weights_only=True)
    obj["state_dict"].pop(next(iter(obj["state_dict"])))
    buf = io.BytesIO()
    torch.save(obj, buf)
    with pytest.raises(InvcompError, match="do not match"):
        load_net(buf.getvalue(), "generator", "x")


def test_pickle_payload_cannot_run(tmp_path):
    import io

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    buf = io.BytesIO()
    torch.save({"format": 1, "kind": "generator", "x": Evil()}, buf)
    with pytest.raises(InvcompError, match="not a loadable"):
        load_net(buf.getvalue(), "generator", "evil.pt")
    assert not (tmp_path / "pwned").exists()
