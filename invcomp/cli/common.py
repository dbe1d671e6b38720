"""What every command shares: the one-line error, the progress bar, notices, and input/output paths.

Imports nothing heavy at module level (no torch, numpy or rich), so `--help` stays fast.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from invcomp.errors import InvcompError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm"}
MAX_NOTES = 5


def short_help(command: Callable) -> str:
    """A command's line in the list of commands: its docstring's first paragraph, whole, on one line (click
    would cut it at 45 characters)."""
    return " ".join((command.__doc__ or "").strip().split("\n\n")[0].split())


def fail(message: str, status: int = 2) -> None:
    """Print `invcomp: error: message` to stderr and exit with `status`."""
    typer.echo(f"invcomp: error: {message}", err=True)
    raise typer.Exit(status)


class ProgressBar:
    """A rich progress bar on stderr (rate and ETA), removed when done; `advance(k)` counts k more
    items, `update(done, total)` sets both (for library callbacks that report counts)."""

    def __init__(self, label: str, total: int | None = None, unit: str = "img"):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                             TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=True)
        self._task = self._bar.add_task(label, total=total, rate="")
        self._unit, self._t0, self._start = unit, time.perf_counter(), None

    def __enter__(self) -> ProgressBar:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def update(self, done: int, total: int | None = None) -> None:
        if self._start is None:
            self._start = (done, time.perf_counter())  # rate counts what is done in this run, not resumed work
        first, t0 = self._start
        elapsed = time.perf_counter() - t0
        rate = f"{(done - first) / elapsed:.2f} {self._unit}/s" if done > first and elapsed > 0 else ""
        self._bar.update(self._task, completed=done, total=total, rate=rate)

    def advance(self, k: int = 1) -> None:
        self.update(int(self._bar.tasks[0].completed) + k, self._bar.tasks[0].total)


class Notes:
    """Notices to stderr: the first few, then a count; all of them kept for --json."""

    def __init__(self, quiet: bool):
        self.quiet, self.all = quiet, []

    def __call__(self, text: str) -> None:
        self.all.append(text)
        if not self.quiet and len(self.all) <= MAX_NOTES:
            typer.echo(f"note: {text}", err=True)

    def finish(self) -> None:
        if not self.quiet and len(self.all) > MAX_NOTES:
            typer.echo(f"note: ... and {len(self.all) - MAX_NOTES} more notes like these", err=True)


def expand_inputs(paths: list[Path], suffixes: set[str]) -> list[Path]:
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


def output_paths(inputs: list[Path], out: Optional[Path], suffix: str) -> list[Path]:
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


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Errors raised inside name the file they are about (`x.icz: truncated file ...`)."""
    try:
        yield
    except InvcompError as e:
        raise InvcompError(f"{path}: {e}") from None


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvcompError(f"{path}: cannot read ({e.strerror})") from None


def os_error_message(e: OSError) -> str:
    """One line for an OSError that no library layer turned into an InvcompError (a safety net:
    writes are turned into InvcompError by invcomp.files and the archive writer)."""
    reason = e.strerror or str(e) or type(e).__name__
    return f"{e.filename}: {reason}" if e.filename else reason


def guarded(command: Callable) -> Callable:
    """Run a command body, turning InvcompError (and any stray OSError, e.g. a full disk) into the
    one-line error and exit status 2."""
    import functools

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InvcompError as e:
            fail(str(e))
        except OSError as e:
            fail(os_error_message(e))

    return run
