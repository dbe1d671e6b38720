"""The .icza archive commands: pack, add, merge, unpack, ls, verify (the work is in invcomp.archive)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import typer

from invcomp.cli.common import Notes, ProgressBar, fail, guarded, os_error_message
from invcomp.errors import InvcompError


def _print_summary(s: dict, as_json: bool, notes: Notes) -> None:
    if as_json:
        typer.echo(json.dumps({**s, "notes": notes.all}, indent=2))
        return
    notes.finish()
    rate = f", {s['pictures_per_second']:.2f} images/s" if s["pictures_per_second"] else ""
    parts = f"; enhancement parts {s['part_bytes'] / s['pictures']:.1f} per image" if s.get("part_bytes") else ""
    typer.echo(f"{s['archive']}: {s['pictures']} images, {s['bytes']} bytes ({s['bytes_per_picture']} per image; "
               f"codes {s['code_bytes_per_picture']} per image, {s['code_bytes_over_entropy']}x their zeroth-order "
               f"entropy{parts}){rate}")


def pack(
    sources: list[Path] = typer.Argument(..., help="image files, folders, globs or .npz files"),
    out: Path = typer.Option(..., "--out", "-o", help="the archive to write (NAME.icza)"),
    model: str = typer.Option("airplanes32", "--model", "-m", help="pretrained generator or a custom .pt"),
    bits: Optional[int] = typer.Option(None, help="bits per latent dimension (default: the model's)"),
    steps: int = typer.Option(100, help="optimisation steps per start"),
    restarts: int = typer.Option(1, help="starts per image"),
    seed: int = typer.Option(0),
    batch_size: int = typer.Option(64, help="images inverted (and committed) at once"),
    max_bytes: Optional[int] = typer.Option(None, help="per image, enhancement parts up to this many bytes "
                                            "(counted as the image's .icz file would be)"),
    target_ssim: Optional[float] = typer.Option(None, help="per image, the fewest enhancement bytes reaching this SSIM"),
    target_psnr: Optional[float] = typer.Option(None, help="per image, the fewest enhancement bytes reaching this PSNR"),
    metric: str = typer.Option("ssim", help="with only --max-bytes: what 'best' means, ssim or psnr"),
    shard: Optional[str] = typer.Option(None, help="pack only shard i of N (i/N, 1-based; by name)"),
    resume: bool = typer.Option(False, help="complete an interrupted pack (NAME.icza.partial)"),
    force: bool = typer.Option(False, help="replace an existing archive"),
    skip_unreadable: bool = typer.Option(False, help="skip unreadable images with a notice instead of stopping"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    precision: str = typer.Option("auto", help="generator compute type while fitting: auto (bf16 where native), fp32, bf16"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Pack images into one .icza archive against one generator (crash-safe, resumable).

    --max-bytes, --target-ssim or --target-psnr add enhancement parts after each image's codes, chosen
    as `fit` chooses them at the archive's bits (each image's base fitted for SSIM, for parts or without
    the latent prior, whichever gives the better file); `add` adds new images with the same settings.
    For SSIM at budgets near 2.5 times the default file (WebP q0's mean bytes), --bits 4 makes the
    better archive (+0.01 SSIM on the test sets measured: docs/RESULTS.md, "Archives with parts").

    Under `torchrun --nproc_per_node N -m invcomp pack ...` the N processes share out the images and
    rank 0 merges their parts into the one archive (the bytes one process would write)."""
    import contextlib

    from invcomp import archive, distributed
    from invcomp.codec import Codec

    notes = Notes(as_json)
    try:
        which = archive.parse_shard(shard)
        with distributed.session(device) as dev:  # joins torchrun's process group when launched by it
            main = distributed.is_main()
            codec = Codec(model, dev, precision)
            cfg = codec.config(**({"bits": bits} if bits is not None else {}), steps=steps, restarts=restarts, seed=seed)
            enhance = None
            if max_bytes is not None or target_ssim is not None or target_psnr is not None:
                from invcomp.enhance.choose import Target

                enhance = Target(max_bytes, target_ssim, target_psnr, metric)
            run = archive.pack_distributed if distributed.active() else archive.pack
            with ProgressBar("pack") if main else contextlib.nullcontext() as bar:
                result = run(sources, out, codec, cfg, batch_size, which, resume, force, skip_unreadable,
                             notes, bar.update if main else lambda *_: None, enhance=enhance)
        if main:
            _print_summary(result, as_json, notes)
    except (InvcompError, OSError) as e:
        notes.finish()
        fail(str(e) if isinstance(e, InvcompError) else os_error_message(e))


def add(
    archive_path: Path = typer.Argument(..., metavar="ARCHIVE", help="an .icza archive"),
    sources: list[Path] = typer.Argument(..., help="image files, folders, globs or .npz files"),
    skip_existing: bool = typer.Option(False, help="skip images whose name is already in the archive "
                                                  "(e.g. to finish an interrupted add)"),
    skip_unreadable: bool = typer.Option(False, help="skip unreadable images with a notice"),
    batch_size: int = typer.Option(64),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="custom generator .pt (default: from the archive)"),
    device: str = typer.Option("auto"),
    precision: str = typer.Option("auto", help="generator compute type while fitting: auto (bf16 where native), fp32, bf16"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Append images to an archive, with its settings, without rewriting what is there."""
    from invcomp import archive

    notes = Notes(as_json)
    try:
        with ProgressBar("add") as bar:
            result = archive.add(archive_path, sources, model, device, batch_size, skip_existing, skip_unreadable,
                                 notes, bar.update, precision)
        _print_summary(result, as_json, notes)
    except (InvcompError, OSError) as e:
        notes.finish()
        fail(str(e) if isinstance(e, InvcompError) else os_error_message(e))


@guarded
def merge(
    inputs: list[Path] = typer.Argument(..., help=".icza archives (e.g. the shards of one pack)"),
    out: Path = typer.Option(..., "--out", "-o", help="the archive to write"),
    force: bool = typer.Option(False, help="replace an existing archive"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Join archives made with the same model and settings into one (name order, one table):
    the shards of `pack --shard i/N` merge to exactly the bytes of a single pack."""
    from invcomp import archive

    with ProgressBar("merge") as bar:
        result = archive.merge(inputs, out, force, bar.update)
    _print_summary(result, as_json, Notes(as_json))


@guarded
def unpack(
    archive_path: Path = typer.Argument(..., metavar="ARCHIVE", help="an .icza archive"),
    names: Optional[list[str]] = typer.Argument(None, help="pictures to extract (default: all)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="output folder (default: beside the archive, named after it)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="custom generator .pt (default: from the archive)"),
    device: str = typer.Option("auto"),
    original_size: bool = typer.Option(False, "--original-size", help="resize each image to the size it had before "
                                       "packing (archives of version 2 store it)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Decode images of an archive to PNG files (NAME.png, folders as in the names);
    one image by name is read and decoded without touching the others."""
    from invcomp import archive
    from invcomp.io.images import write_png

    folder = out if out is not None else archive_path.with_suffix("")
    written, damaged = [], []
    from invcomp.formats.icza import open_archive

    with open_archive(archive_path) as r, ProgressBar("unpack", len(names) if names else len(r)) as bar:
        if original_size and r.header.version < 2:
            typer.echo(f"invcomp: note: {archive_path} is a version {r.header.version} archive, which stores no original "
                       "sizes: images are written at the model's size", err=True)
        for item in archive.extract(r, names, model, device, original_size):
            if item.pixels is None:
                damaged.append(item.name)
                typer.echo(f"invcomp: warning: {item.error}", err=True)
                continue
            dst = folder / (item.name + ".png")
            dst.parent.mkdir(parents=True, exist_ok=True)
            write_png(dst, item.pixels)
            written.append(str(dst))
            bar.advance()
    if as_json:
        typer.echo(json.dumps({"written": written, "damaged": damaged}, indent=2))
    else:
        typer.echo(f"{len(written)} image(s) -> {folder}/")
    if damaged:
        fail(f"{len(damaged)} damaged image(s) not written: {', '.join(damaged[:10])}")


@guarded
def ls(
    archive_path: Path = typer.Argument(..., metavar="ARCHIVE", help="an .icza archive"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List an archive's images (name, bytes of codes) and its settings."""
    from invcomp.formats.icza import open_archive

    with open_archive(archive_path) as r:
        h = r.header
        rows = [{"name": n, "bytes": r.record_bytes(n)} for n in r.names()]
        info = {"archive": str(archive_path), "bytes": r.slot.end, "pictures": len(rows), "model": h.model_name,
                "model_sha256": h.model_sha256, "resolution": h.resolution, "latent": h.latent_dim,
                "bits": h.bits, "settings": h.settings(), "segments": len(r.segments),
                "uncommitted_tail_bytes": r.tail}
    if as_json:
        typer.echo(json.dumps({**info, "pictures_list": rows}, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['bytes']:6d}  {row['name']}")
    typer.echo(f"{info['pictures']} images, {info['bytes']} bytes, model {h.model_name} ({h.model_sha256[:12]}...), "
               f"{h.bits} bits, {info['segments']} segment(s)")


@guarded
def verify(
    archive_path: Path = typer.Argument(..., metavar="ARCHIVE", help="an .icza archive"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check every checksum and decode every image's codes; names the damaged images.
    Exit status 0: intact; 1: damage found (listed); 2: not a readable archive."""
    from invcomp.formats.icza import open_archive

    with open_archive(archive_path) as r:
        problems = r.verify()
        report = {"archive": str(archive_path), "pictures": len(r), "bytes": r.slot.end,
                  "uncommitted_tail_bytes": r.tail,
                  "damaged": sorted({n for p in problems for n in p.names}),
                  "lost_unnamed": sum(p.lost for p in problems),
                  "problems": [dataclasses.asdict(p) for p in problems]}
    intact = all(p.redundant for p in problems)
    if as_json:
        typer.echo(json.dumps({**report, "ok": not problems, "all_pictures_intact": intact}, indent=2))
    else:
        for p in problems:
            typer.echo(f"offset {p.offset}: {p.message}" + (f": {', '.join(p.names)}" if p.names else ""))
        if report["uncommitted_tail_bytes"]:
            typer.echo(f"note: {report['uncommitted_tail_bytes']} uncommitted bytes after the end (an interrupted add); "
                       "ignored, and removed by the next add")
        verdict = "ok" if not problems else ("all images intact, spare copies damaged" if intact else "DAMAGED")
        typer.echo(f"{archive_path}: {verdict}: {report['pictures']} images, {len(report['damaged'])} damaged"
                   + (f", {report['lost_unnamed']} lost with their names" if report["lost_unnamed"] else ""))
    if problems:
        raise typer.Exit(1)
