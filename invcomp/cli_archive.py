"""The .icza archive commands: pack, unpack, ls, verify, add, merge (format in archive.py).

Sources are streamed: images are listed by name first (names, duplicates and shards are
decided before any pixel is read), then read, inverted and appended one batch at a time.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence

import numpy as np
import typer

from . import archive as ar
from .cli import _progress_bar, app, fail
from .datasets import list_image_files
from .errors import InvcompError

MAX_NOTES = 5


# --- sources -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One picture to pack: its archive name and where its pixels are."""

    name: str
    path: Path
    row: int = -1  # row of an .npz `images` array, or -1 for an image file

    def where(self) -> str:
        return f"{self.path}[{self.row}]" if self.row >= 0 else str(self.path)


class NpzRows:
    """Rows of an .npz file's `images` array read in order from the zip stream, so memory
    holds one batch, not the whole array (np.load would decompress all of it)."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None
        self._next = 0
        self.shape: tuple[int, ...] = ()
        self._open()

    def _open(self) -> None:
        self.close()
        try:
            self._zip = zipfile.ZipFile(self.path)
            self._file = self._zip.open("images.npy")
            version = np.lib.format.read_magic(self._file)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read(self._file)
        except KeyError:
            raise InvcompError(f"{self.path}: no 'images' array in this .npz file") from None
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise InvcompError(f"{self.path}: cannot read .npz file ({e})") from None
        if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3 or fortran:
            raise InvcompError(f"{self.path}: 'images' must be uint8 N x H x W x 3, got {dtype} {shape}")
        self.shape, self._next = shape, 0

    def row(self, i: int) -> np.ndarray:
        if i < self._next:
            self._open()
        size = int(np.prod(self.shape[1:]))
        try:
            if i > self._next:
                self._skip((i - self._next) * size)
            raw = self._file.read(size)
        except (OSError, zipfile.BadZipFile, zlib.error) as e:
            raise InvcompError(f"{self.path}: cannot read .npz file ({e})") from None
        if len(raw) != size:
            raise InvcompError(f"{self.path}: truncated 'images' array")
        self._next = i + 1
        return np.frombuffer(raw, np.uint8).reshape(self.shape[1:]).copy()

    def _skip(self, nbytes: int) -> None:
        while nbytes > 0:
            got = len(self._file.read(min(nbytes, 1 << 20)))
            if not got:
                raise InvcompError(f"{self.path}: truncated 'images' array")
            nbytes -= got

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._zip.close()
            self._file = None


def npz_names(path: Path, count: int) -> list[str]:
    """Per-image names the way datasets.load_npz_images gives them: `filenames` stems, else
    image_<id>, else <file stem>_<row>."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "filenames" in f:
                names = [Path(str(n)).stem for n in f["filenames"]]
            elif "image_ids" in f:
                names = [f"image_{int(i):05d}" for i in f["image_ids"]]
            else:
                names = [f"{path.stem}_{i:05d}" for i in range(count)]
    except (OSError, ValueError) as e:
        raise InvcompError(f"{path}: cannot read .npz file ({e})") from None
    if len(names) != count:
        raise InvcompError(f"{path}: {len(names)} names for {count} images")
    return names


def list_sources(sources: Sequence[Path]) -> list[Item]:
    """Every picture of the sources, named: a file by its stem, a file in a folder by its
    path inside the folder without suffix ('/'-separated), an .npz row by the .npz's names.
    A name that occurs twice is an error naming both places."""
    items: list[Item] = []
    for src in sources:
        paths = [src]
        if not src.exists() and glob.has_magic(str(src)):
            paths = [Path(p) for p in sorted(glob.glob(str(src), recursive=True))]
            if not paths:
                raise InvcompError(f"{src}: no file matches")
        for p in paths:
            if p.is_dir():
                items += [Item(f.relative_to(p).with_suffix("").as_posix(), f) for f in list_image_files(p)]
            elif not p.exists():
                raise InvcompError(f"{p}: no such file")
            elif p.suffix.lower() == ".npz":
                rows = NpzRows(p)
                rows.close()
                items += [Item(n, p, i) for i, n in enumerate(npz_names(p, rows.shape[0]))]
            else:
                items.append(Item(p.stem, p))
    if not items:
        raise InvcompError("no images found in " + ", ".join(map(str, sources)))
    seen: dict[str, Item] = {}
    for it in items:
        ar.check_name(it.name)
        if it.name in seen:
            raise InvcompError(f"two pictures would be named {it.name!r}: {seen[it.name].where()} and {it.where()} "
                               "(rename one, or pack them into separate archives)")
        seen[it.name] = it
    return items


def parse_shard(text: Optional[str]) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InvcompError(f"--shard must look like i/N (e.g. 2/8), not {text!r}") from None
    if not 1 <= i <= n:
        raise InvcompError(f"--shard i/N needs 1 <= i <= N, not {text!r}")
    return i, n


def in_shard(name: str, shard: Optional[tuple[int, int]]) -> bool:
    """Shard membership depends on the name alone (crc32 of its UTF-8 bytes mod N), so it
    is the same on every machine and in any source order, and a name's duplicates meet."""
    return shard is None or zlib.crc32(name.encode("utf-8")) % shard[1] == shard[0] - 1


def read_batches(items: Sequence[Item], batch_size: int, resolution: int, skip_unreadable: bool,
                 notes: Callable[[str], None]) -> Iterator[tuple[list[Item], list[np.ndarray]]]:
    """(items, pixels at the model's size) a batch at a time."""
    from .imageio import fit_to_square, read_image

    npz: dict[Path, NpzRows] = {}
    try:
        batch: list[tuple[Item, np.ndarray]] = []
        for it in items:
            try:
                if it.row >= 0:
                    if it.path not in npz:
                        npz[it.path] = NpzRows(it.path)
                    pixels = npz[it.path].row(it.row)
                else:
                    loaded = read_image(it.path)
                    pixels = loaded.pixels
                    for n in loaded.notes:
                        notes(f"{it.where()}: {n}")
            except InvcompError as e:
                if not skip_unreadable:
                    raise
                notes(f"skipped {e}")
                continue
            h, w = pixels.shape[:2]
            if (h, w) != (resolution, resolution):
                notes(f"{it.where()}: {w}x{h} centre-cropped and resized to {resolution}x{resolution}")
            batch.append((it, fit_to_square(pixels, resolution)))
            if len(batch) == batch_size:
                yield [b[0] for b in batch], [b[1] for b in batch]
                batch = []
        if batch:
            yield [b[0] for b in batch], [b[1] for b in batch]
    finally:
        for rows in npz.values():
            rows.close()


# --- models and settings ----------------------------------------------------------------------

def model_for_archive(header: ar.ArchiveHeader, model: Optional[str], device: str):
    """A Codec for the archive's generator: the registered one with its sha256, or a custom .pt
    whose sha256 matches."""
    from .codec import Codec
    from .registry import REGISTRY

    if model is None:
        found = [m.name for m in REGISTRY.values() if m.sha256 == header.model_sha256]
        if not found:
            raise InvcompError(f"archive was made with model {header.model_name!r} (sha256 {header.model_sha256[:12]}...), "
                               "which is not installed; pass its weights with --model PATH.pt")
        model = found[0]
    codec = Codec(model, device)
    if codec.model.sha256 != header.model_sha256:
        raise InvcompError(f"--model {model} is not the archive's generator (sha256 {codec.model.sha256[:12]}... "
                           f"vs {header.model_sha256[:12]}...)")
    c = codec.model.config
    if (c.resolution, c.latent_dim, float(c.latent_range)) != (header.resolution, header.latent_dim, header.latent_range):
        raise InvcompError("corrupt archive header (resolution, latent size or range differ from its generator's)")
    return codec


def header_for(codec, cfg) -> ar.ArchiveHeader:
    c = codec.model.config
    return ar.ArchiveHeader(codec.model.sha256, codec.model.name, c.resolution, c.latent_dim, float(c.latent_range),
                            cfg.bits, ar.canonical_config(dataclasses.asdict(cfg)))


def config_of(header: ar.ArchiveHeader):
    """The archive's inversion settings as an InversionConfig (for `add`)."""
    from .invert import InversionConfig

    settings = header.settings()
    known = {f.name for f in dataclasses.fields(InversionConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise InvcompError(f"archive settings use option(s) this invcomp does not know: {', '.join(unknown)}")
    return InversionConfig(**settings)


def invert_codes(codec, pixels: list[np.ndarray], cfg) -> np.ndarray:
    """The quantized latents of a batch, exactly as Codec.compress_batch computes them."""
    from .invert import invert
    from .ssim import to_unit

    return invert(codec.model.generator, to_unit(np.stack(pixels)), cfg, codec.model.encoder).codes.numpy()


def decode_pixels(codec, codes: np.ndarray, bits: int) -> np.ndarray:
    """One picture, computed exactly as Codec.decompress does (a batch of one)."""
    import torch

    from .quantize import dequantize
    from .ssim import to_uint8

    with torch.no_grad():
        z = dequantize(torch.from_numpy(np.asarray(codes, np.int64))[None], bits, codec.model.config.latent_range)
        return to_uint8((codec.model.generator(z.to(codec.device)) + 1) / 2)[0]


# --- packing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackResult:
    pictures: int  # pictures appended now
    seconds: float


def append_batches(path: Path, codec, cfg, items: Sequence[Item], batch_size: int, skip_unreadable: bool,
                   notes: Callable[[str], None], progress: Callable[[int], None] | None = None) -> PackResult:
    """Invert `items` a batch at a time and append each batch as one committed segment."""
    t0 = time.perf_counter()
    done = 0
    for batch, pixels in read_batches(items, batch_size, codec.resolution, skip_unreadable, notes):
        codes = invert_codes(codec, pixels, cfg)
        records = [ar.Record(it.name, c) for it, c in zip(batch, codes)]
        ar.append_segment(path, ar.encode_segment(records, cfg.bits, float(codec.model.config.latent_range)), len(records))
        done += len(records)
        if progress:
            progress(len(records))
    return PackResult(done, time.perf_counter() - t0)


class Notes:
    """Notices to stderr: the first few of each kind, then a count."""

    def __init__(self, quiet: bool):
        self.quiet, self.all = quiet, []

    def __call__(self, text: str) -> None:
        self.all.append(text)
        if not self.quiet and len(self.all) <= MAX_NOTES:
            typer.echo(f"note: {text}", err=True)

    def finish(self) -> None:
        if not self.quiet and len(self.all) > MAX_NOTES:
            typer.echo(f"note: ... and {len(self.all) - MAX_NOTES} more notes like these", err=True)


def _bar_callbacks(bar, task, t0: float) -> Callable[[int], None]:
    def advance(k: int) -> None:
        bar.advance(task, k)
        done = bar.tasks[0].completed
        bar.update(task, rate=f"{done / max(time.perf_counter() - t0, 1e-9):.2f} img/s")

    return advance


def _summary(path: Path, seconds: float, packed: int) -> dict:
    with ar.ArchiveReader(path) as r:
        stats = ar.archive_stats(r)
    stats.update({"archive": str(path), "packed_now": packed, "seconds": round(seconds, 3),
                  "pictures_per_second": round(packed / seconds, 3) if seconds > 0 and packed else None})
    return stats


def _print_summary(s: dict, as_json: bool, notes: Notes) -> None:
    if as_json:
        typer.echo(json.dumps({**s, "notes": notes.all}, indent=2))
        return
    notes.finish()
    rate = f", {s['pictures_per_second']:.2f} pictures/s" if s["pictures_per_second"] else ""
    typer.echo(f"{s['archive']}: {s['pictures']} pictures, {s['bytes']} bytes ({s['bytes_per_picture']} per picture; "
               f"codes {s['code_bytes_per_picture']} per picture, {s['code_bytes_over_entropy']}x their zeroth-order "
               f"entropy){rate}")


@app.command()
def pack(
    sources: List[Path] = typer.Argument(..., help="image files, folders, globs or .npz files"),
    out: Path = typer.Option(..., "--out", "-o", help="the archive to write (NAME.icza)"),
    model: str = typer.Option("airplanes32", "--model", "-m", help="pretrained generator or a custom .pt"),
    bits: Optional[int] = typer.Option(None, help="bits per latent dimension (default: the model's)"),
    steps: int = typer.Option(100, help="optimisation steps per start"),
    restarts: int = typer.Option(1, help="starts per image"),
    seed: int = typer.Option(0),
    batch_size: int = typer.Option(64, help="images inverted (and committed) at once"),
    shard: Optional[str] = typer.Option(None, help="pack only shard i of N (i/N, 1-based; by name)"),
    resume: bool = typer.Option(False, help="complete an interrupted pack (NAME.icza.partial)"),
    force: bool = typer.Option(False, help="replace an existing archive"),
    skip_unreadable: bool = typer.Option(False, help="skip unreadable images with a notice instead of stopping"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Pack images into one .icza archive against one generator (crash-safe, resumable)."""
    from .codec import Codec
    from .invert import InversionConfig

    notes = Notes(as_json)
    try:
        if batch_size < 1:
            raise InvcompError("--batch-size must be >= 1")
        which = parse_shard(shard)
        partial = out.with_name(out.name + ".partial")
        if out.exists() and not force and not resume:
            raise InvcompError(f"{out} exists: use `invcomp add` to add pictures, or --force to replace it")
        if partial.exists() and not resume:
            raise InvcompError(f"{partial} exists (an interrupted pack): pass --resume to complete it, or delete it")
        items = [it for it in list_sources(sources) if in_shard(it.name, which)]
        inputs = {it.path.resolve() for it in items}
        if out.resolve() in inputs or partial.resolve() in inputs:
            raise InvcompError(f"{out}: refusing to overwrite an input file")
        codec = Codec(model, device)
        cfg = InversionConfig(bits=bits if bits is not None else codec.model.default_bits, steps=steps,
                              restarts=restarts, seed=seed)
        header = header_for(codec, cfg)
        if not items:  # an empty shard: an empty archive, so that every job of an i/N array succeeds and merges
            from .imageio import write_atomic

            write_atomic(out, ar.build_archive(header, []))
            notes(f"shard {shard} holds no pictures of these sources: wrote an empty archive")
            _print_summary(_summary(out, 0.0, 0), as_json, notes)
            return
        if resume and out.exists() and not partial.exists():  # finished earlier: a rerun is a no-op
            with ar.ArchiveReader(out) as r:
                same = r.header == header and set(r.names()) == {it.name for it in items}
            if not same:
                raise InvcompError(f"{out} exists with other pictures or settings, and there is no {partial.name} "
                                   "to resume; use `invcomp add`, or --force to replace it")
            notes(f"{out} is already complete")
            _print_summary(_summary(out, 0.0, 0), as_json, notes)
            return
        done: set[str] = set()
        if resume:
            for stale in ar.remove_stale_temporaries(out) + ar.remove_stale_temporaries(partial):
                notes(f"removed {stale.name}, left by an interrupted write")
        if partial.exists():
            with ar.ArchiveReader(partial) as r:
                if r.header != header:
                    raise InvcompError(f"{partial} was made with other settings or another model; "
                                       "resume with the same options, or delete it")
                if r.damaged():
                    raise InvcompError(f"{partial} is damaged; run `invcomp verify {partial}` or delete it")
                done = set(r.names())
            extra = done - {it.name for it in items}
            if extra:
                raise InvcompError(f"{partial} holds {len(extra)} picture(s) not in these sources "
                                   f"(e.g. {sorted(extra)[0]!r}); resume with the same sources")
            notes(f"resuming: {len(done)} of {len(items)} pictures already packed")
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            ar.create_archive(partial, header)
        todo = [it for it in items if it.name not in done]
        t0 = time.perf_counter()
        try:
            with ar.exclusive(partial), _progress_bar("pack") as bar:
                task = bar.add_task("pack", total=len(items), completed=len(done), rate="")
                result = append_batches(partial, codec, cfg, todo, batch_size, skip_unreadable, notes,
                                        _bar_callbacks(bar, task, t0))
        except InvcompError as e:
            with ar.ArchiveReader(partial) as r:
                kept = len(r)
            if not kept:
                partial.unlink()
                raise
            raise InvcompError(f"{e} (the {kept} pictures packed so far are kept in {partial}; "
                               "fix the cause and run again with --resume, or use --skip-unreadable)") from None
        with ar.ArchiveReader(partial) as r:
            if len(r) == 0:
                raise InvcompError("no image could be read; nothing packed")
            ar.write_compacted(out, header, [r])
        partial.unlink()
        ar.fsync_dir(out)
        _print_summary(_summary(out, time.perf_counter() - t0, result.pictures), as_json, notes)
    except InvcompError as e:
        notes.finish()
        fail(str(e))


@app.command()
def add(
    archive: Path = typer.Argument(..., help="an .icza archive"),
    sources: List[Path] = typer.Argument(..., help="image files, folders, globs or .npz files"),
    skip_existing: bool = typer.Option(False, help="skip pictures whose name is already in the archive "
                                                  "(e.g. to finish an interrupted add)"),
    skip_unreadable: bool = typer.Option(False, help="skip unreadable images with a notice"),
    batch_size: int = typer.Option(64),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="custom generator .pt (default: from the archive)"),
    device: str = typer.Option("auto"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Append pictures to an archive, with its settings, without rewriting what is there."""
    notes = Notes(as_json)
    try:
        if batch_size < 1:
            raise InvcompError("--batch-size must be >= 1")
        with ar.ArchiveReader(archive) as r:
            header, existing = r.header, set(r.names())
            if r.damaged():
                raise InvcompError(f"{archive} is damaged; run `invcomp verify {archive}`")
        items = list_sources(sources)
        if archive.resolve() in {it.path.resolve() for it in items}:
            raise InvcompError(f"{archive}: the archive cannot be one of its own sources")
        clash = [it.name for it in items if it.name in existing]
        if clash and not skip_existing:
            raise InvcompError(f"{archive} already holds a picture named {clash[0]!r}"
                               + (f" (and {len(clash) - 1} more)" if len(clash) > 1 else "")
                               + "; pass --skip-existing to skip such pictures")
        if clash:
            notes(f"skipped {len(clash)} picture(s) already in the archive")
        todo = [it for it in items if it.name not in existing]
        codec = model_for_archive(header, model, device)
        cfg = config_of(header)
        t0 = time.perf_counter()
        with ar.exclusive(archive), _progress_bar("add") as bar:
            task = bar.add_task("add", total=len(todo), rate="")
            result = append_batches(archive, codec, cfg, todo, batch_size, skip_unreadable, notes,
                                    _bar_callbacks(bar, task, t0))
        _print_summary(_summary(archive, time.perf_counter() - t0, result.pictures), as_json, notes)
    except InvcompError as e:
        notes.finish()
        fail(str(e))


@app.command()
def merge(
    inputs: List[Path] = typer.Argument(..., help=".icza archives (e.g. the shards of one pack)"),
    out: Path = typer.Option(..., "--out", "-o", help="the archive to write"),
    force: bool = typer.Option(False, help="replace an existing archive"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Join archives made with the same model and settings into one (name order, one table):
    the shards of `pack --shard i/N` merge to exactly the bytes of a single pack."""
    notes = Notes(as_json)
    readers: list[ar.ArchiveReader] = []
    try:
        if out.resolve() in {p.resolve() for p in inputs}:
            raise InvcompError(f"{out}: refusing to overwrite an input archive")
        if out.exists() and not force:
            raise InvcompError(f"{out} exists: pass --force to replace it")
        for p in inputs:
            readers.append(ar.ArchiveReader(p))
        first = readers[0].header
        for r in readers[1:]:
            if r.header != first:
                diff = [f.name for f in dataclasses.fields(first) if getattr(first, f.name) != getattr(r.header, f.name)]
                raise InvcompError(f"{r.path} differs from {readers[0].path} in {', '.join(diff)}; "
                                   "only archives of the same model and settings merge")
        t0 = time.perf_counter()
        total = sum(len(r) for r in readers)
        with _progress_bar("merge") as bar:
            task = bar.add_task("merge", total=total, rate="")
            ar.write_compacted(out, first, readers, progress=_bar_callbacks(bar, task, t0))
        for r in readers:
            r.close()
        _print_summary(_summary(out, time.perf_counter() - t0, 0), as_json, notes)
    except InvcompError as e:
        fail(str(e))
    finally:
        for r in readers:
            r.close()


# --- reading -------------------------------------------------------------------------------

def _open(path: Path) -> ar.ArchiveReader:
    if not path.exists():
        raise InvcompError(f"{path}: no such file")
    return ar.ArchiveReader(path)


@app.command()
def unpack(
    archive: Path = typer.Argument(..., help="an .icza archive"),
    names: Optional[List[str]] = typer.Argument(None, help="pictures to extract (default: all)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="output folder (default: beside the archive, named after it)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="custom generator .pt (default: from the archive)"),
    device: str = typer.Option("auto"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Decode pictures of an archive to PNG files (NAME.png, folders as in the names);
    one picture by name is read and decoded without touching the others."""
    from .imageio import write_png

    try:
        with _open(archive) as r:
            wanted = list(names) if names else r.names()
            missing = [n for n in wanted if n not in r]
            if missing:
                raise InvcompError(f"{archive}: no picture named {missing[0]!r}")
            folder = out if out is not None else archive.with_suffix("")
            codec = model_for_archive(r.header, model, device)
            written, damaged = [], []
            with _progress_bar("unpack") as bar:
                task = bar.add_task("unpack", total=len(wanted), rate="")
                for name in wanted:
                    try:
                        pixels = decode_pixels(codec, r.codes(name), r.header.bits)
                    except InvcompError as e:
                        damaged.append(name)
                        typer.echo(f"invcomp: warning: {e}", err=True)
                        continue
                    dst = folder / (name + ".png")
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    write_png(dst, pixels)
                    written.append(str(dst))
                    bar.advance(task)
        if as_json:
            typer.echo(json.dumps({"written": written, "damaged": damaged}, indent=2))
        else:
            typer.echo(f"{len(written)} picture(s) -> {folder}/")
        if damaged:
            fail(f"{len(damaged)} damaged picture(s) not written: {', '.join(damaged[:10])}")
    except InvcompError as e:
        fail(str(e))


@app.command(name="ls")
def ls_(
    archive: Path = typer.Argument(..., help="an .icza archive"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List an archive's pictures (name, bytes of codes) and its settings."""
    try:
        with _open(archive) as r:
            h = r.header
            rows = [{"name": n, "bytes": r.record_bytes(n)} for n in r.names()]
            info = {"archive": str(archive), "bytes": r.slot.end, "pictures": len(rows), "model": h.model_name,
                    "model_sha256": h.model_sha256, "resolution": h.resolution, "latent": h.latent_dim,
                    "bits": h.bits, "settings": h.settings(), "segments": len(r.segments),
                    "uncommitted_tail_bytes": r.tail}
        if as_json:
            typer.echo(json.dumps({**info, "pictures_list": rows}, indent=2))
            return
        for row in rows:
            typer.echo(f"{row['bytes']:6d}  {row['name']}")
        typer.echo(f"{info['pictures']} pictures, {info['bytes']} bytes, model {h.model_name} ({h.model_sha256[:12]}...), "
                   f"{h.bits} bits, {info['segments']} segment(s)")
    except InvcompError as e:
        fail(str(e))


@app.command()
def verify(
    archive: Path = typer.Argument(..., help="an .icza archive"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check every checksum and decode every picture's codes; names the damaged pictures.
    Exit status 0: intact; 1: damage found (listed); 2: not a readable archive."""
    try:
        with _open(archive) as r:
            problems = r.verify()
            report = {"archive": str(archive), "pictures": len(r), "bytes": r.slot.end,
                      "uncommitted_tail_bytes": r.tail,
                      "damaged": sorted({n for p in problems for n in p.names}),
                      "lost_unnamed": sum(p.lost for p in problems),
                      "problems": [dataclasses.asdict(p) for p in problems]}
    except InvcompError as e:
        fail(str(e))
        return
    intact = all(p.redundant for p in problems)
    if as_json:
        typer.echo(json.dumps({**report, "ok": not problems, "all_pictures_intact": intact}, indent=2))
    else:
        for p in problems:
            typer.echo(f"offset {p.offset}: {p.message}" + (f": {', '.join(p.names)}" if p.names else ""))
        if report["uncommitted_tail_bytes"]:
            typer.echo(f"note: {report['uncommitted_tail_bytes']} uncommitted bytes after the end (an interrupted add); "
                       "ignored, and removed by the next add")
        verdict = "ok" if not problems else ("all pictures intact, spare copies damaged" if intact else "DAMAGED")
        typer.echo(f"{archive}: {verdict}: {report['pictures']} pictures, {len(report['damaged'])} damaged"
                   + (f", {report['lost_unnamed']} lost with their names" if report["lost_unnamed"] else ""))
    if problems:
        raise typer.Exit(1)
