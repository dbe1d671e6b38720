"""Train and measure the learned peer (CompressAI's factorized prior) for the benches.

Needs `pip install '.[peers]'`. Train one rate point for a CPU budget (resumes from its checkpoint):

    python scripts/peer.py train cifar10_airplane_train.npz --objective ssim --lmbda 5 --minutes 36 \
        --threads 1 --out runs/peers/airplanes32_ssim_5.pt

Measure trained points on test images and write the series the benches read
(results/peers/<name>_<test data stem>.json; `invcomp bench` plots it when present):

    python scripts/peer.py measure cifar10_airplane_test.npz --name airplanes32 runs/peers/airplanes32_*.pt

With --add, the measured points join the stored series of their objective (points trained later).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

from invcomp.bench.data import load_bench_data
from invcomp.bench.peer import PeerConfig, load_weights, measure, save_weights, train
from invcomp.bench.peers import merge_series, peer_path, read_peer_series, save_peer_series, series_from_points
from invcomp.errors import InvcompError
from invcomp.io.datasets import load_npz_images, resolve_data_path
from invcomp.models.registry import find


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _native_resolution(data: str) -> int:
    """The side of a training .npz's own images (train at the size the domain's model works at)."""
    path = resolve_data_path(data)
    if path.suffix != ".npz":
        raise InvcompError("--resolution is needed for a folder of images")
    return int(load_npz_images(path)[0].shape[1])


def cmd_train(a) -> None:
    torch.set_num_threads(a.threads)
    cfg = PeerConfig(a.objective, a.lmbda, a.minutes, batch_size=a.batch_size, lr=a.lr, seed=a.seed, crop=a.crop)
    data = load_bench_data(a.data, a.resolution or _native_resolution(a.data))
    ckpt = a.out.with_suffix(".ckpt")
    model = train(cfg, data.images, ckpt, log=lambda s: print(s, flush=True))
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)["state"]
    trained = {"data": data.name, "images": len(data.images), "resolution": int(data.images[0].shape[0]),
               "threads": a.threads, "cpu": _cpu(), **saved,
               "torch": str(torch.__version__)}
    save_weights(model, cfg, a.out, trained)
    print(json.dumps({"weights": str(a.out), **trained}), flush=True)


def cmd_measure(a) -> None:
    torch.set_num_threads(a.threads)
    info = find(a.name)
    if info is None:
        raise InvcompError(f"no model named {a.name!r} (invcomp models lists them)")
    data = load_bench_data(a.data, info.resolution, a.n)  # the model's resolution: the peer is measured where invcomp is
    points = []
    for path in a.weights:
        model, cfg, trained = load_weights(path)
        if trained.get("resolution", info.resolution) != info.resolution:
            raise InvcompError(f"{path} was trained at {trained['resolution']}x{trained['resolution']}, "
                               f"{a.name} works at {info.resolution}x{info.resolution}")
        sizes, decoded = measure(model, data.images)
        points.append((cfg, trained, sizes, decoded))
        print(f"{path}: {sum(sizes) / len(sizes):.1f} B", flush=True)
    for series in series_from_points(data.images, points):
        stored = read_peer_series(peer_path(a.results, a.name, data.stem, series.codec), data.name) if a.add else None
        path = save_peer_series(a.results, a.name, data, merge_series(stored, series) if stored else series)
        print(json.dumps({"series": series.codec, "path": str(path), "summary": series.summary(data.images[0].size // 3)}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one rate point for a CPU budget")
    t.add_argument("data", help="training .npz (looked up in $INVCOMP_DATA too)")
    t.add_argument("--objective", choices=("mse", "ssim"), required=True)
    t.add_argument("--lmbda", type=float, required=True)
    t.add_argument("--minutes", type=float, required=True, help="training time budget (wall minutes)")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resolution", type=int, default=None, help="default: the .npz images' own size")
    t.add_argument("--crop", type=int, default=0, help="train on random crops of this side (0: whole images)")
    t.add_argument("--out", type=Path, required=True, help="weights file; its .ckpt sibling is the checkpoint")
    m = sub.add_parser("measure", help="measure trained points on test images")
    m.add_argument("data")
    m.add_argument("weights", nargs="+", type=Path)
    m.add_argument("--name", required=True, help="the domain model's name, e.g. airplanes32")
    m.add_argument("--n", type=int, default=None)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--results", type=Path, default=Path("results"))
    m.add_argument("--add", action="store_true",
                   help="join these points to the stored series of their objective (else they replace it)")
    a = p.parse_args(argv)
    try:
        (cmd_train if a.cmd == "train" else cmd_measure)(a)
    except InvcompError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
