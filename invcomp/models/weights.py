"""Saving and loading network weights as plain tensor dicts (loadable with weights_only=True)."""
from __future__ import annotations

import hashlib
import io
import math
import os
from pathlib import Path

import torch

from invcomp.errors import InvcompError
from invcomp.files import write_atomic
from invcomp.models.nets import Encoder, Generator, NetConfig

WEIGHTS_FORMAT = 1


def weights_bytes(kind: str, module: torch.nn.Module, cfg: NetConfig) -> bytes:
    buf = io.BytesIO()
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    torch.save({"format": WEIGHTS_FORMAT, "kind": kind, "config": cfg.to_dict(), "state_dict": state}, buf)
    return buf.getvalue()


def save_weights(path: str | os.PathLike, kind: str, module: torch.nn.Module, cfg: NetConfig) -> str:
    """Write weights atomically; returns the file's sha256 (hex)."""
    data = weights_bytes(kind, module, cfg)
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _config(raw: object, origin: str) -> NetConfig:
    """The network configuration stored in a weights file, type-checked before anything is built."""
    fields = {"resolution": int, "latent_dim": int, "width": int, "latent_range": float}
    if not isinstance(raw, dict) or set(raw) != set(fields):
        raise InvcompError(f"{origin}: weights file has no valid network configuration")
    for name, typ in fields.items():
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, (int, float) if typ is float else int):
            raise InvcompError(f"{origin}: network configuration field {name} is not a number")
    if not (math.isfinite(raw["latent_range"]) and 0 < raw["latent_range"] <= 100):
        raise InvcompError(f"{origin}: latent range must be in (0, 100], not {raw['latent_range']}")
    return NetConfig(**raw)  # checks the sizes (InvcompError)


def load_net(data: bytes, kind: str, origin: str) -> torch.nn.Module:
    """Build a Generator or Encoder from weight-file bytes: safe unpickling, strict loading."""
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # any unpickling failure means a file we refuse
        raise InvcompError(f"{origin}: not a loadable invcomp weights file ({type(e).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != WEIGHTS_FORMAT or obj.get("kind") != kind:
        raise InvcompError(f"{origin}: not an invcomp {kind} weights file (format {WEIGHTS_FORMAT})")
    cfg = _config(obj.get("config"), origin)
    cls = Generator if kind == "generator" else Encoder
    state = obj.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InvcompError(f"{origin}: not an invcomp {kind} weights file (no tensor state_dict)")
    with torch.device("meta"):  # the architecture's shapes, without allocating it: a file may claim any size
        shapes = {k: tuple(v.shape) for k, v in cls(cfg).state_dict().items()}
    if shapes != {k: tuple(v.shape) for k, v in state.items()}:
        raise InvcompError(f"{origin}: weights do not match the {kind} architecture (tensor names or shapes differ)")
    try:
        net = cls(cfg)
        net.load_state_dict(state, strict=True)
    except (KeyError, TypeError, RuntimeError) as e:
        raise InvcompError(f"{origin}: weights do not match the {kind} architecture ({str(e).splitlines()[0]})") from None
    net.eval()
    net.requires_grad_(False)
    return net
