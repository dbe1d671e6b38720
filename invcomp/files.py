"""Writing files safely: a temporary file beside the target, renamed into place.

Every file invcomp writes goes through `atomic_writer` (or `write_atomic`), so a reader never
sees a half-written file and an interrupted write leaves the old file (or nothing) behind.
The result gets the permissions a plain `open(path, "w")` would give: the existing file's mode
when it replaces one, otherwise 0o666 less the process umask (mkstemp alone would give 0o600).

A full disk or an I/O error while writing becomes an `InvcompError` naming the file (the
temporary file is removed, the old file is untouched). Every file invcomp writes to is opened
through `open_binary` (the archive writer's in-place appends too), the one place where tests
inject write faults.
"""
from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from invcomp.errors import InvcompError


def current_umask() -> int:
    """The process umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only done where /proc is missing)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def fsync_dir(path: Path) -> None:
    """Flush the folder holding `path`, so a rename into it survives a crash (best effort)."""
    try:
        fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_binary(target: str | os.PathLike | int, mode: str, buffering: int = -1) -> BinaryIO:
    """Open a file (a path, or a descriptor it takes over) in a binary mode for writing:
    every file invcomp writes is opened here."""
    return open(target, mode, buffering=buffering)


def write_all(f: BinaryIO, data: bytes) -> None:
    """Write every byte to an unbuffered file (whose write may write fewer bytes than given)."""
    view = memoryview(data)
    while view:
        n = f.write(view)
        if not n:
            raise OSError(f"short write ({len(view)} bytes left)")
        view = view[n:]


def write_error(path: str | os.PathLike, e: OSError, after: str = "") -> InvcompError:
    """The one-line error for a failed write: the file, the system's reason, and what is kept."""
    reason = e.strerror or str(e) or type(e).__name__
    return InvcompError(f"{path}: cannot write ({reason})" + (f"; {after}" if after else ""))


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: renamed into place when the block ends without an
    error (after fsync), deleted when it raises. Seek and truncate work as on any file.
    An OSError (a full disk, an I/O error) becomes an InvcompError naming `path`; the file
    that was there before stays as it was."""
    p = Path(path)
    mode = _mode_for(p)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
    except OSError as e:
        raise write_error(p, e, "nothing written") from None
    try:
        with open_binary(fd, "w+b") as f:
            yield f
            f.flush()
            os.chmod(tmp, mode)
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            kept = "the existing file is unchanged" if p.exists() else "nothing written"
            raise write_error(p, e, kept) from None
        raise


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to `path` atomically (see atomic_writer)."""
    with atomic_writer(path) as f:
        f.write(data)
