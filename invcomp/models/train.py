"""Training a generator for one image domain, with its discriminator and (optionally) an encoder.

Three recipes:
- "dcgan": the plain adversarial game; G only learns to fool D.
- "aegan": G is trained jointly with an encoder E under a reconstruction loss
  (1 - SSIM + L1 of G(E(x) + quantization noise) against x) beside the adversarial
  loss, and E's latents are pulled towards N(0, 1) by moment matching. This is built
  for compression: it makes G's range cover real images, not only plausible samples.
- "ae": aegan without the discriminator. Continuing an aegan model this way lifted the
  reconstruction of held-out images at once (version 2 of the 32x32 models, trained as
  aegan with --adv-weight 0, which computes the same loss with the discriminator's work besides).
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from invcomp import distributed
from invcomp.errors import InvcompError
from invcomp.files import write_atomic
from invcomp.io.images import image_grid, write_png
from invcomp.metrics import psnr01, ssim01, to_uint8
from invcomp.models.nets import Discriminator, Encoder, Generator, NetConfig, init_weights
from invcomp.models.weights import save_weights

RECIPES = ("aegan", "ae", "dcgan")


@dataclass(frozen=True)
class TrainConfig:
    net: NetConfig = field(default_factory=NetConfig)
    recipe: str = "aegan"  # aegan: G + E + D; ae: G + E under the reconstruction loss alone; dcgan: G + D
    epochs: int = 100
    batch_size: int = 64
    lr: float = 2e-4
    seed: int = 0
    adv_weight: float = 0.05  # aegan: adversarial weight relative to reconstruction
    l1_weight: float = 1.0
    moment_weight: float = 0.1
    noise_bits: tuple[int, ...] = (3, 4, 5)  # quantization noise widths used in training
    holdout: int = 200  # last images of the training file, never trained on, for validation
    flip: bool = True

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise InvcompError(f"unknown recipe {self.recipe!r} ({', '.join(RECIPES)})")
        if self.epochs < 1 or self.batch_size < 2:
            raise InvcompError("epochs must be >= 1 and batch size >= 2")


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _unit(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


def _rank_seed(seed: int, epoch: int, rank: int) -> int:
    """Each rank's random stream for one epoch of a distributed run: set from (seed, epoch, rank)
    alone, so a resumed run continues with any number of processes."""
    return (seed * 1_000_003 + epoch * 10_007 + rank) % 2**63


class Trainer:
    """Holds networks, optimisers and progress; `run` trains, checkpointing every epoch.

    Under torchrun (`invcomp.distributed` active) G, D and E train inside DistributedDataParallel:
    each rank takes its share of every epoch through a DistributedSampler and --batch-size is the
    global batch (batch_size / world_size per rank, so a run means the same on any number of
    processes); rank 0 alone writes checkpoints, samples and log.jsonl. Checkpoints hold the plain
    modules' state, so a run resumes with any number of processes."""

    def __init__(self, cfg: TrainConfig, images: np.ndarray, work_dir: Path, out: Path, device: torch.device):
        if images.shape[1:3] != (cfg.net.resolution, cfg.net.resolution):
            raise InvcompError(f"training images are {images.shape[1]}x{images.shape[2]}, model is {cfg.net.resolution}")
        if len(images) <= cfg.holdout + cfg.batch_size:
            raise InvcompError(f"too few training images ({len(images)})")
        self.cfg, self.device, self.work_dir, self.out = cfg, device, work_dir, out
        torch.manual_seed(cfg.seed)
        data = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        self.train_set = data[: len(data) - cfg.holdout] if cfg.holdout else data
        self.val_set = data[len(data) - cfg.holdout :] if cfg.holdout else data[:64]
        self.G = Generator(cfg.net).to(device)
        self.D = Discriminator(cfg.net).to(device)
        self.E = Encoder(cfg.net).to(device) if cfg.recipe in ("aegan", "ae") else None
        for m in (self.G, self.D, self.E):
            if m is not None:
                init_weights(m)
        ge_params = list(self.G.parameters()) + (list(self.E.parameters()) if self.E else [])
        self.opt_g = torch.optim.Adam(ge_params, lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.epoch = 0
        self.elapsed = 0.0
        self.best_val = -1.0  # the best held-out SSIM so far (its weights are exported to best_path(out))
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.ddp = distributed.active()
        if cfg.batch_size % self.world:
            raise InvcompError(f"--batch-size {cfg.batch_size} (the global batch) does not split evenly over {self.world} "
                               "processes; pass a multiple of the process count")
        self.local_batch = cfg.batch_size // self.world
        # what training calls: the modules themselves, or their DDP wrappers (checkpoints and exports use the modules)
        self._G, self._D, self._E = (self._wrap(m) for m in (self.G, self.D, self.E))
        self.fixed_z = torch.randn(64, cfg.net.latent_dim, generator=torch.Generator().manual_seed(cfg.seed)).clamp(
            -cfg.net.latent_range, cfg.net.latent_range
        )

    def _wrap(self, m: torch.nn.Module | None):
        if m is None or not self.ddp:
            return m
        import inspect

        from torch.nn.parallel import DistributedDataParallel

        # no buffer sync before each forward: each rank keeps its own BatchNorm running statistics (rank 0's are
        # saved); syncing them before every forward would also break D's repeated forwards within one step
        newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters  # newer torch names it so
        return DistributedDataParallel(m, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       **({"forward_sync_buffers": False} if newer else {"broadcast_buffers": False}))

    # --- checkpoints -------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.work_dir / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        import io

        state = {
            "config": json.dumps(asdict(self.cfg)),
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "best_val": self.best_val,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "E": self.E.state_dict() if self.E else {},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": torch.get_rng_state(),
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        write_atomic(self.checkpoint_path, buf.getvalue())

    def load_checkpoint(self) -> None:
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        if json.loads(state["config"]) != json.loads(json.dumps(asdict(self.cfg))):
            raise InvcompError(f"{self.checkpoint_path}: checkpoint was made with other settings; use a new --work-dir")
        self.G.load_state_dict(state["G"], strict=True)
        self.D.load_state_dict(state["D"], strict=True)
        if self.E:
            self.E.load_state_dict(state["E"], strict=True)
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["rng"].cpu())
        self.epoch, self.elapsed = int(state["epoch"]), float(state["elapsed"])
        self.best_val = float(state.get("best_val", -1.0))

    def warm_start(self, generator: torch.nn.Module, encoder: torch.nn.Module | None) -> None:
        """Start from a published model's generator and encoder (a fresh discriminator and optimisers):
        how a run continues across machines where only the published weights survive, not the checkpoint."""
        if generator.cfg != self.cfg.net:
            raise InvcompError("--init: the model's network configuration differs from the one asked for "
                               f"({generator.cfg} vs {self.cfg.net})")
        self.G.load_state_dict(generator.state_dict(), strict=True)
        if self.E is not None:
            if encoder is None:
                raise InvcompError(f"--init: the model has no encoder, which the {self.cfg.recipe} recipe needs")
            self.E.load_state_dict(encoder.state_dict(), strict=True)

    # --- training ---------------------------------------------------------------
    def _batch(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.train_set[idx].to(self.device).float() / 127.5 - 1
        if self.cfg.flip:
            flip = torch.rand(len(idx), device=self.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x

    def _noise(self, z: torch.Tensor) -> torch.Tensor:
        """Uniform noise of one quantization step, at a bit depth drawn per image."""
        r = self.cfg.net.latent_range
        bits = torch.tensor(self.cfg.noise_bits, device=z.device)[torch.randint(len(self.cfg.noise_bits), (len(z),), device=z.device)]
        step = (2 * r / (2.0**bits - 1))[:, None]
        return (z + (torch.rand_like(z) - 0.5) * step).clamp(-r, r)

    def step(self, x: torch.Tensor) -> dict[str, float]:
        if self.cfg.recipe == "ae":
            return self._reconstruction_step(x)
        cfg, G, D, E = self.cfg, self._G, self._D, self._E
        n, r = len(x), cfg.net.latent_range
        z_rand = torch.randn(n, cfg.net.latent_dim, device=self.device).clamp(-r, r)
        fake = G(z_rand)
        z_enc = E(x) if E else None
        rec = G(self._noise(z_enc)) if E else None
        # discriminator
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = _bce(D(x), 1.0) + _bce(D(fake.detach()), 0.0)
        if rec is not None:
            d_loss = d_loss + _bce(D(rec.detach()), 0.0)
        d_loss.backward()
        self.opt_d.step()
        # generator (and encoder); D's gradients here are thrown away, so DDP need not average them
        self.opt_g.zero_grad(set_to_none=True)
        with D.no_sync() if self.ddp else contextlib.nullcontext():
            adv = _bce(D(fake), 1.0)
            stats = {"d": d_loss.item()}
            if E is None:
                g_loss = adv
            else:
                adv = 0.5 * (adv + _bce(D(rec), 1.0))
                ssim, l1, moments = self._reconstruction_terms(x, rec, z_enc)
                g_loss = (1 - ssim) + cfg.l1_weight * l1 + cfg.adv_weight * adv + cfg.moment_weight * moments
                stats.update(ssim=ssim.item(), l1=l1.item())
            g_loss.backward()
        self.opt_g.step()
        stats["g"] = adv.item()
        return stats

    @staticmethod
    def _reconstruction_terms(x: torch.Tensor, rec: torch.Tensor, z_enc: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """SSIM and L1 of the reconstruction, and the moment mismatch that keeps E's latents N(0, 1)."""
        ssim = ssim01(_unit(rec), _unit(x)).mean()
        l1 = (rec - x).abs().mean()
        moments = z_enc.mean(0).pow(2).mean() + (z_enc.var(0) - 1).pow(2).mean()
        return ssim, l1, moments

    def _reconstruction_step(self, x: torch.Tensor) -> dict[str, float]:
        """Recipe ae: G and E under the reconstruction loss alone. What `aegan` with --adv-weight 0 trains,
        without the discriminator's passes and G's pass on random latents, most of that recipe's work; G's
        batch-norm statistics then come from encoded latents only, so the weights differ from that run's."""
        cfg = self.cfg
        z_enc = self._E(x)
        ssim, l1, moments = self._reconstruction_terms(x, self._G(self._noise(z_enc)), z_enc)
        self.opt_g.zero_grad(set_to_none=True)
        ((1 - ssim) + cfg.l1_weight * l1 + cfg.moment_weight * moments).backward()
        self.opt_g.step()
        return {"ssim": ssim.item(), "l1": l1.item()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Encoder reconstruction quality on held-out images (the recipes with an encoder: aegan, ae)."""
        if self.E is None:
            return {}
        self.G.eval(), self.E.eval()
        x = self.val_set.to(self.device).float() / 255.0
        rec = _unit(self.G(self.E(x * 2 - 1)))
        out = {"val_ssim": ssim01(rec, x).mean().item(), "val_psnr": psnr01(rec, x).mean().item()}
        self.G.train(), self.E.train()
        return out

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray:
        self.G.eval()
        samples = to_uint8(_unit(self.G(self.fixed_z.to(self.device))))
        self.G.train()
        return image_grid(samples, 8)

    def export(self, out: Path | None = None) -> dict[str, str]:
        out = out or self.out
        self.G.eval()
        hashes = {"generator": save_weights(out, "generator", self.G, self.cfg.net)}
        if self.E:
            self.E.eval()
            hashes["encoder"] = save_weights(encoder_path(out), "encoder", self.E, self.cfg.net)
            self.E.train()
        self.G.train()
        return hashes

    def _order(self, gen: torch.Generator) -> torch.Tensor:
        """This rank's training images for the current epoch, in order (the same on resume)."""
        if not self.ddp:
            gen.manual_seed(self.cfg.seed * 100003 + self.epoch)
            return torch.randperm(len(self.train_set), generator=gen)
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(range(len(self.train_set)), self.world, self.rank, shuffle=True, seed=self.cfg.seed)
        sampler.set_epoch(self.epoch)
        torch.manual_seed(_rank_seed(self.cfg.seed, self.epoch, self.rank))
        return torch.tensor(list(sampler), dtype=torch.long)

    def run(self, max_minutes: float | None = None, progress=None) -> None:
        cfg, bs, main = self.cfg, self.local_batch, self.rank == 0
        gen = torch.Generator().manual_seed(cfg.seed)
        if main:
            (self.work_dir / "samples").mkdir(parents=True, exist_ok=True)
        log = self.work_dir / "log.jsonl"
        t_start = time.time()
        while self.epoch < cfg.epochs:
            perm = self._order(gen)
            batches = len(perm) // bs  # the same on every rank: DistributedSampler gives each an equal share
            t0 = time.time()
            sums: dict[str, float] = {}
            for b in range(batches):
                stats = self.step(self._batch(perm[b * bs : (b + 1) * bs]))
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                if progress:
                    progress(self.epoch, b + 1, batches, stats)
            self.epoch += 1
            self.elapsed += time.time() - t0
            if self.ddp:  # the epoch's mean losses over all ranks
                sums = dict(zip(sums, (v / self.world for v in distributed.sum_over_ranks(list(sums.values())))))
            stop, failed = max_minutes is not None and time.time() - t_start > 60 * max_minutes, None
            if main:
                try:
                    record = {"epoch": self.epoch, "seconds": round(self.elapsed, 1), "world_size": self.world}
                    record.update({k: round(v / batches, 4) for k, v in sums.items()})
                    record.update({k: round(v, 4) for k, v in self.validate().items()})
                    write_png(self.work_dir / "samples" / f"epoch_{self.epoch:03d}.png", self.sample_grid())
                    self.save_checkpoint()
                    record.update(self.export())
                    if record.get("val_ssim", -1.0) > self.best_val:  # the best held-out epoch, kept beside the last
                        self.best_val = record["val_ssim"]
                        record["best"] = True
                        self.export(best_path(self.out))
                    with open(log, "a") as f:
                        f.write(json.dumps(record) + "\n")
                except (InvcompError, OSError) as e:
                    failed = e
            if self.ddp:  # rank 0's word: go on, stop (--minutes), or it failed (so that every rank ends with an error)
                verdict = distributed.from_main(2 if failed else int(stop))
                if verdict == 2 and not main:
                    raise InvcompError(f"stopped because rank 0 could not write epoch {self.epoch}'s files (its error says why)")
                stop = verdict == 1
            if failed:
                raise failed
            if stop:
                break
        distributed.barrier()  # no rank leaves while rank 0 still writes the last epoch


def encoder_path(generator_path: Path) -> Path:
    return generator_path.with_name(generator_path.stem + ".encoder.pt")


def best_path(generator_path: Path) -> Path:
    return generator_path.with_name(generator_path.stem + ".best.pt")
