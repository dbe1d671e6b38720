"""Tiny data sets in torchvision's on-disk layouts (CIFAR-10 python batches, Oxford Flowers-102)
and a MATLAB v5 writer for their .mat files, so that preparation is tested without the network."""
from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

MI = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 9, "i8": 12, "u8": 13}
MX = {"f8": 6, "f4": 7, "i1": 8, "u1": 9, "i2": 10, "u2": 11, "i4": 12, "u4": 13, "i8": 14, "u8": 15}


def _element(kind: int, payload: bytes, small_ok: bool = True) -> bytes:
    if small_ok and len(payload) <= 4:  # the small data element format
        return struct.pack("<I", kind | (len(payload) << 16)) + payload.ljust(4, b"\0")
    return struct.pack("<II", kind, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def mat_bytes(arrays: dict[str, np.ndarray], stored: str | None = None, compress: bool = True) -> bytes:
    """A MATLAB v5 file of double matrices (values stored as `stored`, e.g. "u2", as MATLAB does
    for integers that fit), each 1 x N for a vector, optionally in miCOMPRESSED elements."""
    out = b"MATLAB 5.0 MAT-file, written by invcomp's tests".ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    for name, value in arrays.items():
        a = np.asarray(value, np.float64)
        a = a.reshape(1, -1) if a.ndim == 1 else a
        data = a.ravel(order="F").astype("<" + (stored or "f8")).tobytes()
        body = (_element(6, struct.pack("<II", MX["f8"], 0), small_ok=False)
                + _element(5, struct.pack(f"<{a.ndim}i", *a.shape)) + _element(1, name.encode())
                + _element(MI[stored or "f8"], data))
        matrix = struct.pack("<II", 14, len(body)) + body
        out += struct.pack("<II", 15, len(zc := zlib.compress(matrix))) + zc if compress else matrix
    return out


def skip_md5(monkeypatch) -> None:
    """torchvision checks its files' md5; the fakes have other contents, so only presence is checked."""
    from torchvision.datasets import CIFAR10, Flowers102

    monkeypatch.setattr(CIFAR10, "train_list", [[name, None] for name, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[name, None] for name, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": None})
    monkeypatch.setattr(Flowers102, "_file_dict", {k: (name, None) for k, (name, _) in Flowers102._file_dict.items()})


def refuse_network(monkeypatch) -> None:
    """Any socket connection fails the test: preparation is tested without the network."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def write_cifar(root: Path, per_class_train: int = 6, per_class_test: int = 5) -> tuple[Path, dict]:
    """root/cifar-10-batches-py with 5 training batches and a test batch in CIFAR's pickle format.
    Returns the folder and {(split, class): [(file name, image), ...]} in the order written."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    truth: dict = {}

    def batch(split: str, per_class: int, part: int, parts: int) -> dict:
        data, labels, names = [], [], []
        for c in range(10):
            for k in range(per_class):
                if k % parts != part:
                    continue
                img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                name = f"{'zyxwvutsrq'[k % 10]}_c{c}_{split}_{k:06d}.png"  # written out of name order
                data.append(img.transpose(2, 0, 1).reshape(-1))
                labels.append(c)
                names.append(name)
                truth.setdefault((split, c), []).append((name, img))
        return {"batch_label": f"{split} batch {part + 1}", "labels": labels, "data": np.stack(data), "filenames": names}

    for i in range(5):
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch("train", per_class_train, i, 5), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(batch("test", per_class_test, 0, 1), protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_vis": 3072}, protocol=2))
    return folder, truth


def write_flowers(root: Path, n_train: int = 4, n_val: int = 3, n_test: int = 9) -> tuple[Path, dict]:
    """root/flowers-102 with jpg/image_NNNNN.jpg (small, of varied shapes), imagelabels.mat and setid.mat."""
    folder = root / "flowers-102"
    (folder / "jpg").mkdir(parents=True)
    n = n_train + n_val + n_test
    rng = np.random.default_rng(2)
    ids = rng.permutation(np.arange(1, n + 1))
    setid = {"trnid": ids[:n_train], "valid": ids[n_train : n_train + n_val], "tstid": ids[n_train + n_val :]}
    labels = rng.integers(1, 103, n)
    for i in range(1, n + 1):
        w, h = int(rng.integers(70, 90)), int(rng.integers(70, 90))
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / "jpg" / f"image_{i:05d}.jpg", quality=90)
    (folder / "imagelabels.mat").write_bytes(mat_bytes({"labels": labels}, stored="u1"))
    (folder / "setid.mat").write_bytes(mat_bytes(setid, stored="u2"))
    return folder, {"labels": labels, **setid}
