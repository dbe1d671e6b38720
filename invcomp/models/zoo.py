"""Loading models: registered ones (weights checked against the registry's sha256), custom
weight files, and models built from bytes (tests). Everything here returns a `Model`."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Union

import torch

from invcomp.errors import InvcompError
from invcomp.models import registry
from invcomp.models.nets import Encoder, Generator, NetConfig
from invcomp.models.weights import load_net


@dataclass(frozen=True, eq=False)
class Model:
    """A loaded generator (and optional encoder) with its identity."""

    name: str
    generator: Generator
    encoder: Encoder | None
    sha256: str
    default_bits: int = 4
    default_prior_weight: float = 0.02  # the inversion's, and its schedule per depth: see registry.ModelInfo
    prior_weights: tuple[tuple[int, float], ...] = ()

    @property
    def config(self) -> NetConfig:
        return self.generator.cfg

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.sha256)[:3]

    @classmethod
    def from_bytes(cls, name: str, generator: bytes, encoder: bytes | None = None, default_bits: int = 4,
                   default_prior_weight: float = 0.02, prior_weights: tuple[tuple[int, float], ...] = ()) -> Model:
        """A model from weight-file contents (for custom and test models; no registry check)."""
        g = load_net(generator, "generator", name)
        e = load_net(encoder, "encoder", name + " encoder") if encoder is not None else None
        if e is not None and e.cfg != g.cfg:
            raise InvcompError(f"{name}: encoder and generator configurations differ")
        return cls(name, g, e, hashlib.sha256(generator).hexdigest(), default_bits, default_prior_weight, prior_weights)

    @classmethod
    def from_files(cls, generator: Path, encoder: Path | None = None, default_bits: int = 4) -> Model:
        enc = encoder.read_bytes() if encoder else None
        return cls.from_bytes(generator.stem, generator.read_bytes(), enc, default_bits)


SOURCE_TREE_WEIGHTS = Path(__file__).resolve().parents[2] / "pretrained"


def _read_package_file(filename: str) -> bytes:
    """Weights from the installed package data, or from pretrained/ when running from a checkout."""
    try:
        return resources.files("invcomp.pretrained").joinpath(filename).read_bytes()
    except (FileNotFoundError, ModuleNotFoundError):
        pass
    try:
        return (SOURCE_TREE_WEIGHTS / filename).read_bytes()
    except FileNotFoundError:
        raise InvcompError(f"weights file {filename} is not installed (reinstall invcomp; `invcomp models` lists "
                           "the registered versions)") from None


def _checked(filename: str, sha256: str) -> bytes:
    data = _read_package_file(filename)
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise InvcompError(f"{filename}: sha256 {actual[:12]}... does not match the registry ({sha256[:12]}...); refusing to load")
    return data


@lru_cache(maxsize=8)
def load_model(name: str) -> Model:
    """A registered model, its weights checked against the registry's sha256: a plain name is its
    newest version, `name@version` that version (the Model is named by the plain name either way)."""
    info = registry.find(name)
    if info is None:
        older = [m.key for m in registry.OLDER]
        raise InvcompError(f"unknown model {name!r}; known: {', '.join([*registry.REGISTRY, *older]) or 'none'}")
    g = _checked(info.file, info.sha256)
    e = _checked(info.encoder_file, info.encoder_sha256) if info.encoder_file else None
    model = Model.from_bytes(info.name, g, e, info.default_bits, info.default_prior_weight, info.prior_weights)
    if model.config.resolution != info.resolution or model.config.latent_dim != info.latent_dim:
        raise InvcompError(f"{name}: weights do not match the registry's resolution / latent size")
    return model


def to_device(model: Model, device: torch.device) -> Model:
    model.generator.to(device)
    if model.encoder is not None:
        model.encoder.to(device)
    return model


def resolve_model(model: Union[str, os.PathLike, Model]) -> Model:
    """A Model object, a registered name, or the path of a custom generator .pt (encoder beside it)."""
    if isinstance(model, Model):
        return model
    if str(model).endswith(".pt"):
        path = Path(model)
        if not path.is_file():
            raise InvcompError(f"{path}: no such weights file")
        encoder = path.with_name(path.stem + ".encoder.pt")
        return Model.from_files(path, encoder if encoder.is_file() else None)
    return load_model(str(model))
