"""Domain archives: pack, add, merge and extract images of .icza archives through the codec.

Sources are streamed: images are listed by name first (names, duplicates and shards are
decided before any pixel is read), then read, inverted and appended one batch at a time, each
batch a committed segment of NAME.icza.partial; the finished pack is rewritten compacted (one
segment, one table, name order) and renamed into place. The bytes are `invcomp.formats.icza`;
the latents come from `Codec.fit_codes` and go back to pixels through `Codec.decode_codes`.

Callers pass `notes(text)` for notices and `progress(done, total)` for a progress display.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invcomp.codec import Codec
from invcomp.enhance.choose import Target
from invcomp.enhance.parts import apply_parts
from invcomp.errors import InvcompError
from invcomp.files import fsync_dir, write_atomic, write_error
from invcomp.formats import icza
from invcomp.formats.icz import split_file
from invcomp.inversion.invert import InversionConfig
from invcomp.io.images import resize_to
from invcomp.io.sources import Item, list_sources, read_batches
from invcomp.models.registry import model_for_sha256, not_installed
from invcomp.options import FitOptions

Notes = Callable[[str], None]
Progress = Callable[[int, int], None]


def _quiet(*_args) -> None:
    pass


# --- shards, models and settings -----------------------------------------------------------

def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/N' (1-based) -> (i, N); None -> None."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InvcompError(f"--shard must look like i/N (e.g. 2/8), not {text!r}") from None
    if not 1 <= i <= n:
        raise InvcompError(f"--shard i/N needs 1 <= i <= N, not {text!r}")
    return i, n


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    """Shard membership depends on the name alone (crc32 of its UTF-8 bytes mod N), so it
    is the same on every machine and in any source order, and a name's duplicates meet."""
    return shard is None or zlib.crc32(name.encode("utf-8")) % shard[1] == shard[0] - 1


def codec_for(header: icza.ArchiveHeader, model: str | None = None, device: str = "auto",
              precision: str = "auto") -> Codec:
    """A Codec for the archive's generator: the registered one with its sha256, or a custom .pt
    whose sha256 matches."""
    if model is None:
        info = model_for_sha256(header.model_sha256)
        if info is None:
            raise InvcompError("archive was made with "
                               + not_installed(f"model {header.model_name!r} (sha256 {header.model_sha256[:12]}...)"))
        model = info.key  # this exact version, which need not be the newest of its name
    codec = Codec(model, device, precision)
    if codec.model.sha256 != header.model_sha256:
        raise InvcompError(f"--model {model} is not the archive's generator (sha256 {codec.model.sha256[:12]}... "
                           f"vs {header.model_sha256[:12]}...)")
    c = codec.model.config
    if (c.resolution, c.latent_dim, float(c.latent_range)) != (header.resolution, header.latent_dim, header.latent_range):
        raise InvcompError("corrupt archive header (resolution, latent size or range differ from its generator's)")
    return codec


ENHANCE_KEY = "enhance"  # the settings' entry for enhancement parts (a Target's fields), absent when none


def header_for(codec: Codec, cfg: InversionConfig, enhance: Target | None = None) -> icza.ArchiveHeader:
    c = codec.model.config
    settings = cfg.settings()
    if enhance is not None:
        settings[ENHANCE_KEY] = {k: v for k, v in dataclasses.asdict(enhance).items() if v is not None}
    return icza.ArchiveHeader(codec.model.sha256, codec.model.name, c.resolution, c.latent_dim, float(c.latent_range),
                              cfg.bits, icza.canonical_config(settings))


def enhance_of(header: icza.ArchiveHeader) -> Target | None:
    """The archive's enhancement settings (for `add`), None when its images have no parts."""
    raw = header.settings().get(ENHANCE_KEY)
    if raw is None:
        return None
    try:
        return Target(**raw)
    except TypeError:
        raise InvcompError("archive enhancement settings use options this invcomp does not know") from None


def config_of(header: icza.ArchiveHeader) -> InversionConfig:
    """The archive's inversion settings as an InversionConfig (for `add`)."""
    settings = {k: v for k, v in header.settings().items() if k != ENHANCE_KEY}
    known = {f.name for f in dataclasses.fields(InversionConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise InvcompError(f"archive settings use option(s) this invcomp does not know: {', '.join(unknown)}")
    return InversionConfig(**settings)


def summary(path: Path, seconds: float, packed: int) -> dict:
    """The archive's byte accounting plus this run's count and rate."""
    with icza.ArchiveReader(path) as r:
        stats = icza.archive_stats(r)
    stats.update({"archive": str(path), "packed_now": packed, "seconds": round(seconds, 3),
                  "pictures_per_second": round(packed / seconds, 3) if seconds > 0 and packed else None})
    return stats


# --- writing -------------------------------------------------------------------------------

def fit_enhanced(codec: Codec, pixels: Sequence[np.ndarray], cfg: InversionConfig,
                 target: Target) -> tuple[np.ndarray, list[tuple[bytes, ...]]]:
    """Per image, its codes and the enhancement parts after them: the file `fit` would choose for `target`
    among the bases it fits at the archive's bit depth (fitted for SSIM, fitted for parts, and without the
    latent prior where that depth's tail has one), each searched for parts; the budget counts the .icz
    file's bytes. (Release 0.5.3 searched parts on the SSIM-fitted base alone.)"""
    options = FitOptions(cfg, target.target_ssim, target.max_bytes, None, target.target_psnr, target.metric,
                         target.layers, depths=(cfg.bits,))
    if options.target != target:
        raise InvcompError("archive enhancement settings use options this invcomp does not fit with")
    files = [c.candidate.data for c in codec.choose_files(list(pixels), options, batch_size=max(1, len(pixels)))]
    return np.stack([codec.decode(f)[1] for f in files]), [tuple(split_file(f)[2]) for f in files]


def append_batches(path: Path, codec: Codec, cfg: InversionConfig, items: Sequence[Item], batch_size: int,
                   skip_unreadable: bool, notes: Notes, advance: Callable[[int], None] = _quiet,
                   enhance: Target | None = None) -> int:
    """Invert `items` a batch at a time (adding enhancement parts when `enhance` asks) and append each
    batch as one committed segment; returns how many images were appended."""
    done = 0
    with icza.ArchiveReader(path, index=False) as r:
        version = r.header.version
    for batch, pixels, sizes in read_batches(items, batch_size, codec.resolution, skip_unreadable, notes):
        if enhance:
            codes, parts = fit_enhanced(codec, pixels, cfg, enhance)
        else:
            codes, parts = codec.fit_codes(np.stack(pixels), cfg), [()] * len(pixels)
        if version < 2 and any(sizes):
            notes(f"{path.name} is a version {version} archive, which stores no original sizes: `unpack --original-size` "
                  "will give these images at the model's size (`invcomp merge` rewrites it in the current version)")
            sizes = [None] * len(sizes)
        records = [icza.Record(it.name, c, size, p) for it, c, size, p in zip(batch, codes, sizes, parts)]
        segment = icza.encode_segment(records, cfg.bits, float(codec.model.config.latent_range), version=version)
        icza.append_segment(path, segment, len(records))
        done += len(records)
        advance(len(records))
    return done


def _counter(progress: Progress, total: int, done: int = 0) -> Callable[[int], None]:
    state = [done]
    progress(done, total)

    def advance(k: int) -> None:
        state[0] += k
        progress(state[0], total)

    return advance


def pack(sources: Sequence[Path], out: Path, codec: Codec, cfg: InversionConfig, batch_size: int = 64,
         shard: tuple[int, int] | None = None, resume: bool = False, force: bool = False,
         skip_unreadable: bool = False, notes: Notes = _quiet, progress: Progress = _quiet, *,
         enhance: Target | None = None) -> dict:
    """Pack images into `out` (crash-safe through out.partial; `resume` completes one); the summary.
    enhance: per image, enhancement parts after its codes that meet this target (recorded in the header)."""
    if batch_size < 1:
        raise InvcompError("--batch-size must be >= 1")
    partial = out.with_name(out.name + ".partial")
    if out.exists() and not force and not resume:
        raise InvcompError(f"{out} exists: use `invcomp add` to add images, or --force to replace it")
    if partial.exists() and not resume:
        raise InvcompError(f"{partial} exists (an interrupted pack): pass --resume to complete it, or delete it")
    items = [it for it in list_sources(sources) if in_shard(it.name, shard)]
    inputs = {it.path.resolve() for it in items}
    if out.resolve() in inputs or partial.resolve() in inputs:
        raise InvcompError(f"{out}: refusing to overwrite an input file")
    header = header_for(codec, cfg, enhance)
    if not items:  # an empty shard: an empty archive, so that every job of an i/N array succeeds and merges
        write_atomic(out, icza.build_archive(header, []))
        notes(f"shard {shard[0]}/{shard[1]} holds no images of these sources: wrote an empty archive" if shard
              else "no images: wrote an empty archive")
        return summary(out, 0.0, 0)
    if resume and out.exists() and not partial.exists():  # finished earlier: a rerun is a no-op
        with icza.ArchiveReader(out) as r:
            same = r.header == header and set(r.names()) == {it.name for it in items}
        if not same:
            raise InvcompError(f"{out} exists with other images or settings, and there is no {partial.name} "
                               "to resume; use `invcomp add`, or --force to replace it")
        notes(f"{out} is already complete")
        return summary(out, 0.0, 0)
    done = _open_partial(partial, out, header, items, resume, notes)
    todo = [it for it in items if it.name not in done]
    t0 = time.perf_counter()
    try:
        with icza.exclusive(partial):
            packed = append_batches(partial, codec, cfg, todo, batch_size, skip_unreadable, notes,
                                    _counter(progress, len(items), len(done)), enhance)
    except InvcompError as e:
        with icza.ArchiveReader(partial) as r:
            kept = len(r)
        if not kept:
            partial.unlink()
            raise
        raise InvcompError(f"{e} (the {kept} images packed so far are kept in {partial}; "
                           "fix the cause and run again with --resume, or use --skip-unreadable)") from None
    with icza.ArchiveReader(partial) as r:
        if len(r) == 0:
            raise InvcompError("no image could be read; nothing packed")
        try:
            icza.write_compacted(out, header, [r])
        except InvcompError as e:  # e.g. a full disk: the work is in the partial, which --resume finishes
            raise InvcompError(f"{e} (all {len(r)} images are packed in {partial}: fix the cause and run the same "
                               "pack again with --resume to finish it)") from None
    partial.unlink()
    fsync_dir(out)
    return summary(out, time.perf_counter() - t0, packed)


def _open_partial(partial: Path, out: Path, header: icza.ArchiveHeader, items: Sequence[Item], resume: bool,
                  notes: Notes) -> set[str]:
    """The names already in a partial pack being resumed (creating it when there is none)."""
    if resume:
        for stale in icza.remove_stale_temporaries(out) + icza.remove_stale_temporaries(partial):
            notes(f"removed {stale.name}, left by an interrupted write")
    if not partial.exists():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(out.parent, e, "nothing written") from None
        icza.create_archive(partial, header)
        return set()
    with icza.ArchiveReader(partial) as r:
        if r.header != header:
            raise InvcompError(f"{partial} was made with other settings or another model; "
                               "resume with the same options, or delete it")
        if r.damaged():
            raise InvcompError(f"{partial} is damaged; run `invcomp verify {partial}` or delete it")
        done = set(r.names())
    extra = done - {it.name for it in items}
    if extra:
        raise InvcompError(f"{partial} holds {len(extra)} image(s) not in these sources "
                           f"(e.g. {sorted(extra)[0]!r}); resume with the same sources")
    notes(f"resuming: {len(done)} of {len(items)} images already packed")
    return done


def add(archive: Path, sources: Sequence[Path], model: str | None = None, device: str = "auto", batch_size: int = 64,
        skip_existing: bool = False, skip_unreadable: bool = False, notes: Notes = _quiet,
        progress: Progress = _quiet, precision: str = "auto") -> dict:
    """Append images to an archive with its own settings, without rewriting what is there."""
    if batch_size < 1:
        raise InvcompError("--batch-size must be >= 1")
    with icza.ArchiveReader(archive) as r:
        header, existing = r.header, set(r.names())
        if r.damaged():
            raise InvcompError(f"{archive} is damaged; run `invcomp verify {archive}`")
    items = list_sources(sources)
    if archive.resolve() in {it.path.resolve() for it in items}:
        raise InvcompError(f"{archive}: the archive cannot be one of its own sources")
    clash = [it.name for it in items if it.name in existing]
    if clash and not skip_existing:
        raise InvcompError(f"{archive} already holds an image named {clash[0]!r}"
                           + (f" (and {len(clash) - 1} more)" if len(clash) > 1 else "")
                           + "; pass --skip-existing to skip such images")
    if clash:
        notes(f"skipped {len(clash)} image(s) already in the archive")
    todo = [it for it in items if it.name not in existing]
    codec = codec_for(header, model, device, precision)
    t0 = time.perf_counter()
    with icza.exclusive(archive):
        try:
            packed = append_batches(archive, codec, config_of(header), todo, batch_size, skip_unreadable, notes,
                                    _counter(progress, len(todo)), enhance_of(header))
        except InvcompError as e:  # every batch committed before the error stays in the archive
            with icza.ArchiveReader(archive) as r:
                added = len(r) - len(existing)
            if not added:
                raise
            raise InvcompError(f"{e} ({added} of the {len(todo)} new images were added before the error; "
                               "run the same add again with --skip-existing to add the rest)") from None
    return summary(archive, time.perf_counter() - t0, packed)


def merge(inputs: Sequence[Path], out: Path, force: bool = False, progress: Progress = _quiet) -> dict:
    """Join archives of the same model and settings into one (name order, one table): the shards
    of `pack --shard i/N` merge to exactly the bytes of a single pack."""
    if out.resolve() in {p.resolve() for p in inputs}:
        raise InvcompError(f"{out}: refusing to overwrite an input archive")
    if out.exists() and not force:
        raise InvcompError(f"{out} exists: pass --force to replace it")
    readers: list[icza.ArchiveReader] = []
    try:
        for p in inputs:
            readers.append(icza.ArchiveReader(p))
        first = readers[0].header
        for r in readers[1:]:
            if r.header != first:
                diff = [f.name for f in dataclasses.fields(first) if getattr(first, f.name) != getattr(r.header, f.name)]
                raise InvcompError(f"{r.path} differs from {readers[0].path} in {', '.join(diff)}; "
                                   "only archives of the same model and settings merge")
        t0 = time.perf_counter()
        icza.write_compacted(out, dataclasses.replace(first, version=icza.VERSION), readers,
                             progress=_counter(progress, sum(len(r) for r in readers)))
    finally:
        for r in readers:
            r.close()
    return summary(out, time.perf_counter() - t0, 0)


# --- packing under torchrun ----------------------------------------------------------------

def part_path(out: Path, rank: int, world: int) -> Path:
    """Where rank `rank` (0-based) of `world` packs its shard: OUT.part<rank+1>of<world>, beside `out`."""
    return out.with_name(f"{out.name}.part{rank + 1}of{world}")


def _parts_beside(out: Path) -> list[tuple[Path, int]]:
    """The parts of distributed packs of `out` lying beside it (finished or .partial), with their process count."""
    pattern = re.compile(re.escape(out.name) + r"\.part(\d+)of(\d+)(\.partial)?")
    if not out.parent.is_dir():
        return []
    return [(p, int(m.group(2))) for p in sorted(out.parent.iterdir()) if (m := pattern.fullmatch(p.name))]


def pack_distributed(sources: Sequence[Path], out: Path, codec: Codec, cfg: InversionConfig, batch_size: int = 64,
                     shard: tuple[int, int] | None = None, resume: bool = False, force: bool = False,
                     skip_unreadable: bool = False, notes: Notes = _quiet, progress: Progress = _quiet, *,
                     enhance: Target | None = None) -> dict:
    """`pack` split over the ranks of a torchrun group (`invcomp.distributed`), same arguments.

    Rank r packs shard r+1 of N (by name, as `--shard`) into its own crash-safe part beside `out`
    (OUT.part<r+1>of<N>, through its .partial); when every part is done, rank 0 merges them into `out`
    (`merge`: name order, one segment) and removes them. The shards of a pack merge to exactly the
    bytes of a single-process pack, so the archive is the one `pack` writes with the same settings.
    `progress` counts the images of all ranks; an error on any rank stops the others at their next
    batch, and a rank that stops answering ends the others after INVCOMP_DIST_TIMEOUT seconds.
    An interrupted run finishes with --resume and the same number of processes. Returns the
    archive's summary (on rank 0; the other ranks return their part's)."""
    from invcomp import distributed

    if shard is not None:
        raise InvcompError("--shard splits by hand: under torchrun the ranks share out the images themselves")
    rank, world = distributed.rank(), distributed.world_size()
    board = distributed.Board("pack")
    try:
        return _pack_rank(sources, out, codec, cfg, batch_size, resume, force, skip_unreadable, notes, progress,
                          rank, world, board, enhance)
    except Exception as e:
        board.fail(str(e) if isinstance(e, InvcompError) else f"{type(e).__name__}: {e}")
        # the others stop at their next batch; meeting them here lets every rank print its error before
        # torchrun ends the group (it stops all ranks when the first one exits)
        with contextlib.suppress(InvcompError):
            distributed.barrier()
        raise


def _pack_rank(sources: Sequence[Path], out: Path, codec: Codec, cfg: InversionConfig, batch_size: int, resume: bool,
               force: bool, skip_unreadable: bool, notes: Notes, progress: Progress, rank: int, world: int, board,
               enhance: Target | None = None) -> dict:
    t0 = time.perf_counter()
    if batch_size < 1:
        raise InvcompError("--batch-size must be >= 1")
    if out.exists() and not force and not resume:
        raise InvcompError(f"{out} exists: use `invcomp add` to add images, or --force to replace it")
    if out.with_name(out.name + ".partial").exists():
        raise InvcompError(f"{out.name}.partial exists (an interrupted single-process pack): finish it with "
                           "`invcomp pack --resume` without torchrun, or delete it")
    found = _parts_beside(out)
    other = sorted({n for _, n in found if n != world})
    if other:
        raise InvcompError(f"{out.name}.part*of{other[0]} exist (an interrupted pack on {other[0]} processes): resume it "
                           f"with --nproc_per_node {other[0]} (in all), or delete them")
    if resume and out.exists() and not found:  # finished earlier: every rank checks it, as `pack` does
        return pack(sources, out, codec, cfg, batch_size, None, True, False, skip_unreadable,
                    notes if rank == 0 else _quiet)
    items = list_sources(sources)
    shard = (rank + 1, world)
    mine = [it for it in items if in_shard(it.name, shard)]
    reported = [0]

    def said(text: str) -> None:
        notes(f"rank {rank}: {text}")

    def advance(done: int, _total: int) -> None:
        board.add("done", done - reported[0])
        reported[0] = done
        board.raise_if_failed()  # another rank failed: stop here (this part stays resumable)
        if rank == 0:
            progress(board.get("done"), len(items))

    part = pack(sources, part_path(out, rank, world), codec, cfg, batch_size, shard, resume, force, skip_unreadable,
                said if mine else _quiet, advance, enhance=enhance)  # an empty shard is an empty part, silently
    board.add("packed", part["packed_now"])
    board.add("finished")
    if rank != 0:
        board.wait("merged", 1, what="rank 0 to merge the parts")
        return part

    def tick() -> int:  # the bar keeps moving with the other ranks' batches while rank 0 waits
        done = board.get("done")
        progress(done, len(items))
        return done

    board.wait("finished", world, alive=tick, what="the other ranks to pack their shards")
    parts = [part_path(out, r, world) for r in range(world)]
    merge(parts, out, force=True)
    for p in parts:
        p.unlink()
    fsync_dir(out)
    board.add("merged")
    return summary(out, time.perf_counter() - t0, board.get("packed"))


# --- reading -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Extracted:
    """One image of an archive: its name and pixels, or the reason it could not be decoded."""

    name: str
    pixels: np.ndarray | None
    error: str = ""
    original_size: tuple[int, int] | None = None  # (width, height) before fitting, when the archive stores it


def extract(reader: icza.ArchiveReader, names: Sequence[str] | None = None, model: str | None = None,
            device: str = "auto", original_size: bool = False) -> Iterator[Extracted]:
    """Decode images of an open archive (all, or some by name, each read alone) one at a time,
    exactly as `Codec.decompress` decodes a file (a batch of one); `original_size` resizes an
    image to the size it had before fitting, where the archive stores one."""
    wanted = list(names) if names else reader.names()
    missing = [n for n in wanted if n not in reader]
    if missing:
        raise InvcompError(f"{reader.path}: no image named {missing[0]!r}")
    codec = codec_for(reader.header, model, device)
    for name in wanted:
        try:
            codes, parts = reader.codes(name), reader.parts(name)
            pixels = codec.decode_codes(codes[None], reader.header.bits)[0]
            if parts:  # enhancement parts, as in an .icz of version 2
                pixels = apply_parts(pixels, parts)
        except InvcompError as e:
            yield Extracted(name, None, str(e) if str(reader.path) in str(e) else f"{reader.path}: image {name!r}: {e}")
            continue
        size = reader.original_size(name)
        if original_size and size:
            pixels = resize_to(pixels, *size)
        yield Extracted(name, pixels, original_size=size)
