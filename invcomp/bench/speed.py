"""Speed bench: image-steps/s of the real inversion step, FLOPs of one step, and the fraction
of the device's matrix-product ceiling that inversion reaches.

How to call it (this is what `invcomp bench speed` does):

    import torch
    from pathlib import Path
    from invcomp.bench.speed import run_speed_bench, write_speed_report

    report = run_speed_bench(["airplanes32"], batch_sizes=[1, 4, 16, 64, 256],
                             device=torch.device("cpu"), steps=20, progress=None)
    paths = write_speed_report(report, Path("results"))  # [results/speed_cpu.json, results/speed_cpu.md]

- `models`: registered names (`invcomp.models.registry.REGISTRY`), custom generator `.pt` paths and/or
  `invcomp.models.registry.Model` objects (e.g. a tiny test model); each is moved to `device`.
- `device`: a torch.device or "auto" / "cpu" / "cuda" (as `--device`).
- `batch_sizes`: images inverted at once (restarts=1, so a batch of B images is B latents).
- `steps`: inversion steps per timed run (>= max(4, warmup + 2); None: 20); the first `warmup` steps of each run are not
  timed; each (model, batch) is timed `repeats` times and the best and median are reported.
- `progress`: optional `callable(done: int, total: int)`, called after each timed run.
- `report` is a plain JSON-serialisable dict: {"device", "threads", "torch", "cpu",
  "ceiling_gflops", "models": [{"model", "flops_per_image_step", ..., "rows": [{"batch",
  "image_steps_per_s", "gflops", "ratio", ...}]}]}.

What is measured: `invcomp.inversion.invert.invert` itself (the code path `fit` uses), timed between its
per-step progress callbacks, on random targets, with the model's encoder start and default
bits. FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` as the difference
between a 2-step and a 1-step inversion of one image: the generator's forward and backward
(input gradients only) and the SSIM blur's matrix products, forward and backward; elementwise
ops are not counted. The ceilings are the best GFLOP/s of large fp32 and bf16 matrix products
(2048^2 on CPU, 8192^2 on CUDA) sampled before the first and after every timed row in the same
process, with the same thread count (on a shared CPU the best sample is the fairest ceiling); the
ratio is against the better of the two, the machine's real ceiling. `precision` ("auto", "fp32",
"bf16") is the generator's compute type in the step: auto is bf16 where the device has it natively.
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Union

import torch
from torch.utils.flop_counter import FlopCounterMode

from invcomp.errors import InvcompError
from invcomp.files import write_atomic
from invcomp.inversion.invert import InversionConfig, invert
from invcomp.models.device import bf16_native, cpu_flags, pick_device, pick_precision
from invcomp.models.zoo import Model, resolve_model, to_device

ModelLike = Union[str, Model]
DEFAULT_BATCHES = (1, 4, 16, 64, 256)
DEFAULT_STEPS = 20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, n: int | None = None, repeats: int = 5,
                  dtype: torch.dtype = torch.float32) -> float:
    """Best GFLOP/s of an n x n matrix product of `dtype` on `device` (the practical ceiling)."""
    n = n or (8192 if device.type == "cuda" else 2048)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    inner = 3
    for _ in range(2):
        a @ b
    _sync(device)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        _sync(device)
        best = max(best, 2 * n**3 * inner / (time.perf_counter() - t0) / 1e9)
    return best


def _targets(model: Model, batch: int, device: torch.device) -> torch.Tensor:
    s = model.config.resolution
    return torch.rand(batch, 3, s, s, generator=torch.Generator().manual_seed(batch)).to(device)


def step_flops(model: Model, cfg: InversionConfig, device: torch.device) -> dict:
    """FLOPs of one inversion step for one image: total, generator part, loss part (the same in any precision)."""

    def count(steps: int) -> int:
        with FlopCounterMode(display=False) as fc:
            invert(model.generator, _targets(model, 1, device), replace(cfg, steps=steps),
                   model.encoder)
        return fc.get_total_flops()

    total = count(2) - count(1)
    z = torch.zeros(1, model.config.latent_dim, device=device, requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        model.generator(z).sum().backward()
    generator = fc.get_total_flops()
    return {"flops_per_image_step": int(total), "generator_flops": int(generator), "loss_flops": int(total - generator)}


def time_steps(model: Model, batch: int, cfg: InversionConfig, device: torch.device, warmup: int,
               dtype: torch.dtype = torch.float32) -> dict:
    """One timed `invert` run: steady-state image-steps/s and the run's total seconds."""
    stamps: list[float] = []

    def tick(done: int, total: int) -> None:
        _sync(device)
        stamps.append(time.perf_counter())

    targets = _targets(model, batch, device)
    _sync(device)
    t0 = time.perf_counter()
    invert(model.generator, targets, cfg, model.encoder, progress=tick, dtype=dtype)
    _sync(device)
    total = time.perf_counter() - t0
    timed = len(stamps) - 1 - warmup
    return {"image_steps_per_s": batch * timed / (stamps[-1] - stamps[warmup]), "seconds": total}


def _as_model(m: ModelLike) -> Model:
    return resolve_model(m)  # a name, a Model, or a custom generator .pt


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_speed_bench(
    models: Sequence[ModelLike],
    batch_sizes: Sequence[int] = DEFAULT_BATCHES,
    device: torch.device | str = "cpu",
    steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    repeats: int = 3,
    warmup: int = 3,
    ceiling_size: int | None = None,
    precision: str = "auto",
) -> dict:
    """Measure every (model, batch size); see the module docstring for the report's layout."""
    device = pick_device(device) if isinstance(device, str) else torch.device(device)
    dtype = pick_precision(precision, device)
    steps = DEFAULT_STEPS if steps is None else steps
    if not models:
        raise InvcompError("no model to benchmark")
    if steps < warmup + 2 or steps < 4:  # at least one timed step after the warm-up
        raise InvcompError(f"--steps must be at least {max(4, warmup + 2)} for the speed bench")
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise InvcompError("batch sizes must be >= 1")
    loaded = [to_device(_as_model(m), device) for m in models]
    total, done = len(loaded) * len(batch_sizes) * repeats, 0
    # the ceiling is sampled before the first and after every timed row (the CPU may be shared;
    # the best sample is the ceiling)
    ceilings = [matmul_gflops(device, ceiling_size)]
    bf16_ceilings = [matmul_gflops(device, ceiling_size, dtype=torch.bfloat16)]
    entries = []
    for model in loaded:
        cfg = InversionConfig(bits=model.default_bits, steps=steps, restarts=1, use_encoder=True,
                              prior_weight=model.default_prior_weight, prior_weights=model.prior_weights)
        flops = step_flops(model, cfg, device)
        rows = []
        for batch in batch_sizes:
            runs = []
            for _ in range(repeats):
                runs.append(time_steps(model, batch, cfg, device, warmup, dtype))
                done += 1
                if progress:
                    progress(done, total)
            rates = [r["image_steps_per_s"] for r in runs]
            rows.append({"batch": batch, "image_steps_per_s": max(rates), "image_steps_per_s_median": statistics.median(rates),
                         "seconds_per_run_median": statistics.median(r["seconds"] for r in runs)})
            ceilings.append(matmul_gflops(device, ceiling_size, repeats=2))
            bf16_ceilings.append(matmul_gflops(device, ceiling_size, repeats=2, dtype=torch.bfloat16))
        entries.append({"model": model.name, "resolution": model.config.resolution, "latent_dim": model.config.latent_dim,
                        "width": model.config.width, "bits": cfg.bits, **flops, "rows": rows})
    fp32_ceiling, bf16_ceiling = max(ceilings), max(bf16_ceilings)
    ceiling = max(fp32_ceiling, bf16_ceiling)  # the machine's best matrix-product rate, whichever type gives it
    for e in entries:
        for r in e["rows"]:
            r["gflops"] = r["image_steps_per_s"] * e["flops_per_image_step"] / 1e9
            r["ratio"] = r["gflops"] / ceiling
            r["ratio_fp32_ceiling"] = r["gflops"] / fp32_ceiling
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "steps_per_run": steps, "warmup_steps": warmup, "repeats": repeats,
        "precision": "bf16" if dtype == torch.bfloat16 else "fp32", "bf16_native": bf16_native(device),
        "cpu_flags": sorted(f for f in cpu_flags() if "bf16" in f or f in ("avx2", "avx512f", "amx_tile")),
        "ceiling_gflops": ceiling, "fp32_ceiling_gflops": fp32_ceiling, "bf16_ceiling_gflops": bf16_ceiling,
        "ceiling_matrix_size": ceiling_size or (8192 if device.type == "cuda" else 2048),
        "ceiling_samples_gflops": ceilings, "bf16_ceiling_samples_gflops": bf16_ceilings,
        "models": entries,
    }


def speed_markdown(report: dict) -> str:
    lines = [f"Device {report['device']} ({report['device_name']}), {report['threads']} threads, torch {report['torch']}; "
             f"CPU flags: {', '.join(report['cpu_flags']) or 'n/a'}. Matrix-product ceilings (best of "
             f"{len(report['ceiling_samples_gflops'])} samples of a {report['ceiling_matrix_size']}^2 product taken "
             f"between the rows): fp32 {report['fp32_ceiling_gflops']:.1f} GFLOP/s, bf16 {report['bf16_ceiling_gflops']:.1f} "
             f"GFLOP/s; the best, {report['ceiling_gflops']:.1f}, is the ceiling. The inversion step ran in "
             f"{report['precision']} (bf16 native: {'yes' if report['bf16_native'] else 'no'}).", "",
             "| model | batch | image-steps/s (best) | median | MFLOP / image-step | GFLOP/s | of best ceiling | of fp32 ceiling |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for e in report["models"]:
        for r in e["rows"]:
            lines.append(f"| {e['model']} | {r['batch']} | {r['image_steps_per_s']:.0f} | {r['image_steps_per_s_median']:.0f} | "
                         f"{e['flops_per_image_step'] / 1e6:.1f} | {r['gflops']:.1f} | {r['ratio']:.2f} | "
                         f"{r['ratio_fp32_ceiling']:.2f} |")
    lines.append("")
    lines.append("FLOPs per image-step: generator forward + input-gradient backward, plus the SSIM blur's matrix "
                 "products (FlopCounterMode; elementwise ops not counted).")
    return "\n".join(lines) + "\n"


def write_speed_report(report: dict, out_dir: Path | str) -> list[Path]:
    """results/speed_<device>.json and .md (atomic writes); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "speed_" + report["device"].replace(":", "")
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.md"]
    write_atomic(paths[0], (json.dumps(report, indent=2) + "\n").encode())
    write_atomic(paths[1], speed_markdown(report).encode())
    return paths
