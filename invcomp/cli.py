"""The `invcomp` command line: a thin layer over the library."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import InvcompError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Generative image compression by GAN latent inversion.")


@app.callback()
def _root() -> None:
    """Generative image compression by GAN latent inversion."""


def fail(message: str) -> None:
    typer.echo(f"invcomp: error: {message}", err=True)
    raise typer.Exit(2)


def _device(name: str):
    from .device import pick_device

    return pick_device(name)


@app.command()
def train(
    data: str = typer.Argument(..., help=".npz file (images array) or folder of images"),
    out: Path = typer.Option(..., "--out", "-o", help="generator weights to write (encoder goes beside it)"),
    resolution: int = typer.Option(32, help="32 or 64"),
    latent: int = typer.Option(64, help="latent size"),
    width: int = typer.Option(64, help="base channel width"),
    recipe: str = typer.Option("aegan", help="aegan (generator + encoder, reconstruction loss) or dcgan"),
    epochs: int = typer.Option(100),
    batch_size: int = typer.Option(64),
    lr: float = typer.Option(2e-4),
    adv_weight: float = typer.Option(0.05, help="aegan: weight of the adversarial loss"),
    holdout: int = typer.Option(200, help="last N images kept out of training for validation"),
    minutes: Optional[float] = typer.Option(None, help="stop after the epoch that passes this many minutes"),
    work_dir: Optional[Path] = typer.Option(None, help="checkpoints, samples and log (default runs/<name>)"),
    resume: bool = typer.Option(False, help="continue from the work dir's checkpoint"),
    seed: int = typer.Option(0),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
) -> None:
    """Train a generator (and encoder) for one image domain."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .datasets import resolve_data_path
    from .nets import NetConfig
    from .train import TrainConfig, Trainer
    from .collection import load_collection

    try:
        if threads:
            torch.set_num_threads(threads)
        cfg = TrainConfig(net=NetConfig(resolution=resolution, latent_dim=latent, width=width), recipe=recipe,
                          epochs=epochs, batch_size=batch_size, lr=lr, adv_weight=adv_weight, holdout=holdout, seed=seed)
        images, _, _ = load_collection([resolve_data_path(data)], resolution)
        wd = work_dir or Path("runs") / out.stem
        wd.mkdir(parents=True, exist_ok=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(cfg, images, wd, out, _device(device))
        if resume and trainer.checkpoint_path.exists():
            trainer.load_checkpoint()
            typer.echo(f"resumed at epoch {trainer.epoch}", err=True)
        elif trainer.checkpoint_path.exists():
            fail(f"{trainer.checkpoint_path} exists: pass --resume to continue or choose another --work-dir")
        with Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False) as bar:
            task = bar.add_task("train", total=None, epoch=0, info="")

            def progress(epoch, done, total, stats):
                info = " ".join(f"{k}={v:.3f}" for k, v in stats.items())
                bar.update(task, completed=done, total=total, epoch=epoch + 1, info=info)

            trainer.run(max_minutes=minutes, progress=progress)
        typer.echo(f"trained {trainer.epoch} epochs in {trainer.elapsed / 60:.1f} min -> {out}")
    except InvcompError as e:
        fail(str(e))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("invcomp: interrupted", err=True)
        sys.exit(130)


# --- compressing and decoding --------------------------------------------------------

def _expand_inputs(paths: List[Path], suffixes: set[str]) -> list[Path]:
    """Files as given, and the matching files inside folders (sorted)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                raise InvcompError(f"{p}: folder holds no {'/'.join(sorted(suffixes))} files")
            out.extend(found)
        elif not p.exists():
            raise InvcompError(f"{p}: no such file")
        else:
            out.append(p)
    return out


def _output_paths(inputs: list[Path], out: Optional[Path], suffix: str) -> list[Path]:
    """Where each output goes: beside its input, into a folder, or one named file."""
    if out is not None and (out.is_dir() or len(inputs) > 1 or str(out).endswith(("/", "\\"))):
        out.mkdir(parents=True, exist_ok=True)
        targets = [out / (p.stem + suffix) for p in inputs]
    elif out is not None:
        targets = [out]
    else:
        targets = [p.with_suffix(suffix) for p in inputs]
    if len(set(targets)) != len(targets):
        raise InvcompError("two inputs would write the same output file; give distinct names or an output folder")
    for src, dst in zip(inputs, targets):
        if dst.resolve() == src.resolve():
            raise InvcompError(f"{dst}: refusing to overwrite the input file")
    return targets


def _progress_bar(label: str):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                    TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


@app.command()
def fit(
    images: List[Path] = typer.Argument(..., help="image files or folders"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="output file (one input) or folder"),
    model: str = typer.Option("airplanes32", "--model", "-m", help="pretrained generator (see `invcomp models`) or a custom .pt"),
    bits: Optional[int] = typer.Option(None, help="bits per latent dimension, 2..12 (default: the model's)"),
    quality: Optional[int] = typer.Option(None, "--quality", "-q",
                                          help="preset 1..5 (1 = smallest files; see `invcomp models`)"),
    target_ssim: Optional[float] = typer.Option(None, help="per image, the smallest file with at least this SSIM"),
    max_bytes: Optional[int] = typer.Option(None, help="per image, the best file of at most this many bytes"),
    steps: int = typer.Option(100, help="optimisation steps per start"),
    restarts: int = typer.Option(1, help="starts per image (encoder start + random ones)"),
    seed: int = typer.Option(0),
    batch_size: int = typer.Option(64, help="images inverted at once"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
    mask_scheme: Optional[str] = typer.Option(None, "--mask-scheme",
                                              help="keep original pixels: center, random, block, edges, edges+random"),
    keep: float = typer.Option(0.05, "--keep", help="with --mask-scheme: fraction of pixels kept"),
    mask: Optional[Path] = typer.Option(None, "--mask", help="mask image of the input's size, white = keep faithfully"),
    drop_outside: bool = typer.Option(False, "--drop-outside", help="with --mask: fit only the kept region, G fills the rest"),
    assist_bits: int = typer.Option(4, "--assist-bits", help="bits per channel of kept pixels, 1..8 (0: store none)"),
    loss: str = typer.Option("ssim+mse", "--loss", help="with a mask: ssim, ssim+mse or ssim+mse+edge"),
) -> None:
    """Compress images to .icz files; prints bytes, bpp, PSNR and SSIM per image.

    --mask-scheme or --mask keep some original pixels in the file (assistant pixels, pasted
    into G(z) on decoding); see docs/FORMAT.md.

    The rate is the model's default, or --bits, or a --quality preset; --target-ssim and
    --max-bytes choose it per image (every preset is fitted in one run, the cheapest file
    that meets the targets is kept). A --max-bytes that an image cannot meet writes no file
    for it and exits with status 1; a --target-ssim that cannot be met keeps the best file
    and says so.
    """
    import time

    import numpy as np

    from .codec import Codec
    from .imageio import read_image, write_atomic
    from .invert import InversionConfig
    from .rate import OPERATING_BITS, Candidate, Choice, bits_for_quality, choose
    from .ssim import image_quality

    try:
        inputs = _expand_inputs(images, {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm"})
        targets = _output_paths(inputs, out, ".icz")
        if sum(x is not None for x in (bits, quality)) + (target_ssim is not None or max_bytes is not None) > 1:
            raise InvcompError("give at most one of --bits, --quality, and --target-ssim/--max-bytes")
        if quality is not None:
            bits = bits_for_quality(quality)
        codec = Codec(model, device)
        cfg = InversionConfig(bits=bits if bits is not None else codec.model.default_bits, steps=steps,
                              restarts=restarts, seed=seed)
        targeted = target_ssim is not None or max_bytes is not None
        masked = _mask_options(mask_scheme, keep, mask, drop_outside, assist_bits, loss, seed, targeted)
        if targeted:
            choose([Candidate(2, b"", 0.0, 0.0)], target_ssim, max_bytes)  # validates the targets up front
        if batch_size < 1:
            raise InvcompError("--batch-size must be >= 1")
        loaded = [read_image(p) for p in inputs]
        user_masks = None
        if mask is not None:  # checked against every input before anything is fitted or written
            from .masks import load_user_mask

            user_masks = [load_user_mask(mask, im.pixels.shape[:2], codec.resolution) for im in loaded]
        notes = [f"{p}: {n}" for p, im in zip(inputs, loaded) for n in im.notes]
        for p, im in zip(inputs, loaded):
            h, w = im.pixels.shape[:2]
            if (h, w) != (codec.resolution,) * 2:
                notes.append(f"{p}: {w}x{h} centre-cropped and resized to {codec.resolution}x{codec.resolution} "
                             "(original size stored; decode --original-size restores it)")
        if not as_json:
            for n in notes:
                typer.echo(f"note: {n}", err=True)
        t0 = time.perf_counter()
        choices: list[Choice] = []
        with _progress_bar("fit") as bar:
            task = bar.add_task("fit", total=len(inputs), rate="")
            for i in range(0, len(loaded), batch_size):
                chunk = [im.pixels for im in loaded[i : i + batch_size]]
                if masked is not None:
                    from .inpaint import compress_masked

                    prepared = [codec.prepare(p) for p in chunk]
                    user = user_masks[i : i + batch_size] if user_masks else None
                    choices.extend(Choice(Candidate(cfg.bits, d, 0.0, 0.0), True) for d in compress_masked(
                        codec, [p for p, _ in prepared], [s for _, s in prepared], masked, cfg, user, batch_size))
                elif targeted:
                    found = codec.compress_candidates(chunk, OPERATING_BITS, cfg, batch_size)
                    choices.extend(choose(c, target_ssim, max_bytes) for c in found)
                else:
                    choices.extend(Choice(Candidate(cfg.bits, d, 0.0, 0.0), True)
                                   for d in codec.compress_batch(chunk, cfg, batch_size))
                for choice, dst in zip(choices[i:], targets[i:]):
                    if choice.met or max_bytes is None:  # a byte limit that is not met writes nothing
                        write_atomic(dst, choice.candidate.data)
                done = len(choices)
                bar.update(task, completed=done, rate=f"{done / (time.perf_counter() - t0):.2f} img/s")
        seconds = time.perf_counter() - t0
        rows = []
        for src, dst, im, choice in zip(inputs, targets, loaded, choices):
            data = choice.candidate.data
            fitted, _ = codec.prepare(im.pixels)
            psnr, ssim = image_quality(fitted[None], codec.decompress(data)[None])
            row = {"input": str(src), "output": str(dst) if choice.met or max_bytes is None else None,
                   "bytes": len(data), "bits": choice.candidate.bits, "bpp": round(8 * len(data) / (codec.resolution**2), 4),
                   "psnr": round(float(psnr[0]), 3), "ssim": round(float(ssim[0]), 4)}
            if targeted:
                row.update(target_met=choice.met, reason=choice.reason or None)
            rows.append(row)
        summary = {"images": len(rows), "model": model, "bits": cfg.bits if not targeted else None,
                   "target_ssim": target_ssim, "max_bytes": max_bytes, "steps": cfg.steps, "restarts": cfg.restarts,
                   "mean_bytes": round(float(np.mean([r["bytes"] for r in rows])), 2),
                   "mean_bpp": round(float(np.mean([r["bpp"] for r in rows])), 4),
                   "mean_psnr": round(float(np.mean([r["psnr"] for r in rows])), 3),
                   "mean_ssim": round(float(np.mean([r["ssim"] for r in rows])), 4),
                   "targets_missed": sum(not c.met for c in choices),
                   "seconds": round(seconds, 3), "device": str(codec.device)}
        unwritten = [r for r in rows if r["output"] is None]
        if as_json:
            typer.echo(json.dumps({"files": rows, "summary": summary, "notes": notes}, indent=2))
        else:
            for r in rows:
                miss = f"  (target not met: {r['reason']})" if r.get("target_met") is False else ""
                where = r["output"] or f"{r['input']}: NOT WRITTEN"
                typer.echo(f"{where}: {r['bytes']} bytes ({r['bits']}-bit), {r['bpp']:.3f} bpp, "
                           f"PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f}{miss}")
            typer.echo(f"{summary['images']} image(s): mean {summary['mean_bytes']:.1f} bytes, {summary['mean_bpp']:.3f} bpp, "
                       f"PSNR {summary['mean_psnr']:.2f} dB, SSIM {summary['mean_ssim']:.4f} "
                       f"in {seconds:.2f} s on {summary['device']} (quality at {codec.resolution}x{codec.resolution})")
        if unwritten:
            typer.echo(f"invcomp: error: {len(unwritten)} image(s) cannot meet --max-bytes {max_bytes}; no file written for them",
                       err=True)
            raise typer.Exit(1)
    except InvcompError as e:
        fail(str(e))


def _mask_options(scheme, keep, mask, drop_outside, assist_bits, loss, seed, targeted):
    """fit's mask options as MaskOptions, or None for a plain fit; errors for combinations that make no sense."""
    from .inpaint import MaskOptions

    if mask is not None and scheme not in (None, "user"):
        raise InvcompError("give --mask or --mask-scheme, not both")
    if mask is None and scheme == "user":
        raise InvcompError("--mask-scheme user needs --mask roi.png")
    if mask is None and scheme is None:
        if drop_outside or loss != "ssim+mse":
            raise InvcompError("--drop-outside and --loss need --mask or --mask-scheme")
        return None
    if targeted:
        raise InvcompError("--target-ssim/--max-bytes cannot be combined with masks yet")
    return MaskOptions("user" if mask is not None else scheme, keep, assist_bits, loss, drop_outside, seed)


@app.command()
def decode(
    files: List[Path] = typer.Argument(..., help=".icz files or folders"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="output PNG (one input) or folder"),
    original_size: bool = typer.Option(False, "--original-size", help="resize to the size the image had before fitting"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="custom generator .pt (default: from the file)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
) -> None:
    """Decode .icz files to PNG images."""
    from .codec import decompress
    from .imageio import write_png

    try:
        inputs = _expand_inputs(files, {".icz"})
        targets = _output_paths(inputs, out, ".png")
        for src, dst in zip(inputs, targets):
            pixels = decompress(_read_bytes(src), model=model, device=device, original_size=original_size)
            write_png(dst, pixels)
            typer.echo(f"{dst}: {pixels.shape[1]}x{pixels.shape[0]}")
    except InvcompError as e:
        fail(str(e))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvcompError(f"{path}: cannot read ({e.strerror})") from None


@app.command()
def info(
    file: Path = typer.Argument(..., help="an .icz file"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show an .icz file's header."""
    from .bitstream import ENCODING_NAMES, VERSION, unpack_header
    from .registry import model_for_fingerprint

    try:
        data = _read_bytes(file)
        header, pos = unpack_header(data)
        known = model_for_fingerprint(header.fingerprint)
        fields = {"file": str(file), "bytes": len(data), "version": VERSION, "fingerprint": header.fingerprint.hex(),
                  "model": known.name if known else None, "bits": header.bits,
                  "encoding": ENCODING_NAMES[header.encoding], "original_size": header.original_size,
                  "header_bytes": pos, "payload_bytes": len(data) - pos, "mask_scheme": None}
        if header.extension is not None:  # kept pixels: the block's first byte names the mask scheme
            from .masks import SCHEMES

            scheme = header.extension[0]
            fields["mask_scheme"] = SCHEMES[scheme] if scheme < len(SCHEMES) else f"unknown ({scheme})"
            fields["extension_bytes"] = len(header.extension)
        if as_json:
            typer.echo(json.dumps(fields, indent=2))
        else:
            blanks = {"model": "(model not installed)", "mask_scheme": "(none: no kept pixels)"}
            same = "(same as the model's)"
            for k, v in fields.items():
                typer.echo(f"{k:14s} {v if v is not None else blanks.get(k, same)}")
    except InvcompError as e:
        fail(str(e))


@app.command()
def models(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the pretrained generators."""
    from .rate import quality_levels
    from .registry import REGISTRY

    rows = [{"name": m.name, "resolution": m.resolution, "latent": m.latent_dim, "default_bits": m.default_bits,
             "file": m.file, "sha256": m.sha256, "encoder": m.encoder_file, "domain": m.domain} for m in REGISTRY.values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'name':14s} {'size':>7s} {'latent':>6s} {'bits':>4s}  {'sha256':14s} domain")
    for r in rows:
        typer.echo(f"{r['name']:14s} {r['resolution']:>4d}px {r['latent']:>6d} {r['default_bits']:>4d}  {r['sha256'][:12]}.. {r['domain']}")
    presets = ", ".join(f"{q} = {b} bits" for q, b in quality_levels().items())
    typer.echo(f"\n--quality presets (every model): {presets}")


@app.command()
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

    from .codec import Codec
    from .collection import load_collection
    from .datasets import resolve_data_path
    from .evaluate import evaluate_invcomp, evaluate_webp, markdown_table
    from .imageio import write_atomic
    from .invert import InversionConfig

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


# --- commands kept in their own modules ------------------------------------------------
# Each such module defines its commands with `@app.command()` on the `app` above; importing
# it here registers them. One line per module, below this comment.
from . import cli_bench  # noqa: E402,F401
from . import cli_archive  # noqa: E402,F401
from . import cli_ablate  # noqa: E402,F401
