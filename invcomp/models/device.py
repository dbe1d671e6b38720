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


PRECISIONS = ("auto", "fp32", "bf16")


def bf16_native(device: torch.device) -> bool:
    """Whether the device computes bf16 matrix products natively: CUDA with bf16 support, or a CPU
    whose flags name AVX-512 BF16 or AMX BF16 (elsewhere bf16 is emulated and buys nothing)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def pick_precision(name: str, device: torch.device) -> torch.dtype:
    """The generator's compute type while fitting: 'auto' is bf16 where the device has it natively,
    else fp32; 'fp32' and 'bf16' force one. Decoding is always fp32."""
    if name not in PRECISIONS:
        raise InvcompError(f"unknown precision {name!r} (auto, fp32 or bf16)")
    if name == "auto":
        return torch.bfloat16 if bf16_native(device) else torch.float32
    return torch.bfloat16 if name == "bf16" else torch.float32
