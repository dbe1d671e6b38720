"""`invcomp bench`: the rate-distortion sweep against the classic codecs (and `bench speed`)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

import typer

from invcomp.cli.common import ProgressBar, fail
from invcomp.errors import InvcompError
from invcomp.bench.ablate import ablate  # noqa: F401 - registered by cli.app (moved by the bench split)


def bench(
    data: str = typer.Argument(..., help=".npz test file or folder of images; or `speed` for the speed bench"),
    model: List[str] = typer.Option(["airplanes32"], "--model", "-m", help="pretrained name or custom .pt"),
    n: Optional[int] = typer.Option(None, help="first N images only"),
    steps: Optional[int] = typer.Option(None, help="inversion steps (default: the library's)"),
    restarts: int = typer.Option(1),
    batch_size: int = typer.Option(64),
    grid: int = typer.Option(6, help="images in the matched-bytes grid (0: none)"),
    batch_sizes: str = typer.Option("1,4,16,64,256", help="speed bench: batch sizes"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    out: Path = typer.Option(Path("results"), help="folder for JSON, Markdown and plots"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Rate-distortion sweep: invcomp's operating points beside JPEG, WebP, AVIF, JPEG 2000.

    Also WebP and JPEG encoded at 1/2 and 1/4 size and upscaled (Lanczos) on decode. Per
    point: mean bytes (whole files), bpp, PSNR, SSIM, MS-SSIM.

    Writes results/bench_<model>_<data>.{json,md}, RD plots (*_ssim.png, *_psnr.png) and a grid
    of reconstructions at matched bytes (*_grid.png). Each codec's measurements are cached
    under results/bench_cache/, so a rerun only computes what is missing.
    `invcomp bench speed --model NAME ...` runs the speed benchmark instead.
    """
    try:
        if data == "speed":
            _speed(model, batch_sizes, steps, device, out, as_json)
            return
        if len(model) != 1:
            raise InvcompError("give one --model for a rate-distortion bench")
        report = _rd_bench(data, model[0], n, steps, restarts, batch_size, grid, device, out)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        else:
            typer.echo(Path(report["outputs"]["markdown"]).read_text())
            typer.echo("wrote " + ", ".join(report["outputs"].values()))
    except InvcompError as e:
        fail(str(e))


def _rd_bench(data: str, model: str, n: Optional[int], steps: Optional[int], restarts: int, batch_size: int,
              grid: int, device: str, out: Path) -> dict:
    import torch

    from invcomp.bench import rd as B
    from invcomp.codec import Codec
    from invcomp.io.collection import load_collection
    from invcomp.io.datasets import resolve_data_path
    from invcomp.files import write_atomic
    from invcomp.inversion.invert import InversionConfig
    from invcomp.inversion.rate import OPERATING_BITS

    codec = Codec(model, device)
    src = resolve_data_path(data)
    images, _, notes = load_collection([src], codec.resolution)
    if n is not None:
        if n < 1:
            raise InvcompError("--n must be >= 1")
        images = images[:n]
    base = InversionConfig(bits=codec.model.default_bits)
    cfg = InversionConfig(bits=base.bits, steps=steps if steps is not None else base.steps, restarts=restarts)
    name = codec.model.name
    stem = f"bench_{name}_{src.stem}" + (f"_n{n}" if n else "")
    cache = out / "bench_cache" / (src.stem + (f"_n{n}" if n else ""))  # classic series are shared by all models
    digest = B.images_digest(images)
    series: list = []
    t_start = time.perf_counter()

    def with_bar(label: str, total: int, work):
        with _progress_bar(f"bench {label}") as bar:
            task = bar.add_task(label, total=total, rate="")
            t0 = time.perf_counter()

            def advance(k: int) -> None:
                bar.advance(task, k)
                done = bar.tasks[0].completed
                bar.update(task, rate=f"{done / max(1e-9, time.perf_counter() - t0):.1f}/s")

            return work(advance)

    key = {"images": digest, "model_sha256": codec.model.sha256, "inversion": asdict(cfg), "bits": list(OPERATING_BITS)}
    path = cache / f"invcomp_{name}.json"
    ours = B.load_cached(path, key)
    if ours is None:
        ours = with_bar("invcomp", len(images),
                        lambda adv: B.run_invcomp(codec, images, OPERATING_BITS, cfg, batch_size, key, adv))
        B.save_cached(path, ours)
    series.append(ours)
    for c in B.CLASSIC_CODECS:
        key = {"images": digest, "codec": c.name, "settings": list(c.settings), "options": c.options(c.settings[0])}
        path = cache / f"{c.key}.json"
        s = B.load_cached(path, key)
        if s is None:
            s = with_bar(c.name, len(images) * len(c.settings), lambda adv, c=c: B.run_classic(c, images, key, adv))
            B.save_cached(path, s)
        series.append(s)
    pixels = codec.resolution**2
    rows = [r for s in series for r in s.summary(pixels)]
    analysis = B.analyse(rows, codec.model.default_bits)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{stem}.md"
    outputs = {"json": str(out / f"{stem}.json"), "markdown": str(md), "ssim_plot": str(out / f"{stem}_ssim.png"),
               "psnr_plot": str(out / f"{stem}_psnr.png")}
    title = f"{name} on {src.name} ({len(images)} images, {codec.resolution}x{codec.resolution})"
    B.plot_rd(rows, "ssim", title, Path(outputs["ssim_plot"]))
    B.plot_rd(rows, "psnr", title, Path(outputs["psnr_plot"]))
    if grid > 0:
        k = min(grid, len(images))
        bits = codec.model.default_bits
        files = [bytes.fromhex(h) for h in ours.extra["files"][str(bits)][:k]]
        our_sizes, columns = B.matched_grid(images, ours, bits, k)
        columns.insert(0, (f"invcomp {bits}-bit", [codec.decompress(f) for f in files], our_sizes))
        outputs["grid"] = str(out / f"{stem}_grid.png")
        B.plot_grid(images[:k], columns, Path(outputs["grid"]))
    report = {"data": src.name, "images": len(images), "resolution": codec.resolution, "model": name,
              "model_sha256": codec.model.sha256, "inversion": asdict(cfg), "operating_bits": list(OPERATING_BITS),
              "default_bits": codec.model.default_bits, "device": str(codec.device), "threads": torch.get_num_threads(),
              "msssim": B.msssim_settings(codec.resolution) and {"win_size": B.msssim_settings(codec.resolution)[0],
                                                                 "weights": B.msssim_settings(codec.resolution)[1]},
              "notes": notes, "seconds": round(time.perf_counter() - t_start, 1), "rows": rows, "analysis": analysis,
              "outputs": outputs}
    header = (f"{title}; invcomp: {cfg.steps} steps x {cfg.restarts} start(s), bits {list(OPERATING_BITS)} "
              f"(default {codec.model.default_bits}); bytes are whole files; quality means over images.\n\n")
    write_atomic(md, (header + B.markdown(rows, analysis)).encode())
    write_atomic(Path(outputs["json"]), (json.dumps(report, indent=2) + "\n").encode())
    return report


def _speed(models: List[str], batch_sizes: str, steps: Optional[int], device: str, out: Path, as_json: bool) -> None:
    try:
        from invcomp.bench import speed as speedbench
    except ImportError:
        raise InvcompError("the speed bench is not available in this installation") from None
    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        raise InvcompError(f"--batch-sizes must be comma-separated integers, not {batch_sizes!r}") from None
    report = speedbench.run_speed_bench(models, sizes, device, steps)
    paths = speedbench.write_speed_report(report, out)
    typer.echo(json.dumps(report, indent=2) if as_json else Path(str(paths[-1])).read_text())


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
    import time

    from invcomp.codec import Codec
    from invcomp.io.collection import load_collection
    from invcomp.io.datasets import resolve_data_path
    from invcomp.bench.evaluate import evaluate_invcomp, evaluate_webp, markdown_table
    from invcomp.files import write_atomic
    from invcomp.inversion.invert import InversionConfig

    try:
        codec = Codec(model, device)
        src = resolve_data_path(data)
        images, _, _ = load_collection([src], codec.resolution)
        images = images[:n] if n else images
        cfg = InversionConfig(bits=bits if bits is not None else codec.model.default_bits, steps=steps, restarts=restarts)
        with _progress_bar("evaluate") as bar:
            task = bar.add_task("evaluate", total=len(images), rate="")
            t0 = time.perf_counter()

            def advance(k: int) -> None:
                bar.advance(task, k)
                done = bar.tasks[0].completed
                bar.update(task, rate=f"{done / (time.perf_counter() - t0):.2f} img/s")

            ours = evaluate_invcomp(codec, images, cfg, batch_size, advance)
        webp = evaluate_webp(images)
        scores = [ours, webp]
        import torch

        report = {"data": src.name, "images": len(images), "model": model, "device": str(codec.device),
                  "threads": torch.get_num_threads(), "config": {"bits": cfg.bits, "steps": cfg.steps, "restarts": cfg.restarts},
                  "scores": [s.to_dict() for s in scores],
                  "bytes_ratio_vs_webp": round(ours.mean_bytes / webp.mean_bytes, 4)}
        out.mkdir(parents=True, exist_ok=True)
        stem = f"evaluate_{model}_{Path(src).stem}_{cfg.bits}b_{cfg.restarts}x{cfg.steps}" + (f"_n{n}" if n else "")
        write_atomic(out / f"{stem}.json", (json.dumps(report, indent=2) + "\n").encode())
        write_atomic(out / f"{stem}.md", markdown_table(scores).encode())
        typer.echo(json.dumps(report, indent=2) if as_json else markdown_table(scores))
    except InvcompError as e:
        fail(str(e))
