"""The codec commands: fit (compress), decode, info, models."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from invcomp.cli.common import IMAGE_SUFFIXES, ProgressBar, expand_inputs, fail, guarded, naming, output_paths, read_bytes


@guarded
def fit(
    images: list[Path] = typer.Argument(..., help="image files or folders"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="output file (one input) or folder"),
    model: str = typer.Option("airplanes32", "--model", "-m",
                              help="pretrained generator (see `invcomp models`; NAME@VERSION), a custom .pt, or auto "
                                   "(per image, the model that fits it best)"),
    bits: Optional[int] = typer.Option(None, help="bits per latent dimension, 2..12 (default: the model's)"),
    quality: Optional[int] = typer.Option(None, "--quality", "-q",
                                          help="preset 1..10 (1 = smallest files; 6.. add an enhancement part; "
                                               "see `invcomp models`)"),
    target_ssim: Optional[float] = typer.Option(None, help="per image, the smallest file with at least this SSIM"),
    target_psnr: Optional[float] = typer.Option(None, help="per image, the smallest file with at least this PSNR (dB)"),
    max_bytes: Optional[int] = typer.Option(None, help="per image, the best file of at most this many bytes"),
    metric: str = typer.Option("ssim", help="with only --max-bytes: what 'best' means, ssim or psnr"),
    layers: int = typer.Option(1, help="enhancement parts per file, each twice as fine (trim cuts between them)"),
    enhance: bool = typer.Option(True, "--enhance/--no-enhance",
                                 help="targets may add enhancement parts (--no-enhance: the latent alone)"),
    steps: int = typer.Option(100, help="optimisation steps per start"),
    restarts: int = typer.Option(1, help="starts per image (encoder start + random ones)"),
    seed: int = typer.Option(0),
    batch_size: int = typer.Option(64, help="images inverted at once"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    precision: str = typer.Option("auto", help="generator compute type while fitting: auto (bf16 where native), fp32, bf16"),
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

    The rate is the model's default, or --bits, or a --quality preset; --target-ssim,
    --target-psnr and --max-bytes choose it per image: every base bit depth is fitted in one
    run, then enhancement parts (what G(z) missed, coded after the latent) are added where they
    pay, and the cheapest file that meets the targets is kept. A --max-bytes that an image
    cannot meet writes no file for it and exits with status 1; a quality target that cannot be
    met keeps the closest file and says so.
    """
    import time

    import numpy as np

    from invcomp.codec import Codec
    from invcomp.domain import quality_notes
    from invcomp.errors import InvcompError
    from invcomp.files import write_atomic
    from invcomp.formats.icz import split_file
    from invcomp.inversion.invert import InversionConfig
    from invcomp.io.images import read_image
    from invcomp.options import fit_options

    inputs = expand_inputs(images, IMAGE_SUFFIXES)
    targets = output_paths(inputs, out, ".icz")
    targeted = target_ssim is not None or max_bytes is not None or target_psnr is not None
    if batch_size < 1:
        raise InvcompError("--batch-size must be >= 1")
    settings = dict(steps=steps, restarts=restarts, seed=seed, **({"bits": bits} if bits is not None else {}))
    checks = (quality, target_ssim, max_bytes, mask_scheme, keep, mask is not None, drop_outside, assist_bits, loss,
              bits is not None, target_psnr, metric, layers, enhance)
    fit_options(InversionConfig(**settings), *checks)  # every option checked before a model is loaded
    loaded = [read_image(p) for p in inputs]
    pixels = [im.pixels for im in loaded]
    if model == "auto":  # per image, the registered model whose encoder start fits it best
        from invcomp.domain import choose_models

        chosen = choose_models(pixels, device, batch_size)
    else:
        chosen = [model] * len(loaded)
    codecs = {name: Codec(name, device, precision) for name in dict.fromkeys(chosen)}
    plans = {name: fit_options(c.config(**settings), *checks) for name, c in codecs.items()}
    user_masks: list = [None] * len(loaded)
    if mask is not None:  # checked against every input before anything is fitted or written
        from invcomp.masks.schemes import load_user_mask

        user_masks = [load_user_mask(mask, px.shape[:2], codecs[name].resolution) for px, name in zip(pixels, chosen)]
    notes = [f"{p}: {n}" for p, im in zip(inputs, loaded) for n in im.notes]
    for p, px, name in zip(inputs, pixels, chosen):
        s = codecs[name].resolution
        if model == "auto":
            notes.append(f"{p}: model {name}")
        if px.shape[:2] != (s, s):
            notes.append(f"{p}: {px.shape[1]}x{px.shape[0]} centre-cropped and resized to {s}x{s} "
                         "(original size stored; decode --original-size restores it)")
    if not as_json:
        for n in notes:
            typer.echo(f"note: {n}", err=True)
    t0 = time.perf_counter()
    choices: list = [None] * len(loaded)
    with ProgressBar("fit", len(inputs)) as bar:
        done = 0
        for name, codec in codecs.items():
            group = [i for i, n in enumerate(chosen) if n == name]
            for k in range(0, len(group), batch_size):
                part = group[k : k + batch_size]
                users = [user_masks[i] for i in part] if mask is not None else None
                for i, choice in zip(part, codec.choose_files([pixels[i] for i in part], plans[name], users, batch_size)):
                    choices[i] = choice
                    if choice.within(max_bytes):  # a file over the byte limit is not written
                        write_atomic(targets[i], choice.candidate.data)
                done += len(part)
                bar.update(done, len(inputs))
    seconds = time.perf_counter() - t0
    rows = []
    for src, dst, choice, name in zip(inputs, targets, choices, chosen):
        c, s = choice.candidate, codecs[name].resolution
        row = {"input": str(src), "output": str(dst) if choice.within(max_bytes) else None, "model": name,
               "bytes": c.size, "bits": c.bits, "parts": len(split_file(c.data)[2]), "bpp": round(8 * c.size / (s * s), 4),
               "psnr": round(c.psnr, 3), "ssim": round(c.ssim, 4)}
        if targeted:
            row.update(target_met=choice.met, reason=choice.reason or None)
        rows.append(row)
    low = []  # far below the model's usual quality: probably outside its domain
    for name in codecs:
        idx = [i for i, n in enumerate(chosen) if n == name]
        found = quality_notes(codecs[name].model.name, [pixels[i] for i in idx], [rows[i]["ssim"] for i in idx],
                              [rows[i]["bits"] for i in idx], device)
        low += [f"{rows[i]['input']}: {n}" for i, n in zip(idx, found) if n]
    notes.extend(low)
    cfg = next(iter(plans.values())).inversion
    sizes = sorted({f"{c.resolution}x{c.resolution}" for c in codecs.values()})
    summary = {"images": len(rows), "model": model, "bits": cfg.bits if not targeted else None,
               "target_ssim": target_ssim, "target_psnr": target_psnr, "max_bytes": max_bytes, "steps": cfg.steps, "restarts": cfg.restarts,
               **{f"mean_{k}": round(float(np.mean([r[k] for r in rows])), d)
                  for k, d in (("bytes", 2), ("bpp", 4), ("psnr", 3), ("ssim", 4))},
               "targets_missed": sum(not c.met for c in choices),
               "seconds": round(seconds, 3), "device": str(next(iter(codecs.values())).device)}
    if as_json:
        typer.echo(json.dumps({"files": rows, "summary": summary, "notes": notes}, indent=2))
    else:
        for r, choice in zip(rows, choices):
            miss = f"  (target not met: {r['reason']})" if r.get("target_met") is False else ""
            where = r["output"] or f"{r['input']}: NOT WRITTEN"
            layers = f" + {r['parts']} part{'s' if r['parts'] > 1 else ''}" if r["parts"] else ""
            c = choice.candidate  # unrounded, as the reason's figures are
            typer.echo(f"{where}: {r['bytes']} bytes ({r['bits']}-bit{layers}), {r['bpp']:.3f} bpp, "
                       f"PSNR {c.psnr:.2f} dB, SSIM {c.ssim:.4f}{miss}")
        for n in low:
            typer.echo(f"note: {n}", err=True)
        typer.echo(f"{summary['images']} image(s): mean {summary['mean_bytes']:.1f} bytes, {summary['mean_bpp']:.3f} bpp, "
                   f"PSNR {summary['mean_psnr']:.2f} dB, SSIM {summary['mean_ssim']:.4f} "
                   f"in {seconds:.2f} s on {summary['device']} (quality at {', '.join(sizes)})")
    unwritten = sum(r["output"] is None for r in rows)
    if unwritten:
        fail(f"{unwritten} image(s) cannot meet --max-bytes {max_bytes}; no file written for them", status=1)


@guarded
def decode(
    files: list[Path] = typer.Argument(..., help=".icz files or folders"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="output PNG (one input) or folder"),
    original_size: bool = typer.Option(False, "--original-size", help="resize to the size the image had before fitting"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="custom generator .pt (default: from the file)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
) -> None:
    """Decode .icz files to PNG images."""
    from invcomp.codec import decompress
    from invcomp.io.images import write_png

    inputs = expand_inputs(files, {".icz"})
    targets = output_paths(inputs, out, ".png")
    for src, dst in zip(inputs, targets):
        data = read_bytes(src)
        with naming(src):
            pixels = decompress(data, model=model, device=device, original_size=original_size)
        write_png(dst, pixels)
        typer.echo(f"{dst}: {pixels.shape[1]}x{pixels.shape[0]}")


@guarded
def info(
    file: Path = typer.Argument(..., help="an .icz file"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show an .icz file's header."""
    from invcomp.formats.icz import ENCODING_NAMES, split_file, unpack_header
    from invcomp.formats.icz import MASK_SCHEMES as SCHEMES
    from invcomp.models.registry import model_for_fingerprint

    data = read_bytes(file)
    with naming(file):
        header, pos = unpack_header(data)
        _, base, parts = split_file(data)
    known = model_for_fingerprint(header.fingerprint)
    fields = {"file": str(file), "bytes": len(data), "version": data[2], "fingerprint": header.fingerprint.hex(),
              "model": known.name if known else None, "model_version": known.version if known else None,
              "bits": header.bits,
              "encoding": ENCODING_NAMES[header.encoding], "original_size": header.original_size,
              "header_bytes": pos, "payload_bytes": len(base), "part_bytes": [len(p) for p in parts], "mask_scheme": None}
    if header.extension is not None:  # kept pixels: the block's first byte names the mask scheme
        scheme = header.extension[0]
        fields["mask_scheme"] = SCHEMES[scheme] if scheme < len(SCHEMES) else f"unknown ({scheme})"
        fields["extension_bytes"] = len(header.extension)
    if as_json:
        typer.echo(json.dumps(fields, indent=2))
    else:
        blanks = {"model": "(not installed: a later invcomp release, or --model PATH.pt with its weights)",
                  "model_version": "-", "mask_scheme": "(none: no kept pixels)"}
        same = "(same as the model's)"
        for k, v in fields.items():
            typer.echo(f"{k:14s} {v if v is not None else blanks.get(k, same)}")


def models(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the pretrained generators, every installed version (a plain --model NAME is the newest)."""
    from invcomp.enhance.presets import presets, step_size
    from invcomp.models.registry import REGISTRY, all_versions

    rows = [{"name": m.name, "version": m.version, "key": m.key, "newest": REGISTRY.get(m.name) is m,
             "fingerprint": m.fingerprint.hex(), "resolution": m.resolution, "latent": m.latent_dim,
             "default_bits": m.default_bits, "prior_weight": m.default_prior_weight,
             "prior_weights": {str(b): w for b, w in m.prior_weights}, "file": m.file,
             "sha256": m.sha256, "encoder": m.encoder_file,
             "domain": m.domain} for m in sorted(all_versions(), key=lambda m: (m.name, m.version))]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'name':14s} {'version':>7s} {'fingerprint':11s} {'size':>6s} {'latent':>6s} {'bits':>4s}  "
               f"{'sha256':14s} domain")
    for r in rows:
        version = f"{r['version']}{'' if r['newest'] else ' (old)'}"
        typer.echo(f"{r['name']:14s} {version:>7s} {r['fingerprint']:11s} {r['resolution']:>4d}px {r['latent']:>6d} "
                   f"{r['default_bits']:>4d}  {r['sha256'][:12]}.. {r['domain']}")
    table = ", ".join(f"{q} = {b} bits" + (f" + part at step {step_size(st):g}" if st is not None else "")
                      for q, (b, st) in presets().items())
    typer.echo(f"\n--quality presets (every model): {table}")
    typer.echo("--model NAME uses the newest version; NAME@VERSION a given one. Files name their generator by "
               "fingerprint, so files of every version listed here decode.")


@guarded
def trim(
    file: Path = typer.Argument(..., help="an .icz file"),
    out: Path = typer.Option(..., "--out", "-o", help="the smaller file to write"),
    max_bytes: Optional[int] = typer.Option(None, help="drop enhancement parts from the end until the file fits"),
    parts: Optional[int] = typer.Option(None, help="keep this many enhancement parts (0: the base alone)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Make a smaller file by dropping enhancement parts from the end, without fitting again (the
    result is exactly the file a cut after its last kept part would be, and decodes to that quality)."""
    from invcomp.errors import InvcompError
    from invcomp.files import write_atomic
    from invcomp.formats.icz import split_file, with_parts

    if (max_bytes is None) == (parts is None):
        raise InvcompError("give one of --max-bytes and --parts")
    if out.resolve() == file.resolve():
        raise InvcompError(f"{out}: refusing to overwrite the input file (choose another --out)")
    data = read_bytes(file)
    with naming(file):
        _, _, found = split_file(data)
    if parts is not None:
        if not 0 <= parts <= len(found):
            raise InvcompError(f"--parts must be 0..{len(found)} (the file has {len(found)} enhancement parts)")
        kept = found[:parts]
    else:
        kept = list(found)
        while kept and len(with_parts(data, kept)) > max_bytes:
            kept.pop()
        if len(with_parts(data, kept)) > max_bytes:
            raise InvcompError(f"{file}: its base alone is {len(with_parts(data, []))} bytes > --max-bytes {max_bytes} "
                               "(trim only drops enhancement parts; fit again with a smaller --max-bytes)")
    result = with_parts(data, kept)
    write_atomic(out, result)
    row = {"input": str(file), "output": str(out), "bytes_before": len(data), "bytes": len(result),
           "parts_before": len(found), "parts": len(kept)}
    if as_json:
        typer.echo(json.dumps(row, indent=2))
    else:
        typer.echo(f"{out}: {len(result)} bytes ({len(kept)} of {len(found)} enhancement parts; was {len(data)} bytes)")
