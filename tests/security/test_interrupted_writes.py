"""Processes killed in the middle of writing (issue 7): never a partial file, never a touched input."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from invcomp.codec import Codec
from invcomp.files import write_atomic


def _digest_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _wait_for(predicate, limit: float) -> None:
    t0 = time.monotonic()
    while not predicate() and time.monotonic() - t0 < limit:
        time.sleep(0.01)


@pytest.mark.slow
def test_killing_fit_never_leaves_a_partial_icz_or_touches_the_input(tmp_path, tiny_weights, tiny_model):
    """SIGKILL `invcomp fit` at several moments (during start-up, just as the 1st output appears,
    a little after it, and just as the 2nd appears); every .icz left behind decodes, and the inputs are
    byte-for-byte untouched. The runs go in parallel to share the start-up time."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(inputs / f"img{i}.png")
    before = _digest_tree(inputs)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    points = [(0, 0.5), (1, 0.0), (1, 0.05), (2, 0.0)]  # (outputs to wait for, then seconds more)
    runs = []
    for i, point in enumerate(points):
        out = tmp_path / f"out{i}"
        cmd = [sys.executable, "-m", "invcomp", "fit", str(inputs), "-o", str(out), "--model", str(tiny_weights),
               "--steps", "150", "--batch-size", "1", "--device", "cpu", "--seed", str(i)]
        runs.append([subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env), out, point, None])
    t0 = time.monotonic()
    try:
        while any(r[0].poll() is None for r in runs) and time.monotonic() - t0 < 300:
            for r in runs:
                proc, out, (k, extra), reached = r
                if proc.poll() is not None:
                    continue
                n = len(list(out.glob("*.icz"))) if out.exists() else 0
                if reached is None and n >= k:
                    r[3] = reached = time.monotonic()
                if reached is not None and time.monotonic() - reached >= extra:
                    proc.send_signal(signal.SIGKILL)
            time.sleep(0.005)
    finally:
        for proc, *_ in runs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert all(r[0].returncode == -signal.SIGKILL for r in runs), "a run finished before its kill point"
    assert _digest_tree(inputs) == before
    codec = Codec(tiny_model, "cpu")
    seen = []
    for _, out, (k, _), _ in runs:
        files = sorted(out.iterdir()) if out.exists() else []
        icz = [f for f in files if f.suffix == ".icz"]
        for f in icz:
            pixels = codec.decompress(f.read_bytes(), original_size=True)  # raises if partial or corrupt
            assert pixels.shape == (40, 44, 3)
        for f in files:  # only write_atomic's hidden temporary files may be left by a kill
            assert f.suffix == ".icz" or (f.name.startswith(".") and f.name.endswith(".tmp")), f.name
        assert len(icz) >= k
        seen.append(len(icz))
    assert seen[-1] >= 2  # the kills did land after outputs had been written


def test_killing_write_atomic_leaves_the_old_or_the_new_file(tmp_path):
    """Kill a (forked) process rewriting one 8 MB file in a loop at many moments: the file is
    always complete, old or new, never partial."""
    target = tmp_path / "out.icz"
    old, new = bytes(range(256)) * (8 << 12), bytes(range(255, -1, -1)) * (8 << 12)
    target.write_bytes(old)
    for delay in (0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3):
        pid = os.fork()
        if pid == 0:  # child: rewrite forever, alternating contents
            try:
                while True:
                    write_atomic(target, new)
                    write_atomic(target, old)
            finally:
                os._exit(1)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert target.read_bytes() in (old, new)
    for leftover in tmp_path.iterdir():
        assert leftover == target or (leftover.name.startswith(".out.icz.") and leftover.name.endswith(".tmp"))


def test_write_atomic_cleans_up_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "x.icz"
    target.write_bytes(b"old")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.icz"]
