import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from invcomp import codec as codec_module
from invcomp.models import registry, zoo
from invcomp.models.nets import Encoder, Generator, NetConfig, init_weights
from invcomp.models.registry import ModelInfo
from invcomp.models.weights import save_weights, weights_bytes
from invcomp.models.zoo import Model, load_model

torch.set_num_threads(1)
TINY = NetConfig(resolution=32, latent_dim=8, width=8)
DATA = Path(os.environ.get("INVCOMP_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def one_line_failure(args: list[str], match: str) -> None:
    """The CLI fails as bad input must: exit code 2, one line `invcomp: error: ...` naming `match`, no traceback."""
    from typer.testing import CliRunner

    from invcomp.cli import app

    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("invcomp: error:") and match in lines[0], r.stderr


def tiny_nets(seed: int = 0, cfg: NetConfig = TINY) -> tuple[Generator, Encoder]:
    torch.manual_seed(seed)
    g, e = Generator(cfg), Encoder(cfg)
    init_weights(g)
    init_weights(e)
    return g.eval(), e.eval()


@pytest.fixture(scope="session")
def tiny_model() -> Model:
    g, e = tiny_nets(0)
    return Model.from_bytes("tiny", weights_bytes("generator", g, TINY), weights_bytes("encoder", e, TINY))


@pytest.fixture(scope="session")
def other_model() -> Model:
    g, _ = tiny_nets(1)
    return Model.from_bytes("other", weights_bytes("generator", g, TINY))


@pytest.fixture()
def tiny_weights(tmp_path) -> Path:
    g, e = tiny_nets(0)
    path = tmp_path / "tiny.pt"
    save_weights(path, "generator", g, TINY)
    save_weights(tmp_path / "tiny.encoder.pt", "encoder", e, TINY)
    return path


@pytest.fixture(scope="session")
def rng_image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)


@pytest.fixture()
def fake_registry(monkeypatch, tmp_path):
    """The registry holding one tiny model "t" whose weights live in tmp_path."""
    g, e = tiny_nets(0)
    gb, eb = weights_bytes("generator", g, TINY), weights_bytes("encoder", e, TINY)
    (tmp_path / "t.pt").write_bytes(gb)
    (tmp_path / "t.encoder.pt").write_bytes(eb)
    info = ModelInfo("t", "t.pt", 32, 8, hashlib.sha256(gb).hexdigest(), "t.encoder.pt", hashlib.sha256(eb).hexdigest())
    monkeypatch.setattr(registry, "REGISTRY", {"t": info})
    monkeypatch.setattr(zoo, "_read_package_file", lambda name: (tmp_path / name).read_bytes())
    monkeypatch.setattr(codec_module, "_codecs", {})  # codecs cached by name ("t") stay with this registry
    load_model.cache_clear()
    yield tmp_path
    load_model.cache_clear()


def pytest_collection_modifyitems(items):
    """Tests that use the pretrained models are slow too (`scripts/test.sh --fast` skips both)."""
    for item in items:
        if item.get_closest_marker("pretrained"):
            item.add_marker(pytest.mark.slow)


def data_file(name: str) -> Path:
    """A file of the data folder (INVCOMP_DATA, else ../shared/data beside the checkout); the test
    is skipped, saying so, on a machine without it (CI has ../shared and runs these tests)."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"needs {name} from the data folder {DATA}, which this machine does not have "
                    "(set INVCOMP_DATA, or make it with `invcomp data prepare`)")
    return path


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Three smooth 32 x 32 test images with a little noise (masks and ablation tests)."""
    from PIL import Image

    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (3, 4, 4, 3)).astype(np.uint8)
    smooth = np.stack([np.asarray(Image.fromarray(b).resize((32, 32), Image.BILINEAR)) for b in base])
    return np.clip(smooth.astype(int) + rng.integers(-10, 11, smooth.shape), 0, 255).astype(np.uint8)


@pytest.fixture()
def no_network(monkeypatch):
    """Any socket connection fails the test (data preparation is tested without the network)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "io"))
    from fake_sources import refuse_network

    refuse_network(monkeypatch)


@pytest.fixture()
def unchecked_md5(monkeypatch):
    """torchvision's md5 checks off for the fake data sets (their contents differ from the real ones)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "io"))
    from fake_sources import skip_md5

    skip_md5(monkeypatch)
