"""The learned peer: CompressAI's factorized-prior model (Ballé et al. 2018, `bmshj2018-factorized`)
trained on a domain's training file, so the benches can put a learned codec beside invcomp.

Needs the optional extra (`pip install .[peers]`); nothing else in invcomp imports this module.
Training runs for a stated CPU budget (minutes of wall time at a stated thread count), checkpoints
every few minutes and resumes from its checkpoint. Measuring codes each test image with the model's
own entropy coder (`model.compress`), so the bytes are real bitstream bytes (the latent's strings;
the 2 x 2 latent shape is fixed by the domain and not counted), and decodes with `model.decompress`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from invcomp.errors import InvcompError
from invcomp.metrics import ssim01, to_uint8, to_unit

OBJECTIVES = ("mse", "ssim")
CHECKPOINT_SECONDS = 180.0


@dataclass(frozen=True)
class PeerConfig:
    """One trained point: the objective (loss = bpp + lmbda * distortion) and the training budget.

    Distortion is 255^2 * MSE (CompressAI's convention) or 1 - SSIM (invcomp's SSIM, the metric we report)."""

    objective: str
    lmbda: float
    minutes: float
    n: int = 96  # CompressAI's N and M for its lowest-rate points
    m: int = 128
    batch_size: int = 16
    lr: float = 1e-4
    final_lr: float = 1e-5  # for the last `anneal` fraction of the budget
    anneal: float = 0.15
    seed: int = 0
    crop: int = 0  # train on random crops of this side (0: whole images); the model is fully convolutional

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise InvcompError(f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        if not (self.lmbda > 0 and self.minutes > 0):
            raise InvcompError("lmbda and minutes must be positive")
        if self.crop < 0 or self.crop % 16:
            raise InvcompError(f"crop must be 0 or a positive multiple of 16 (the model's stride), not {self.crop}")


def compressai():
    """The compressai package, or a one-line error naming the extra."""
    try:
        import compressai as ca
        import compressai.models  # noqa: F401
    except ImportError as e:
        raise InvcompError(f"the learned peer needs CompressAI: pip install '.[peers]' ({e})") from None
    return ca


def build(cfg: PeerConfig):
    from compressai.models import FactorizedPrior  # noqa: PLC0415  (optional extra)

    compressai()
    torch.manual_seed(cfg.seed)
    return FactorizedPrior(cfg.n, cfg.m)


def distortion(cfg: PeerConfig, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if cfg.objective == "mse":
        return 255.0**2 * torch.mean((x_hat - x) ** 2)
    return 1.0 - ssim01(x_hat.clamp(0, 1), x).mean()


def _bpp(likelihoods: dict, pixels: int) -> torch.Tensor:
    return sum(torch.log(v).sum() for v in likelihoods.values()) / (-math.log(2) * pixels)


def train(cfg: PeerConfig, images: np.ndarray, checkpoint: Path, log=print) -> torch.nn.Module:
    """Train on (N, S, S, 3) uint8 images until `cfg.minutes` of training time have passed (resuming
    from `checkpoint` if it exists); returns the model with its entropy tables updated."""
    side = cfg.crop or images.shape[1]
    if side > min(images.shape[1:3]):
        raise InvcompError(f"crop {side} is larger than the {images.shape[1]}x{images.shape[2]} images")
    model = build(cfg)
    main = [p for k, p in model.named_parameters() if not k.endswith(".quantiles")]
    aux = [p for k, p in model.named_parameters() if k.endswith(".quantiles")]
    opt, aux_opt = torch.optim.Adam(main, lr=cfg.lr), torch.optim.Adam(aux, lr=1e-3)
    data = to_unit(images)
    gen = torch.Generator().manual_seed(cfg.seed)
    state = {"seconds": 0.0, "steps": 0}
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if {"crop": 0, **saved["config"]} != asdict(cfg):  # checkpoints from before `crop` existed had none
            raise InvcompError(f"{checkpoint} was made for another configuration: {saved['config']}")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        aux_opt.load_state_dict(saved["aux_opt"])
        gen.set_state(saved["gen"])
        state = saved["state"]
        log(json.dumps({"resumed": str(checkpoint), **state}))
    budget, pixels = 60.0 * cfg.minutes, cfg.batch_size * side * side
    model.train()
    last_save, window = state["seconds"], []
    while state["seconds"] < budget:
        t0 = time.perf_counter()
        lr = cfg.final_lr if state["seconds"] >= (1 - cfg.anneal) * budget else cfg.lr
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(len(data), (cfg.batch_size,), generator=gen)
        x = data[idx]
        flip = torch.rand(cfg.batch_size, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if cfg.crop:  # one random window per batch
            i, j = (int(torch.randint(n - side + 1, (1,), generator=gen)) for n in data.shape[2:])
            x = x[:, :, i : i + side, j : j + side]
        out = model(x)
        bpp = _bpp(out["likelihoods"], pixels)
        d = distortion(cfg, out["x_hat"], x)
        loss = bpp + cfg.lmbda * d
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main, 1.0)
        opt.step()
        aux_loss = model.aux_loss()
        aux_opt.zero_grad()
        aux_loss.backward()
        aux_opt.step()
        state["seconds"] += time.perf_counter() - t0
        state["steps"] += 1
        window.append((loss.item(), bpp.item(), d.item()))
        if state["seconds"] - last_save >= CHECKPOINT_SECONDS or state["seconds"] >= budget:
            mean = np.mean(window, 0)
            log(json.dumps({"step": state["steps"], "minutes": round(state["seconds"] / 60, 2), "lr": lr,
                            "loss": round(float(mean[0]), 4), "bpp": round(float(mean[1]), 4),
                            "distortion": round(float(mean[2]), 4), "aux": round(float(aux_loss), 2)}))
            window = []
            _save(checkpoint, {"config": asdict(cfg), "model": model.state_dict(), "opt": opt.state_dict(),
                               "aux_opt": aux_opt.state_dict(), "gen": gen.get_state(), "state": state})
            last_save = state["seconds"]
    model.update(force=True)
    return model.eval()


def _save(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def save_weights(model: torch.nn.Module, cfg: PeerConfig, path: Path, trained: dict) -> None:
    """`trained` (how it was trained) is stored as plain JSON values, so the file loads with weights_only."""
    plain = json.loads(json.dumps(trained, default=str))
    _save(path, {"config": asdict(cfg), "trained": plain, "model": model.state_dict()})


def load_weights(path: Path) -> tuple[torch.nn.Module, PeerConfig, dict]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = PeerConfig(**saved["config"])
    model = build(cfg)
    model.load_state_dict(saved["model"])  # CompressAI resizes the entropy tables' buffers itself
    model.update(force=True)
    return model.eval(), cfg, saved["trained"]


@torch.inference_mode()
def measure(model: torch.nn.Module, images: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Per image: the bytes of its bitstream and the decoded picture (uint8), one image at a time."""
    sizes, decoded = [], []
    for x in to_unit(images):
        out = model.compress(x[None])
        sizes.append(sum(len(s[0]) for s in out["strings"]))
        x_hat = model.decompress(out["strings"], out["shape"])["x_hat"]
        decoded.append(to_uint8(x_hat)[0])
    return sizes, np.stack(decoded)
