"""Choosing the torch device."""
from __future__ import annotations

import torch

from invcomp.errors import InvcompError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' is CUDA when present, else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvcompError("--device cuda: no CUDA device is available")
        return torch.device(name)
    raise InvcompError(f"unknown device {name!r} (auto, cpu or cuda)")
