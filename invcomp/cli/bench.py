"""The benchmark commands: bench (rate-distortion sweep, or `bench speed`), evaluate, ablate.

Each command parses its options, calls `invcomp.bench` and prints; the library (torch, numpy,
matplotlib) is imported inside the commands, so `invcomp --help` stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from invcomp.cli.common import ProgressBar, guarded
from invcomp.errors import InvcompError


def _bars(prefix: str):
    """The library's per-stage progress as a bar per stage, labelled `prefix label`."""
    return lambda label, total: ProgressBar(f"{prefix} {label}".strip(), total)


def _csv(text: str, kind=str) -> list:
    try:
        return [kind(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InvcompError(f"cannot read {text!r} as a comma-separated list") from None


def _inversion_options(bits: Optional[int] = None, steps: Optional[int] = None, **options) -> dict:
    """InversionConfig fields given on the command line (None: the model's default)."""
    return {k: v for k, v in dict(bits=bits, steps=steps, **options).items() if v is not None}


@guarded
def bench(
    data: str = typer.Argument(..., help=".npz test file or folder of images; or `speed` for the speed bench"),
    model: list[str] = typer.Option(["airplanes32"], "--model", "-m", help="pretrained name or custom .pt"),
    n: Optional[int] = typer.Option(None, help="first N images only"),
    steps: Optional[int] = typer.Option(None, help="inversion steps (default: the library's)"),
    restarts: int = typer.Option(1),
    batch_size: int = typer.Option(64),
    grid: int = typer.Option(6, help="images in the matched-bytes grid (0: none)"),
    batch_sizes: str = typer.Option("1,4,16,64,256", help="speed bench: batch sizes"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    precision: str = typer.Option("auto", help="generator compute type while fitting: auto (bf16 where native), fp32, bf16"),
    out: Path = typer.Option(Path("results"), help="folder for JSON, Markdown and plots"),
    budgets: str = typer.Option("0.5,1,1.5,2,3,4", help="per-image byte budgets as multiples of WebP-q0's mean bytes "
                                "for the equal-budget table and the enhanced curve ('' : none)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Rate-distortion sweep: invcomp's operating points beside JPEG, WebP, AVIF, JPEG 2000.

    Also WebP and JPEG encoded at 1/2 and 1/4 size and upscaled (Lanczos) on decode. Per
    point: mean bytes (whole files), bpp, PSNR, SSIM, MS-SSIM.

    With --budgets, first the equal-budget table: per image and budget, invcomp's --max-bytes file
    (base and enhancement parts) against the best JPEG, WebP and AVIF file within it
    (results/budgets_<model>_<data>.{json,md}, *_budget_{ssim,psnr}.png); its best-SSIM files are
    the "invcomp + parts" curve of the RD plots.

    The learned peer (CompressAI's factorized prior, trained and measured by scripts/peer.py) joins
    the plots and the table when results/peers/ holds its series for this model and these images.

    Writes results/bench_<model>_<data>.{json,md}, RD plots (*_ssim.png, *_psnr.png) and a grid
    of reconstructions at matched bytes (*_grid.png). Each codec's measurements are cached
    under results/bench_cache/, so a rerun only computes what is missing.
    `invcomp bench speed --model NAME ...` runs the speed benchmark instead.
    """
    if data == "speed":
        _speed(model, batch_sizes, steps, device, precision, out, as_json)
        return
    if len(model) != 1:
        raise InvcompError("give one --model for a rate-distortion bench")
    from invcomp.bench.data import load_bench_data
    from invcomp.bench.rd import run_rd_bench
    from invcomp.codec import Codec

    codec = Codec(model[0], device)
    images = load_bench_data(data, codec.resolution, n)
    from invcomp.bench.peers import load_peer_series

    config = codec.config(**_inversion_options(steps=steps, restarts=restarts))
    peers = tuple(load_peer_series(out, codec.model.name, images))
    extra: tuple = ()
    if budgets.strip():
        from invcomp.bench.budgets import rd_rows, run_budget_bench

        table = run_budget_bench(codec, images, out, config, tuple(_csv(budgets, float)), batch_size, _bars("bench"),
                                 peers)
        extra = rd_rows(table, codec.resolution)
        if not as_json:
            typer.echo(Path(table["outputs"]["markdown"]).read_text())
    report = run_rd_bench(codec, images, out, config, batch_size, grid, _bars("bench"), extra, peers)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(Path(report["outputs"]["markdown"]).read_text())
        typer.echo("wrote " + ", ".join(report["outputs"].values()))


def _speed(models: list[str], batch_sizes: str, steps: Optional[int], device: str, precision: str, out: Path,
           as_json: bool) -> None:
    try:
        from invcomp.bench import speed as speedbench
    except ImportError:
        raise InvcompError("the speed bench is not available in this installation") from None
    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        raise InvcompError(f"--batch-sizes must be comma-separated integers, not {batch_sizes!r}") from None
    with ProgressBar("bench speed", unit="run") as bar:
        report = speedbench.run_speed_bench(models, sizes, device, steps, progress=bar.update, precision=precision)
    paths = speedbench.write_speed_report(report, out)
    typer.echo(json.dumps(report, indent=2) if as_json else Path(str(paths[-1])).read_text())


@guarded
def evaluate(
    data: str = typer.Argument(..., help=".npz test file (or folder of images)"),
    model: str = typer.Option("airplanes32", "--model", "-m"),
    n: Optional[int] = typer.Option(None, help="first N images only"),
    bits: Optional[int] = typer.Option(None),
    steps: int = typer.Option(100),
    restarts: int = typer.Option(1),
    batch_size: int = typer.Option(64),
    device: str = typer.Option("auto"),
    out: Path = typer.Option(Path("results"), help="folder for JSON and Markdown"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Measure invcomp at the given settings beside WebP q0 on a test set; writes results/."""
    from invcomp.bench.data import load_bench_data
    from invcomp.bench.evaluate import run_evaluation
    from invcomp.codec import Codec

    codec = Codec(model, device)
    images = load_bench_data(data, codec.resolution, n or None)
    config = codec.config(**_inversion_options(bits=bits, steps=steps, restarts=restarts))
    result = run_evaluation(codec, images, out, config, batch_size, _bars(""))
    typer.echo(json.dumps(result.report, indent=2) if as_json else result.markdown)


@guarded
def ablate(
    data: str = typer.Argument(..., help=".npz test file (or folder of images)"),
    model: str = typer.Option("airplanes32", "--model", "-m"),
    mask_list: str = typer.Option("center,random,block,edges,edges+random", "--masks", help="comma-separated schemes"),
    keep_list: str = typer.Option("0.01,0.03,0.1", "--keep", help="comma-separated densities"),
    assist_list: str = typer.Option("4", "--assist-bits", help="comma-separated bits per channel of kept pixels"),
    loss_list: str = typer.Option("ssim+mse", "--losses",
                                  help="comma-separated; the first for every run, the others at --loss-at"),
    loss_at: str = typer.Option("", help="scheme:keep where the other losses run (default: first scheme, middle keep)"),
    baseline_bits: str = typer.Option("3,4,5,6", help="plain invcomp at these latent bit depths (\"\" for none)"),
    n: int = typer.Option(200, help="first N images"),
    bits: Optional[int] = typer.Option(None, help="latent bits of the masked runs (default: the model's)"),
    steps: int = typer.Option(100),
    batch_size: int = typer.Option(64),
    seed: int = typer.Option(0),
    figure_images: int = typer.Option(2, help="images shown in the figure grid"),
    device: str = typer.Option("auto"),
    out: Path = typer.Option(Path("results"), help="folder for JSON, Markdown and the figure"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Which kept pixels buy the most quality per byte: mask schemes x densities x losses.

    Also plain invcomp at --baseline-bits, and WebP and JPEG at each image's bytes. Writes
    results/ablate_<model>_<data>.{json,md,png}, rewritten after every run.
    """
    schemes, keeps, assists, losses = _csv(mask_list), _csv(keep_list, float), _csv(assist_list, int), _csv(loss_list)
    base_bits = _csv(baseline_bits, int)
    at = None
    if loss_at:
        try:
            scheme, keep = loss_at.split(":")
            at = (scheme, float(keep))
        except ValueError:
            raise InvcompError(f"--loss-at must look like random:0.03, not {loss_at!r}") from None
    from invcomp.bench.ablate import plan_ablation, run_ablation
    from invcomp.bench.data import load_bench_data
    from invcomp.codec import Codec

    codec = Codec(model, device)
    config = codec.config(**_inversion_options(bits=bits, steps=steps, seed=seed))
    plan = plan_ablation(schemes, keeps, assists, losses, config, base_bits, at, batch_size, figure_images)
    result = run_ablation(codec, load_bench_data(data, codec.resolution, n), plan, out, _bars(""))
    stem = result.paths[0].with_suffix("")
    typer.echo(json.dumps(result.report, indent=2) if as_json else result.markdown + f"\n-> {stem}.{{json,md,png}}")
