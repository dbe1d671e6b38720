"""Scale-out with torchrun: the process-group helpers, and `train` and `pack` run as 2 processes on
this CPU (gloo) against a single process."""
import json
import os
import socket
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from invcomp import distributed
from invcomp.archive import pack_distributed, part_path
from invcomp.cli import app
from invcomp.errors import InvcompError

runner = CliRunner()
TINY_TRAIN = ["--latent", "8", "--width", "8", "--epochs", "2", "--batch-size", "4", "--holdout", "8", "--device", "cpu"]
TINY_PACK = ["--steps", "4", "--batch-size", "2", "--device", "cpu"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]


def _torchrun(n, args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "INVCOMP_DIST_TIMEOUT": "60"}
    return subprocess.run([*TORCHRUN, str(n), "-m", "invcomp", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=150)


@pytest.fixture()
def no_launcher(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)


# --- the helpers, in one process -------------------------------------------------------------

def test_outside_torchrun_everything_is_rank_0_of_1(no_launcher):
    assert not distributed.launched() and not distributed.active()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    with distributed.session("cpu") as dev:
        assert dev == "cpu" and not distributed.active()
    distributed.barrier()
    assert distributed.sum_over_ranks([1.0, 2.5]) == [1.0, 2.5] and distributed.from_main(2) == 2


def test_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "2.5")
    assert distributed.timeout_seconds() == 2.5
    for bad in ("0", "-1", "soon"):
        monkeypatch.setenv(distributed.TIMEOUT_ENV, bad)
        with pytest.raises(InvcompError, match=distributed.TIMEOUT_ENV):
            distributed.timeout_seconds()


def test_board_counts_posts_the_first_error_and_never_waits_forever(no_launcher, monkeypatch):
    board = distributed.Board("t")
    assert board.add("n", 2) == 2 and board.get("n") == 2 and board.error() is None
    board.wait("n", 2)  # reached: returns at once
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "0.3")
    with pytest.raises(InvcompError, match="waited 0 s for the others without progress"):
        board.wait("n", 3, what="the others")
    board.fail("disk full")
    board.fail("second")
    assert board.error() == "rank 0: disk full"
    with pytest.raises(InvcompError, match="stopped because rank 0: disk full"):
        board.wait("n", 3)


def test_a_group_of_one_joins_through_the_environment(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(key, value)
    assert distributed.launched()
    with distributed.session("cpu") as dev:
        assert dev == "cpu" and distributed.active() and distributed.world_size() == 1
        board = distributed.Board("one")  # the group's TCPStore
        assert board.add("k", 3) == 3 and board.get("k") == 3 and board.error() is None
        board.fail("boom")
        assert board.error() == "rank 0: boom"
        distributed.barrier()
    assert not distributed.active()


def test_pack_distributed_refuses_a_hand_made_shard(tmp_path):
    assert part_path(tmp_path / "a.icza", 1, 4).name == "a.icza.part2of4"
    with pytest.raises(InvcompError, match="--shard"):
        pack_distributed([tmp_path], tmp_path / "a.icza", None, None, shard=(1, 2))


# --- two processes under torchrun ------------------------------------------------------------

@pytest.mark.slow
def test_train_on_two_processes_then_resume_on_one(tmp_path, monkeypatch):
    np.savez(tmp_path / "d.npz", images=np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8))
    args = ["train", "d.npz", "-o", "out/g.pt", "--work-dir", "wd", *TINY_TRAIN]
    r = _torchrun(2, [*args, "--minutes", "0"], tmp_path)  # --minutes 0: stop after the first epoch
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("trained 1 epochs on 2 processes") == 1  # rank 0 alone prints
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["d.npz", "out/g.best.encoder.pt", "out/g.best.pt", "out/g.encoder.pt", "out/g.pt",
                       "wd/checkpoint.pt", "wd/log.jsonl",
                       "wd/samples/epoch_001.png"]
    records = [json.loads(line) for line in (tmp_path / "wd" / "log.jsonl").read_text().splitlines()]
    assert [(x["epoch"], x["world_size"]) for x in records] == [(1, 2)]  # one record: only rank 0 appended
    # the 2-process checkpoint (plain state dicts) continues in one process
    monkeypatch.chdir(tmp_path)
    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    r = runner.invoke(app, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    assert "resumed at epoch 1" in r.stderr and "trained 2 epochs in" in r.stdout
    records = [json.loads(line) for line in (tmp_path / "wd" / "log.jsonl").read_text().splitlines()]
    assert [(x["epoch"], x["world_size"]) for x in records] == [(1, 2), (2, 1)]
    assert (tmp_path / "wd" / "samples" / "epoch_002.png").exists()
    # rank 0 failing to write an epoch's files ends both ranks, each with its one-line error
    (tmp_path / "bad" / "wd" / "samples" / "epoch_001.png").mkdir(parents=True)
    r = _torchrun(2, ["train", "../d.npz", "-o", "out/g.pt", "--work-dir", "wd", *TINY_TRAIN], tmp_path / "bad")
    errors = [line for line in r.stderr.splitlines() if line.startswith("invcomp: error:")]
    assert r.returncode != 0 and len(errors) == 2, r.stderr[-3000:]
    assert any("epoch_001.png" in e and "stopped" not in e for e in errors)  # rank 0's own error names the file
    assert any("stopped because rank 0 could not write epoch 1" in e for e in errors)


@pytest.mark.slow
def test_pack_on_two_processes_equals_a_single_pack(tmp_path, tiny_weights, monkeypatch):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    assert {zlib.crc32(str(i).encode()) % 2 for i in range(8)} == {0, 1}  # both ranks get images
    (folder / "bad.png").write_bytes(b"not a png")  # in rank 1's shard
    assert zlib.crc32(b"bad") % 2 == 1
    args = ["pack", "imgs", "-o", "two.icza", "-m", tiny_weights, *TINY_PACK]
    # an error on rank 1 ends both ranks, each with its one-line error, and keeps their work resumable
    r = _torchrun(2, args, tmp_path)
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("invcomp: error:")]
    assert len(errors) == 2 and all("bad.png: not a readable image" in e for e in errors), r.stderr[-3000:]
    assert any("stopped because rank 1" in e for e in errors)
    assert not (tmp_path / "two.icza").exists() and (tmp_path / "two.icza.part2of2.partial").exists()
    # another number of processes may not resume it
    r = _torchrun(1, [*args, "--resume"], tmp_path)
    assert r.returncode != 0 and "resume it with --nproc_per_node 2" in r.stderr
    (folder / "bad.png").unlink()
    r = _torchrun(2, [*args, "--resume"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("two.icza: 8 images") == 1  # the summary from rank 0 alone
    assert sorted(p.name for p in tmp_path.glob("two.icza*")) == ["two.icza"]  # parts merged and removed
    monkeypatch.chdir(tmp_path)
    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    r = runner.invoke(app, [*map(str, args[:3]), "one.icza", *map(str, args[4:])])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "two.icza").read_bytes() == (tmp_path / "one.icza").read_bytes()
