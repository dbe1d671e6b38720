"""GAN inversion: find latents z with G(z) close to given images, batched, on any device.

Recipe (after rosinality's StyleGAN2 projector, adapted to compression):
- K starts per image: the encoder's guess E(x) when there is an encoder, and random
  N(0, 1) latents; all K x N latents are optimised together as one batch.
- Adam on z, learning rate ramped up over the first 5 % of steps and down (cosine)
  over the last 25 %; small latent noise, annealed to zero, helps early exploration.
- loss per image = (1 - SSIM) + mse_weight * MSE + prior_weight * mean(z^2).
- quantization-aware final phase: for the last `qat_fraction` of the steps the
  generator sees the quantized latent (straight-through gradient), so the codes
  that are stored are the ones that were optimised.
- the best start per image is chosen by the loss of its quantized latent.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import torch

from invcomp.errors import InvcompError
from invcomp.inversion.quantize import MAX_BITS, MIN_BITS, dequantize, fake_quantize, quantize
from invcomp.metrics import SSIMTarget, ssim01
from invcomp.models.nets import Encoder, Generator


@dataclass(frozen=True)
class InversionConfig:
    bits: int = 4
    # 100 encoder-started steps: the fewest within 0.01 mean SSIM of a 500-step random start on
    # 200 held-out airplanes (75 and 85 steps miss it; results/steps_vs_quality*.json)
    steps: int = 100
    restarts: int = 1  # starts per image (the encoder start counts as one); more starts did not pay
    lr: float = 0.05
    mse_weight: float = 1.0
    prior_weight: float = 0.02
    # the prior weight of the quantization-aware tail at given bit depths where it differs from
    # prior_weight, ((bits, weight), ...): a model's schedule (Codec.config). The weight trades bytes
    # for quality within a depth, and a higher depth wants a lower one (docs/RESULTS.md, "The latent
    # prior weight per bit depth"); the run before the tail, shared by all depths, uses prior_weight.
    prior_weights: tuple[tuple[int, float], ...] = ()
    noise: float = 0.05  # initial latent noise, annealed to 0 at 75 % of the steps
    qat_fraction: float = 0.3
    use_encoder: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise InvcompError(f"--bits must be {MIN_BITS}..{MAX_BITS}, not {self.bits}")
        if not 0 <= self.steps <= 100_000:
            raise InvcompError(f"--steps must be 0..100000, not {self.steps}")
        if not 1 <= self.restarts <= 256:
            raise InvcompError(f"--restarts must be 1..256, not {self.restarts}")
        if not 0 <= self.qat_fraction <= 1:
            raise InvcompError("qat_fraction must be in [0, 1]")
        if self.lr <= 0:
            raise InvcompError("lr must be positive")
        try:  # archive headers give lists back
            schedule = tuple(sorted((int(b), float(w)) for b, w in self.prior_weights))
        except (TypeError, ValueError):
            raise InvcompError("prior_weights must be (bits, weight) pairs") from None
        object.__setattr__(self, "prior_weights", schedule)
        if self.prior_weight < 0 or any(w < 0 for _, w in schedule):
            raise InvcompError("prior weights must be >= 0")

    def prior_at(self, bits: int) -> float:
        """The latent prior weight of the quantization-aware tail at this bit depth."""
        return dict(self.prior_weights).get(bits, self.prior_weight)

    def settings(self) -> dict:
        """The fields as a dict for records (archive headers, bench caches); an empty schedule is left
        out, so that records written before it existed keep their meaning."""
        out = asdict(self)
        if not self.prior_weights:
            del out["prior_weights"]
        return out


@dataclass(frozen=True)
class InversionResult:
    codes: torch.Tensor  # (N, D) int64 quantized latents, on the CPU
    loss: torch.Tensor  # (N,) loss of the quantized latents


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, "InversionConfig"], torch.Tensor]
"""(generated in [-1, 1], targets in [0, 1], latents, config) -> loss per image."""


def learning_rate(t: float, base: float, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """rosinality's schedule: linear ramp-up, cosine ramp-down; t in [0, 1]."""
    ramp = min(1.0, (1 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * min(1.0, t / rampup)


def image_loss(generated: torch.Tensor, target: torch.Tensor, z: torch.Tensor, cfg: InversionConfig) -> torch.Tensor:
    """Per-image loss; images in [-1, 1] from G, targets in [0, 1]."""
    g = (generated + 1) / 2
    mse = ((g - target) ** 2).flatten(1).mean(1)
    return (1 - ssim01(g, target)) + cfg.mse_weight * mse + cfg.prior_weight * z.pow(2).mean(1)


def _fast_loss(ssim_target: SSIMTarget, mse_weight: float | torch.Tensor, prior_weight: float | torch.Tensor) -> LossFn:
    """`image_loss` with the targets' SSIM statistics computed once (same value to ~1e-7);
    the weights numbers or one per row (branches with their own weights)."""

    def loss(generated: torch.Tensor, target: torch.Tensor, z: torch.Tensor, cfg_: InversionConfig) -> torch.Tensor:
        g = (generated + 1) / 2
        mse = ((g - target) ** 2).flatten(1).mean(1)
        return (1 - ssim_target(g)) + mse_weight * mse + prior_weight * z.pow(2).mean(1)

    return loss


class FastGenerator:
    """The inversion-time form of a generator in eval mode: same function, cheaper graph.

    - batch norm (eval statistics) folded into the transposed convolutions' weights and biases;
    - the first layer (latent -> 4 x 4) as one matrix product instead of a convolution;
    - channels_last activations (oneDNN's preferred layout for these convolutions);
    - weights are detached copies, so backward computes input gradients only, never weight ones;
    - `dtype` bfloat16 keeps bf16 copies of the weights and computes the layers in bf16 (native
      on AVX-512 BF16 / AMX CPUs and recent GPUs); the latent comes in and the image goes out in
      fp32, so the optimiser, the loss and its reduction stay fp32.
    Outputs equal the generator's to ~1e-6 in fp32 (float rounding), ~1e-2 in bf16. A generator
    in training mode or of another layer pattern is used as it is (under autocast for bf16).
    """

    def __init__(self, generator: Generator, dtype: torch.dtype = torch.float32):
        self.generator, self.dtype = generator, dtype
        layers = _fold(generator) if not generator.training else None
        self.layers = [(w.to(dtype), b.to(dtype)) for w, b in layers] if layers is not None else None

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self.layers is None:
            if self.dtype == torch.float32:
                return self.generator(z)
            with torch.autocast(z.device.type, dtype=self.dtype):
                return self.generator(z).float()
        (w0, b0), *rest = self.layers
        x = (z.to(self.dtype) @ w0).view(z.shape[0], b0.shape[0], 4, 4) + b0.view(1, -1, 1, 1)
        x = torch.relu(x).contiguous(memory_format=torch.channels_last)
        for i, (w, b) in enumerate(rest):
            x = torch.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1)
            x = torch.relu(x) if i < len(rest) - 1 else torch.tanh(x)
        return x.float()


def _fold(generator: Generator) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """[(weight, bias)] per transposed convolution with its batch norm folded in, or None."""
    mods = list(getattr(generator, "net", []))
    if len(mods) < 5 or len(mods) % 3 != 2:
        return None
    convs, bns, relus = mods[0::3], mods[1:-2:3], mods[2:-2:3]  # [CT, BN, ReLU] * k, CT, Tanh
    pattern = all(isinstance(m, torch.nn.ConvTranspose2d) for m in convs)
    pattern = pattern and all(isinstance(m, torch.nn.BatchNorm2d) and m.track_running_stats for m in bns)
    pattern = pattern and all(isinstance(m, torch.nn.ReLU) for m in relus) and isinstance(mods[-1], torch.nn.Tanh)
    if not pattern or convs[0].kernel_size != (4, 4) or convs[0].stride != (1, 1) or convs[0].padding != (0, 0):
        return None
    if any(c.kernel_size != (4, 4) or c.stride != (2, 2) or c.padding != (1, 1) for c in convs[1:]):
        return None
    out = []
    with torch.no_grad():
        for i, conv in enumerate(convs):
            w = conv.weight.detach().clone()
            b = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(w.shape[1], device=w.device, dtype=w.dtype)
            if i < len(bns):
                bn = bns[i]
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                w = w * scale.view(1, -1, 1, 1)
                b = (b - bn.running_mean) * scale + bn.bias
            if i == 0:
                w = w.reshape(w.shape[0], -1).contiguous()  # (latent, C * 16)
            else:
                w = w.contiguous(memory_format=torch.channels_last)
            out.append((w.detach(), b.detach()))
    return out


class LatentAdam:
    """Adam on one latent tensor: the operations of torch.optim.Adam's single-tensor update
    (betas 0.9, 0.999, eps 1e-8), so results are the same to the bit on the CPU.

    Not torch.optim.Adam itself: constructing one imports torch._dynamo, about 0.9 s on its
    first use in a process, six times the 0.15 s a whole 100-step 32 x 32 fit takes.
    """

    def __init__(self, z: torch.Tensor, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.z, self.betas, self.eps, self.steps = z, betas, eps, 0
        self.exp_avg = torch.zeros_like(z, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(z, memory_format=torch.preserve_format)

    @torch.no_grad()
    def step(self, lr: float) -> None:
        beta1, beta2 = self.betas
        grad = self.z.grad
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr / (1 - beta1**self.steps)
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2**self.steps) ** 0.5).add_(self.eps)
        self.z.addcdiv_(self.exp_avg, denom, value=-step_size)

    def branched(self, z: torch.Tensor, copies: int) -> LatentAdam:
        """The same optimiser state, repeated for `copies` side-by-side copies of the latents (z)."""
        out = LatentAdam(z, self.betas, self.eps)
        out.steps = self.steps
        out.exp_avg = self.exp_avg.repeat(copies, 1)
        out.exp_avg_sq = self.exp_avg_sq.repeat(copies, 1)
        return out


def _image_seed(target: torch.Tensor, seed: int) -> int:
    digest = hashlib.sha256(target.numpy().tobytes() + seed.to_bytes(8, "little", signed=True)).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def invert(
    generator: Generator,
    targets: torch.Tensor,
    cfg: InversionConfig = InversionConfig(),
    encoder: Encoder | None = None,
    progress: Callable[[int, int], None] | None = None,
    loss_fn: LossFn | None = None,
    dtype: torch.dtype = torch.float32,
) -> InversionResult:
    """Invert a batch of targets (N, 3, S, S) in [0, 1]; returns the best quantized codes per image.

    dtype is the generator's compute type during the search (see FastGenerator); the final choice
    of codes always runs the generator in fp32, as decoding does."""
    return invert_rates(generator, targets, cfg, (cfg.bits,), encoder, progress, loss_fn, dtype)[cfg.bits]


def invert_rates(
    generator: Generator,
    targets: torch.Tensor,
    cfg: InversionConfig,
    bits: Sequence[int],
    encoder: Encoder | None = None,
    progress: Callable[[int, int], None] | None = None,
    loss_fn: LossFn | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[int, InversionResult]:
    """Invert at several bit depths at once: {bits: result}, each equal to `invert` at that depth.

    The schedule, restarts and noise do not depend on the bit depth, and quantization only
    enters in the final `qat_fraction` of the steps, so the run before that is shared and
    only the quantization-aware tail is run once per depth (side by side in one batch).
    loss_fn replaces `image_loss` (e.g. a loss restricted to kept pixels); it is called with
    batches that repeat the N targets in blocks (restarts x depths), in the same order.
    """
    bits = tuple(dict.fromkeys(int(b) for b in bits))
    found = invert_branches(generator, targets, cfg, [(b, cfg.mse_weight) for b in bits], encoder, progress,
                            loss_fn, dtype)
    return dict(zip(bits, found))


def invert_branches(
    generator: Generator,
    targets: torch.Tensor,
    cfg: InversionConfig,
    branches: Sequence[tuple[int, float] | tuple[int, float, float]],
    encoder: Encoder | None = None,
    progress: Callable[[int, int], None] | None = None,
    loss_fn: LossFn | None = None,
    dtype: torch.dtype = torch.float32,
    keep: Callable[[torch.Tensor], Sequence[bool]] | None = None,
) -> list[InversionResult | None]:
    """Like `invert_rates`, with tails (bits, mse_weight[, prior_weight]) of their own weights: one result
    per branch, in order. The shared run uses cfg's loss (with cfg.prior_weight); a tail whose pixel-error
    weight differs from cfg.mse_weight ends the search under that weight (the bases fitted for enhancement
    parts, at the cost of a tail instead of a whole run), and each tail under its own prior weight, by
    default its depth's (`InversionConfig.prior_at`; a custom loss_fn keeps cfg.prior_weight throughout).
    keep: given the shared run's latents (restarts x N x latent) when the tails begin, which branches to
    run; the others' results are None (the rest are unchanged: tails do not interact)."""
    branches = [(int(b[0]), float(b[1]), None if len(b) < 3 else float(b[2])) for b in branches]
    if not branches:
        raise InvcompError("no bit depth given")
    for b, w, p in branches:
        replace(cfg, bits=b)  # validates the range
        if w < 0 or (p is not None and p < 0):
            raise InvcompError(f"a tail's weights must be >= 0, not {w} and {p}")
        if loss_fn is not None and (w != cfg.mse_weight or p is not None):
            raise InvcompError("branches with their own weights need the default loss")
    bits = [b for b, _, _ in branches]
    # the shared run does not depend on the depth, so each depth's file equals a fit at that depth alone
    shared_cfg = replace(cfg, prior_weights=())
    priors = [cfg.prior_weight if loss_fn is not None else cfg.prior_at(b) if p is None else p for b, _, p in branches]
    device = next(generator.parameters()).device
    ncfg = generator.cfg
    if targets.ndim != 4 or targets.shape[1:] != (3, ncfg.resolution, ncfg.resolution):
        raise InvcompError(f"targets must be N x 3 x {ncfg.resolution} x {ncfg.resolution}, got {tuple(targets.shape)}")
    n, k, d, r = targets.shape[0], cfg.restarts, ncfg.latent_dim, ncfg.latent_range
    targets = targets.to(device)
    # Random starts and noise come from a stream per image, seeded by its pixels and cfg.seed, so they do
    # not depend on the batch. The arithmetic can: CPU kernels pick their algorithm by batch size, so with a
    # real generator a file fitted in a batch may differ by a few codes from one fitted alone (both decode
    # exactly; the tiny test nets give equal files, tests/test_codec.py).
    streams = [torch.Generator().manual_seed(_image_seed(t, cfg.seed)) for t in targets.cpu()]
    starts = torch.stack([torch.randn(k, d, generator=s) for s in streams], 1).clamp(-r, r).to(device)
    if encoder is not None and cfg.use_encoder:
        with torch.no_grad():
            starts[0] = encoder(targets * 2 - 1)
    z = starts.reshape(k * n, d).clone().requires_grad_(True)
    target_k = targets.repeat(k, 1, 1, 1)
    opt = LatentAdam(z)
    qat_start = int(round(cfg.steps * (1 - cfg.qat_fraction)))
    noise_steps = int(0.75 * cfg.steps) if cfg.noise > 0 else 0
    noise = torch.stack([torch.randn(noise_steps, k, d, generator=s) for s in streams], 2)  # (steps, k, n, d)
    noise = noise.reshape(noise_steps, k * n, d).to(device)
    nb = len(branches)
    fast_g = FastGenerator(generator, dtype)

    def step_loss(tail: bool, target: torch.Tensor) -> LossFn:
        """The shared run's loss or the tails' (side by side, each with its weight); the default loss
        blurs the targets' SSIM maps once here, not every step."""
        if loss_fn is not None:
            return loss_fn
        mse = [w for _, w, _ in branches] if tail else [cfg.mse_weight]
        prior = priors if tail else [shared_cfg.prior_weight]
        return _fast_loss(SSIMTarget(target), per_row(mse), per_row(prior))

    def per_row(weights: list[float]) -> float | torch.Tensor:
        """One weight, or one per row of the side-by-side batch (k x n rows per branch)."""
        if len(set(weights)) == 1:
            return weights[0]
        return torch.tensor([w for w in weights for _ in range(k * n)], device=device)

    def run(first: int, last: int, z: torch.Tensor, opt: LatentAdam, copies: int, target: torch.Tensor):
        loss_of = step_loss(first >= qat_start, target) if first < last else None
        for step in range(first, last):
            t = step / max(1, cfg.steps)
            strength = cfg.noise * max(0.0, 1 - t / 0.75) ** 2
            z_in = z
            if step < noise_steps:
                z_in = z + strength * (noise[step] if copies == 1 else noise[step].repeat(copies, 1))
            if step >= qat_start:
                z_in = torch.cat([fake_quantize(part, b, r) for part, b in zip(z_in.chunk(copies), bits)])
            loss = loss_of(fast_g(z_in), target, z_in, shared_cfg)
            z.grad = None
            loss.sum().backward()
            opt.step(learning_rate(t, cfg.lr))
            with torch.no_grad():
                z.clamp_(-r, r)
            if progress:
                progress(step + 1, cfg.steps)

    run(0, qat_start, z, opt, 1, target_k)
    wanted = [True] * nb if keep is None else [bool(w) for w in keep(z.detach().view(k, n, d))]
    if len(wanted) != nb:
        raise InvcompError(f"keep must say yes or no for each of the {nb} branches, not {len(wanted)}")
    if not all(wanted):  # the tails' closures (step_loss, run) see these lists
        branches, priors = [x for x, w in zip(branches, wanted) if w], [x for x, w in zip(priors, wanted) if w]
        bits, nb = [b for b, _, _ in branches], sum(wanted)
        if nb == 0:
            return [None] * len(wanted)
    if nb > 1:  # branch: one copy of z and of Adam's state per bit depth
        z = z.detach().repeat(nb, 1).requires_grad_(True)
        opt = opt.branched(z, nb)
        target_k = target_k.repeat(nb, 1, 1, 1)
    run(qat_start, cfg.steps, z, opt, nb, target_k)
    chosen = []
    final_loss = loss_fn or image_loss
    with torch.inference_mode():  # the final choice uses the generator itself, as decoding does
        for (b, w, _), p, zb, tb in zip(branches, priors, z.detach().chunk(nb), target_k.chunk(nb)):
            codes = quantize(zb, b, r)
            zq = dequantize(codes, b, r).to(device)
            generated = generator(zq)
            loss = final_loss(generated, tb, zq, replace(shared_cfg, mse_weight=w, prior_weight=p)).view(k, n)
            best = loss.argmin(0)
            idx = torch.arange(n, device=device)
            chosen.append((codes.view(k, n, d)[best, idx], loss[best, idx]))
    # plain (non-inference) CPU tensors for the caller
    found = iter([InversionResult(*(t.cpu().clone() for t in v)) for v in chosen])
    return [next(found) if w else None for w in wanted]
