"""Faults lose nothing: a full disk (ENOSPC) or an I/O error (EIO) at any write or fsync of `fit`,
`decode`, `pack`, `add`, `merge` and `unpack` gives one line `invcomp: error: ...` and exit status 2,
leaves no half-written output (every output is complete or absent, no temporary files), and leaves an
existing archive intact, verifiable and resumable.

Injection: every file invcomp writes is opened through `invcomp.files.open_binary`; `DiskFull` wraps
it so that the n-th `write` call (counted over the whole command) writes the first half of its bytes
and raises ENOSPC, as a filling disk does. `FsyncFails` makes the n-th `os.fsync` of a file raise
EIO (a folder's fsync after a rename is best effort by design). Each test first runs the command
without a fault to count its writes (or fsyncs), then once for every n.
"""
import errno
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from invcomp import files
from invcomp.cli import app
from invcomp.errors import InvcompError
from invcomp.formats import icza

runner = CliRunner()
FAST = ["--steps", "2", "--device", "cpu"]
_real_open_binary = files.open_binary
_real_fsync = os.fsync


class _Faulty:
    """A file whose writes are counted by `owner`; the failing one writes half, then raises."""

    def __init__(self, f, owner):
        self._f, self._owner = f, owner

    def write(self, data):
        self._owner.writes += 1
        if self._owner.writes == self._owner.fail_at:
            self._f.write(bytes(data)[: len(data) // 2])
            self._f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._f.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


class DiskFull:
    def __init__(self, fail_at: int = 0):
        self.fail_at, self.writes = fail_at, 0

    def open_binary(self, target, mode, buffering=-1):
        return _Faulty(_real_open_binary(target, mode, buffering), self)


class FsyncFails:
    def __init__(self, fail_at: int = 0):
        self.fail_at, self.calls = fail_at, 0

    def fsync(self, fd):
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return _real_fsync(fd)  # a folder's fsync after a rename is best effort by design (files.fsync_dir)
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return _real_fsync(fd)


def _invoke(monkeypatch, args, fault):
    with monkeypatch.context() as m:
        if isinstance(fault, DiskFull):
            m.setattr(files, "open_binary", fault.open_binary)
        else:
            m.setattr(os, "fsync", fault.fsync)
        return runner.invoke(app, [str(a) for a in args])


def _count(monkeypatch, args, kind) -> int:
    fault = kind()
    r = _invoke(monkeypatch, args, fault)
    assert r.exit_code == 0, r.output
    n = fault.writes if kind is DiskFull else fault.calls
    assert n >= 1
    return n


def _failed_cleanly(r, reason: str) -> None:
    """Exit status 2, one line on stderr naming the cause (after any `note:` lines), no traceback."""
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit), r.exception
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("invcomp: error: "), r.stderr
    assert all(line.startswith("note: ") for line in lines[:-1]), r.stderr
    assert reason in lines[-1] and "Traceback" not in r.output, lines[-1]


def _no_leftovers(folder: Path, allowed: set[str] = frozenset()) -> None:
    left = [p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or
            (p.name.endswith(".partial") and p.name not in allowed)]
    assert not left, left


REASONS = {DiskFull: os.strerror(errno.ENOSPC), FsyncFails: os.strerror(errno.EIO)}
KINDS = pytest.mark.parametrize("kind", [DiskFull, FsyncFails], ids=["ENOSPC-write", "EIO-fsync"])


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


@pytest.fixture()
def src(tmp_path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    for i, im in enumerate(_images(7)):
        Image.fromarray(im).save(folder / f"p{i}.png")
    return folder


def _contents(path: Path) -> dict:
    with icza.ArchiveReader(path) as r:
        assert r.verify() == [] and r.tail == 0
        return {rec.name: tuple(rec.codes.tolist()) for rec in r.records()}


# --- fit and decode: every output whole or absent -----------------------------------------------

@KINDS
def test_fit_fault_at_every_write(tmp_path, monkeypatch, src, tiny_weights, kind):
    args = lambda out: ["fit", src, "-o", out, "-m", tiny_weights, "--batch-size", "3", *FAST]
    good = tmp_path / "good"
    total = _count(monkeypatch, args(good), kind)
    want = {p.name: p.read_bytes() for p in good.iterdir()}
    assert len(want) == 7
    for n in range(1, total + 1):
        out = tmp_path / f"f{n}"
        _failed_cleanly(_invoke(monkeypatch, args(out), kind(n)), REASONS[kind])
        got = {p.name: p.read_bytes() for p in out.iterdir()}
        assert len(got) < len(want) and all(got[k] == want[k] for k in got), n  # complete files, or none
        _no_leftovers(out)


@KINDS
def test_decode_fault_at_every_write(tmp_path, monkeypatch, src, tiny_weights, kind):
    icz = tmp_path / "icz"
    assert runner.invoke(app, ["fit", str(src), "-o", str(icz), "-m", str(tiny_weights), *FAST]).exit_code == 0
    args = lambda out: ["decode", icz, "-o", out, "-m", tiny_weights, "--device", "cpu"]
    good = tmp_path / "good"
    total = _count(monkeypatch, args(good), kind)
    want = {p.name: p.read_bytes() for p in good.iterdir()}
    for n in range(1, total + 1):
        out = tmp_path / f"d{n}"
        _failed_cleanly(_invoke(monkeypatch, args(out), kind(n)), REASONS[kind])
        got = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else {}
        assert len(got) < len(want) and all(got[k] == want[k] for k in got), n
        _no_leftovers(tmp_path)


def test_an_existing_output_survives_a_fault_while_it_is_replaced(tmp_path, monkeypatch, src, tiny_weights):
    out = tmp_path / "p0.icz"
    out.write_bytes(b"precious")
    r = _invoke(monkeypatch, ["fit", src / "p0.png", "-o", out, "-m", tiny_weights, *FAST], DiskFull(1))
    _failed_cleanly(r, "the existing file is unchanged")
    assert out.read_bytes() == b"precious"
    _no_leftovers(tmp_path)


# --- pack: no archive or the old one, and a partial that --resume finishes ---------------------

def _pack_args(out, src, weights, *extra):
    return ["pack", src, "-o", out, "-m", weights, "--batch-size", "2", *FAST, *extra]


@KINDS
def test_pack_fault_at_every_write_then_resume(tmp_path, monkeypatch, src, tiny_weights, kind):
    good = tmp_path / "good.icza"
    total = _count(monkeypatch, _pack_args(good, src, tiny_weights), kind)
    want = good.read_bytes()
    for n in range(1, total + 1):
        out = tmp_path / f"p{n}" / "a.icza"
        _failed_cleanly(_invoke(monkeypatch, _pack_args(out, src, tiny_weights), kind(n)), REASONS[kind])
        assert not out.exists(), n
        partial = out.with_name("a.icza.partial")
        _no_leftovers(out.parent, {partial.name})
        if partial.exists():  # the batches committed before the fault, intact; --resume finishes to the same bytes
            assert set(_contents(partial)) <= {f"p{i}" for i in range(7)}
            r = runner.invoke(app, [str(a) for a in _pack_args(out, src, tiny_weights, "--resume")])
            assert r.exit_code == 0, r.output
            assert out.read_bytes() == want and not partial.exists(), n


@KINDS
def test_pack_force_fault_keeps_the_old_archive(tmp_path, monkeypatch, src, tiny_weights, kind):
    out = tmp_path / "a.icza"
    assert runner.invoke(app, [str(a) for a in _pack_args(out, src / "p0.png", tiny_weights)]).exit_code == 0
    old = out.read_bytes()
    total = _count(monkeypatch, _pack_args(tmp_path / "count.icza", src, tiny_weights), kind)
    for n in range(1, total + 1):
        r = _invoke(monkeypatch, _pack_args(out, src, tiny_weights, "--force"), kind(n))
        _failed_cleanly(r, REASONS[kind])
        assert out.read_bytes() == old and list(_contents(out)) == ["p0"], n
        out.with_name("a.icza.partial").unlink(missing_ok=True)
        _no_leftovers(tmp_path)


# --- add: the archive keeps every committed batch, verifies, and a rerun completes it ----------

@KINDS
def test_add_fault_at_every_write(tmp_path, monkeypatch, src, tiny_weights, kind):
    base = tmp_path / "base.icza"
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy(src / "p0.png", first / "p0.png")
    assert runner.invoke(app, [str(a) for a in _pack_args(base, first, tiny_weights)]).exit_code == 0
    before = _contents(base)
    args = lambda a: ["add", a, src, "--skip-existing", "-m", tiny_weights, "--device", "cpu", "--batch-size", "2"]
    good = tmp_path / "good.icza"
    shutil.copy(base, good)
    total = _count(monkeypatch, args(good), kind)
    want = _contents(good)
    for n in range(1, total + 1):
        a = tmp_path / f"a{n}.icza"
        shutil.copy(base, a)
        _failed_cleanly(_invoke(monkeypatch, args(a), kind(n)), REASONS[kind])
        got = _contents(a)  # verifies, and no uncommitted tail is left
        assert {k: got[k] for k in before} == before and set(got) <= set(want), n
        assert all(got[k] == want[k] for k in got)
        r = runner.invoke(app, [str(x) for x in args(a)])
        assert r.exit_code == 0, r.output
        assert _contents(a) == want, n
        _no_leftovers(tmp_path)


# --- merge: no output, inputs untouched ---------------------------------------------------------

@KINDS
def test_merge_fault_at_every_write(tmp_path, monkeypatch, src, tiny_weights, kind):
    parts = []
    for i, names in enumerate((["p0.png", "p1.png"], ["p2.png"])):
        part = tmp_path / f"s{i}.icza"
        args = ["pack", *[src / n for n in names], "-o", part, "-m", tiny_weights, *FAST]
        assert runner.invoke(app, [str(a) for a in args]).exit_code == 0
        parts.append(part)
    before = [p.read_bytes() for p in parts]
    total = _count(monkeypatch, ["merge", *parts, "-o", tmp_path / "good.icza"], kind)
    existing = tmp_path / "old.icza"
    shutil.copy(parts[0], existing)
    for n in range(1, total + 1):
        out = tmp_path / f"m{n}.icza"
        _failed_cleanly(_invoke(monkeypatch, ["merge", *parts, "-o", out], kind(n)), REASONS[kind])
        assert not out.exists() and [p.read_bytes() for p in parts] == before
        _failed_cleanly(_invoke(monkeypatch, ["merge", *parts, "-o", existing, "--force"], kind(n)), REASONS[kind])
        assert existing.read_bytes() == before[0]
        _no_leftovers(tmp_path)


# --- unpack: every PNG whole or absent, the archive untouched -----------------------------------

@KINDS
def test_unpack_fault_at_every_write(tmp_path, monkeypatch, src, tiny_weights, kind):
    a = tmp_path / "a.icza"
    assert runner.invoke(app, [str(x) for x in _pack_args(a, src, tiny_weights)]).exit_code == 0
    before = a.read_bytes()
    args = lambda out: ["unpack", a, "-o", out, "-m", tiny_weights, "--device", "cpu"]
    good = tmp_path / "good"
    total = _count(monkeypatch, args(good), kind)
    want = {p.name: p.read_bytes() for p in good.iterdir()}
    for n in range(1, total + 1):
        out = tmp_path / f"u{n}"
        _failed_cleanly(_invoke(monkeypatch, args(out), kind(n)), REASONS[kind])
        got = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else {}
        assert len(got) < len(want) and all(got[k] == want[k] for k in got), n
        assert a.read_bytes() == before
        _no_leftovers(tmp_path)


# --- the library: a failed append is undone --------------------------------------------------------

def test_a_failed_append_leaves_the_archive_at_its_last_commit(tmp_path, monkeypatch):
    header = icza.ArchiveHeader("ab" * 32, "t", 32, 8, 3.0, 4, icza.canonical_config({}))
    rng = np.random.default_rng(0)
    recs = lambda names: [icza.Record(n, rng.integers(0, 16, 8)) for n in names]
    path = tmp_path / "a.icza"
    icza.create_archive(path, header)
    icza.append_segment(path, icza.encode_segment(recs(["a", "b"]), 4, 3.0), 2)
    before = path.read_bytes()
    for n in (1, 2):  # the segment's write, then the commit slot's
        monkeypatch.setattr(files, "open_binary", DiskFull(n).open_binary)
        with pytest.raises(InvcompError, match="No space left on device.*keeps its last commit"):
            icza.append_segment(path, icza.encode_segment(recs(["c"]), 4, 3.0), 1)
        monkeypatch.setattr(files, "open_binary", _real_open_binary)
        assert path.read_bytes() == before  # the slot put back, the half-written segment cut off
        assert set(_contents(path)) == {"a", "b"}


# --- a real limit from the operating system, no Python-level injection ---------------------------

_WITH_FILE_SIZE_LIMIT = """
import json, resource, signal, sys
from typer.testing import CliRunner
from invcomp.cli import app
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
out = []
for limit, args in json.loads(sys.argv[1]):
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    r = CliRunner().invoke(app, args)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    if r.exc_info and not isinstance(r.exception, SystemExit):
        import traceback
        out.append([r.exit_code, "".join(traceback.format_exception(*r.exc_info))])
    else:
        out.append([r.exit_code, r.stderr])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_file_size_limit_set_by_the_system_fails_as_cleanly(tmp_path, src, tiny_weights):
    """RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG, "File too large"): the real
    file objects, their buffers and close(), not a wrapper."""
    import json
    import resource
    import subprocess
    import sys

    good, small, mid, base = (tmp_path / f"{k}.icza" for k in ("good", "small", "mid", "base"))
    assert runner.invoke(app, [str(a) for a in _pack_args(good, src, tiny_weights)]).exit_code == 0
    assert runner.invoke(app, [str(a) for a in _pack_args(base, src / "p0.png", tiny_weights)]).exit_code == 0
    before = _contents(base)
    size = base.stat().st_size
    cases = [(100, _pack_args(small, src, tiny_weights)),  # the partial cannot even be created
             (good.stat().st_size + 200, _pack_args(mid, src, tiny_weights)),  # a later batch's append fails
             (size + 40, ["add", base, src, "--skip-existing", "-m", tiny_weights, "--device", "cpu", "--batch-size", "3"]),
             (10, ["fit", src / "p1.png", "-o", tmp_path / "p1.icz", "-m", tiny_weights, *FAST])]
    cases = [(limit, [str(a) for a in args]) for limit, args in cases]
    r = subprocess.run([sys.executable, "-c", _WITH_FILE_SIZE_LIMIT, json.dumps(cases)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    reason = os.strerror(errno.EFBIG)
    for code, stderr in json.loads(r.stdout.strip().splitlines()[-1]):
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 2 and lines[-1].startswith("invcomp: error: ") and reason in lines[-1], stderr
    assert not small.exists() and not small.with_name("small.icza.partial").exists()
    assert not mid.exists() and set(_contents(mid.with_name("mid.icza.partial"))) < set(_contents(good))
    assert runner.invoke(app, [str(a) for a in _pack_args(mid, src, tiny_weights, "--resume")]).exit_code == 0
    assert mid.read_bytes() == good.read_bytes()
    got = _contents(base)
    assert {k: got[k] for k in before} == before and base.stat().st_size <= size + 40
    assert not (tmp_path / "p1.icz").exists()
    _no_leftovers(tmp_path, {"mid.icza.partial"})
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY
