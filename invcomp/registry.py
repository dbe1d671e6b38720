"""The table of pretrained generators, and loading a model with its checks."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch

from .errors import InvcompError
from .nets import Encoder, Generator, NetConfig
from .weights import load_net


@dataclass(frozen=True)
class ModelInfo:
    name: str
    file: str  # generator weights, in the package folder invcomp/pretrained
    resolution: int
    latent_dim: int
    sha256: str  # of the generator file; its first 3 bytes are the .icz fingerprint
    encoder_file: str | None = None
    encoder_sha256: str | None = None
    default_bits: int = 4
    domain: str = ""
    test_data: str = ""  # the held-out test file of its domain (in the data folder)

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.sha256)[:3]


REGISTRY: dict[str, ModelInfo] = {
    m.name: m
    for m in [
        ModelInfo("airplanes32", "airplanes32.pt", 32, 96, "d7a577045bad3f3b21a52d2964d51234899734036c77bae702a38898e79fc11b",
                  "airplanes32.encoder.pt", "455af44a27fdd7e22e54373e11757d1a2306a521faa949568b4a37131232f183",
                  default_bits=3, domain="CIFAR-10 airplanes (pretrained/airplanes32.md)",
                  test_data="cifar10_airplane_test.npz"),
        ModelInfo("automobiles32", "automobiles32.pt", 32, 96, "09b0978e4a431ae5b7335daec612636dca6505da8f577471ae331856b0b17681",
                  "automobiles32.encoder.pt", "7604a107ba9f17d2ae173247f8b5093114a9a42a26eceda29227d63a2846d604",
                  default_bits=3, domain="CIFAR-10 automobiles (pretrained/automobiles32.md)",
                  test_data="cifar10_automobile_test.npz"),
        ModelInfo("flowers32", "flowers32.pt", 32, 128, "16c41f1444a1035b7501444cac14b2fce7ff8c0a2421f2c2a584cc8b591808d6",
                  "flowers32.encoder.pt", "b952c5b07ba42e4d3e30f2894480c96b7b251f9d8c64e3aa730d935e6008a90c",
                  default_bits=3, domain="Oxford flowers, 32x32 (pretrained/flowers32.md)",
                  test_data="flowers_32_test.npz"),
        ModelInfo("flowers64", "flowers64.pt", 64, 256, "b489e5127b79761c6da6de638290ed9bd435df1ea2b19733bceacc6e0e5899e6",
                  "flowers64.encoder.pt", "1d180ad3b381926836531b99e28cadb57497803a88f01f64d99f93eec154bc59",
                  default_bits=3, domain="Oxford flowers, 64x64 (pretrained/flowers64.md)",
                  test_data="flowers_64_test.npz"),
    ]
}


@dataclass(frozen=True, eq=False)
class Model:
    """A loaded generator (and optional encoder) with its identity."""

    name: str
    generator: Generator
    encoder: Encoder | None
    sha256: str
    default_bits: int = 4

    @property
    def config(self) -> NetConfig:
        return self.generator.cfg

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.sha256)[:3]

    @classmethod
    def from_bytes(cls, name: str, generator: bytes, encoder: bytes | None = None, default_bits: int = 4) -> "Model":
        """A model from weight-file contents (for custom and test models; no registry check)."""
        g = load_net(generator, "generator", name)
        e = load_net(encoder, "encoder", name + " encoder") if encoder is not None else None
        if e is not None and e.cfg != g.cfg:
            raise InvcompError(f"{name}: encoder and generator configurations differ")
        return cls(name, g, e, hashlib.sha256(generator).hexdigest(), default_bits)

    @classmethod
    def from_files(cls, generator: Path, encoder: Path | None = None, default_bits: int = 4) -> "Model":
        enc = encoder.read_bytes() if encoder else None
        return cls.from_bytes(generator.stem, generator.read_bytes(), enc, default_bits)


SOURCE_TREE_WEIGHTS = Path(__file__).resolve().parent.parent / "pretrained"


def _read_package_file(filename: str) -> bytes:
    """Weights from the installed package data, or from pretrained/ when running from a checkout."""
    try:
        return resources.files("invcomp.pretrained").joinpath(filename).read_bytes()
    except (FileNotFoundError, ModuleNotFoundError):
        pass
    try:
        return (SOURCE_TREE_WEIGHTS / filename).read_bytes()
    except FileNotFoundError:
        raise InvcompError(f"weights file {filename} is not installed") from None


def _checked(filename: str, sha256: str) -> bytes:
    data = _read_package_file(filename)
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise InvcompError(f"{filename}: sha256 {actual[:12]}... does not match the registry ({sha256[:12]}...); refusing to load")
    return data


@lru_cache(maxsize=8)
def load_model(name: str) -> Model:
    """A registered model, its weights checked against the registry's sha256."""
    info = REGISTRY.get(name)
    if info is None:
        raise InvcompError(f"unknown model {name!r}; known: {', '.join(REGISTRY) or 'none'}")
    g = _checked(info.file, info.sha256)
    e = _checked(info.encoder_file, info.encoder_sha256) if info.encoder_file else None
    model = Model.from_bytes(name, g, e, info.default_bits)
    if model.config.resolution != info.resolution or model.config.latent_dim != info.latent_dim:
        raise InvcompError(f"{name}: weights do not match the registry's resolution / latent size")
    return model


def model_for_fingerprint(fingerprint: bytes) -> ModelInfo | None:
    for info in REGISTRY.values():
        if info.fingerprint == fingerprint:
            return info
    return None


def to_device(model: Model, device: torch.device) -> Model:
    model.generator.to(device)
    if model.encoder is not None:
        model.encoder.to(device)
    return model
