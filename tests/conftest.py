import os
from pathlib import Path

import numpy as np
import pytest
import torch

from invcomp.nets import Encoder, Generator, NetConfig, init_weights
from invcomp.registry import Model
from invcomp.weights import save_weights, weights_bytes

torch.set_num_threads(1)
TINY = NetConfig(resolution=32, latent_dim=8, width=8)
DATA = Path(os.environ.get("INVCOMP_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


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
