"""The data sets the pretrained models were trained on: what they are, whether a data folder holds
them, and preparing them (download through `torchvision.datasets`, convert to .npz).

The .npz files written here are the ones `train`, `bench`, `ablate`, `evaluate` and `pack` read
(`io.datasets.load_npz_images`): `images` uint8 N x H x W x 3 plus the keys of data/README.md,
with the same splits as the reference files the models were trained and tested on. Each file
is written atomically; a failed download leaves no file behind (it goes to a temporary folder
that is removed). torchvision (and so torch) is imported only inside `fetch_cifar10` and
`fetch_flowers102`, so listing the data sets stays fast.

    prepare(["cifar10_airplane"], Path("data"))      # downloads into data/downloads, writes 2 files
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invcomp.errors import InvcompError
from invcomp.files import atomic_writer
from invcomp.io.images import fit_to_square, read_image
from invcomp.io.matfile import load_mat

Progress = Callable[[str, int, int], None]  # (stage, done, total)
SPLITS = ("train", "test")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TEST_WITHHELD = 5  # of the official test images of a class in file-name order, index % 5 == 4 is withheld
FLOWERS_FOLDER = "flowers-102"
FLOWERS_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FLOWERS_SEED = 20261122  # numpy default_rng seed of the official test images' order
FLOWERS_TEST, FLOWERS_WITHHELD = 1000, 500  # then the rest of the official test images join training
# torchvision's class names, spelled as in the reference files (udacity/aipnd-project's cat_to_name.json)
FLOWERS_NAME_FIXES = {59: "pink-yellow dahlia", 77: "lotus lotus"}


@dataclass(frozen=True)
class DataSet:
    name: str  # file names are <name>_train.npz and <name>_test.npz
    source: str  # "cifar10" or "flowers102": one download serves every data set of a source
    resolution: int
    images: dict[str, int]  # per split
    digests: dict[str, str]  # per split: array_digest of the reference file (../shared/data)
    description: str

    def file(self, split: str) -> str:
        return f"{self.name}_{split}.npz"


def _cifar(cls: str, train: str = "", test: str = "") -> DataSet:
    return DataSet(f"cifar10_{cls}", "cifar10", 32, {"train": 5000, "test": 800},
                   {k: v for k, v in (("train", train), ("test", test)) if v},
                   f"CIFAR-10 {cls}s, 32x32 (official split; 1 test image in 5 withheld)")


DATASETS: dict[str, DataSet] = {d.name: d for d in [
    _cifar("airplane", "63f24a32a56171553643abee0beb3eda9388a6076bb7906543af93e4d5386b1a",
           "cbbdd20e4746dcb58770e98720ea55826bd3a0eeadbf312ab9206cf67bc53e66"),
    _cifar("automobile", "faff2ffc70639819271ba5f8096987c4b682830e8fb0be8478030dbc806a42fa",
           "2aa4128ba2078fd2a0010efe81753c1447ff6ab070c3cfb7293ef945b0c24d1b"),
    *[_cifar(c) for c in CIFAR10_CLASSES[2:]],
    DataSet("flowers_32", "flowers102", 32, {"train": 6689, "test": 1000},
            {"train": "964dfefc068e0e8097214ab51b461a211ec2d8e7d6a0c24b0fb88fd7125f74f4",
             "test": "bf5c5fdd4aba211a07dbd2c8256c92ee45743573d5d1016200acba60103d53c6"},
            "Oxford Flowers-102, 32x32 (official split, 4649 test images moved to training, 500 withheld)"),
    DataSet("flowers_64", "flowers102", 64, {"train": 6689, "test": 1000},
            {"train": "b90d05de86197c9ab6c57e281c697be46585203b15bb559e3c5626e461ba5e33",
             "test": "368d4bcdd5d045243b0feef891b4e5d0ec93781d1ed1aa8d6bccc40395ed9d48"},
            "Oxford Flowers-102, 64x64 (official split, 4649 test images moved to training, 500 withheld)"),
]}
DOWNLOAD_MB = {"cifar10": 163, "flowers102": 331}


def array_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in key order: equal for equal contents
    (an .npz file's own bytes differ between runs: the zip stores a time stamp)."""
    h = hashlib.sha256()
    for key, value in arrays.items():
        a = np.ascontiguousarray(value)
        h.update(key.encode() + str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def npz_images_shape(path: Path) -> tuple[int, ...] | None:
    """The shape of the `images` array of an .npz file, read from its header only; None if unreadable."""
    try:
        with zipfile.ZipFile(path) as z, z.open("images.npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return tuple(read(f)[0])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


@dataclass(frozen=True)
class FileStatus:
    dataset: DataSet
    split: str
    path: Path
    present: bool
    images: int | None  # in the file, when present and readable
    bytes: int | None

    @property
    def complete(self) -> bool:
        return self.present and self.images == self.dataset.images[self.split]


def status(root: Path, names: Sequence[str] | None = None) -> list[FileStatus]:
    """Every split file of the named data sets (all by default): present in `root` or not."""
    rows = []
    for ds in resolve_names(names or list(DATASETS)):
        for split in SPLITS:
            path = root / ds.file(split)
            shape = npz_images_shape(path) if path.is_file() else None
            rows.append(FileStatus(ds, split, path, path.is_file(), shape[0] if shape else None,
                                   path.stat().st_size if path.is_file() else None))
    return rows


def resolve_names(names: Sequence[str]) -> list[DataSet]:
    """Data sets by name; "cifar10" means all ten classes, "flowers" both sizes, "all" everything."""
    groups = {"all": list(DATASETS), "cifar10": [f"cifar10_{c}" for c in CIFAR10_CLASSES],
              "flowers": ["flowers_32", "flowers_64"]}
    out: list[DataSet] = []
    for name in names:
        for n in groups.get(name, [name]):
            if n not in DATASETS:
                raise InvcompError(f"unknown data set {n!r}; known: {', '.join(DATASETS)} (or cifar10, flowers, all)")
            if DATASETS[n] not in out:
                out.append(DATASETS[n])
    return out


# --- downloads ---------------------------------------------------------------------------------

def _download(raw_root: Path, folder: str, what: str, url: str, fetch: Callable[[Path], None]) -> Path:
    """Run `fetch(tmp)` (a torchvision download into a temporary folder), then move tmp/folder to
    raw_root/folder. On any failure the temporary folder goes and one InvcompError says what failed."""
    created = [p for p in (raw_root, *raw_root.parents) if not p.exists()]  # removed again on failure
    raw_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.", suffix=".partial", dir=raw_root))
    ok = False
    try:
        fetch(tmp)
        if not (tmp / folder).is_dir():
            raise InvcompError(f"the download of {what} did not produce {folder}/")
        target = raw_root / folder
        if target.exists():  # an incomplete earlier copy
            shutil.rmtree(target)
        os.replace(tmp / folder, target)
        ok = True
        return target
    except InvcompError:
        raise
    except Exception as e:  # noqa: BLE001 - urllib, tarfile and torchvision raise many types
        reason = getattr(e, "reason", None) or e  # urllib's URLError: the reason without "<urlopen error ...>"
        reason = str(reason).strip().splitlines()[0] if str(reason).strip() else type(e).__name__
        raise InvcompError(f"cannot download {what} from {url} ({reason}); check the network connection "
                           f"(and https_proxy), or put {folder}/ into {raw_root} by hand and run again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created if not ok else []:
            try:
                p.rmdir()
            except OSError:
                break


def cifar10_complete(folder: Path) -> bool:
    """Every batch file of torchvision's CIFAR10 layout present with its md5 (torchvision's list)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    files = CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    return all(check_integrity(str(folder / name), md5) for name, md5 in files)


def fetch_cifar10(raw_root: Path, download: bool = True) -> Path:
    """raw_root/cifar-10-batches-py, downloaded through torchvision.datasets.CIFAR10 if missing."""
    from torchvision.datasets import CIFAR10

    folder = raw_root / CIFAR10_FOLDER
    if cifar10_complete(folder):
        return folder
    if not download:
        raise InvcompError(f"{folder} is missing or incomplete; run without --no-download to fetch CIFAR-10")
    return _download(raw_root, CIFAR10_FOLDER, "CIFAR-10", CIFAR10_URL, lambda tmp: CIFAR10(tmp, train=False, download=True))


def flowers102_complete(folder: Path) -> bool:
    from torchvision.datasets import Flowers102
    from torchvision.datasets.utils import check_integrity

    return (folder / "jpg").is_dir() and all(check_integrity(str(folder / Flowers102._file_dict[k][0]), Flowers102._file_dict[k][1])
                                             for k in ("label", "setid"))


def fetch_flowers102(raw_root: Path, download: bool = True) -> Path:
    """raw_root/flowers-102 (jpg/, imagelabels.mat, setid.mat), downloaded through
    torchvision.datasets.Flowers102 if missing. torchvision reads the .mat files with scipy, which
    invcomp does not need: without scipy the download still completes and io.matfile reads them."""
    from torchvision.datasets import Flowers102

    folder = raw_root / FLOWERS_FOLDER
    if flowers102_complete(folder):
        return folder
    if not download:
        raise InvcompError(f"{folder} is missing or incomplete; run without --no-download to fetch Oxford Flowers-102")

    def fetch(tmp: Path) -> None:
        try:
            Flowers102(tmp, split="test", download=True)
        except ImportError:  # scipy: only needed by torchvision to read the labels, after downloading
            pass
        if not flowers102_complete(tmp / FLOWERS_FOLDER):
            raise InvcompError("the Oxford Flowers-102 download is incomplete")
        (tmp / FLOWERS_FOLDER / "102flowers.tgz").unlink(missing_ok=True)  # extracted into jpg/

    return _download(raw_root, FLOWERS_FOLDER, "Oxford Flowers-102", FLOWERS_URL, fetch)


# --- conversion --------------------------------------------------------------------------------

class _BatchUnpickler(pickle.Unpickler):
    """CIFAR's batches are pickled dicts of numpy arrays, lists and strings: nothing else may load."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # the last: bytes in protocol 2

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")
        if module == "numpy.core.multiarray" and hasattr(np, "_core"):  # numpy 2 renamed it (the old name warns)
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def read_cifar10_batches(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (N, 32, 32, 3) uint8, labels and file names of torchvision's CIFAR-10 batch files."""
    from torchvision.datasets import CIFAR10

    images, labels, names = [], [], []
    for file, _ in CIFAR10.train_list if split == "train" else CIFAR10.test_list:
        try:
            with open(folder / file, "rb") as f:
                batch = _BatchUnpickler(f, encoding="latin1").load()
            data = np.asarray(batch["data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            lab, fn = list(batch["labels"]), [str(n) for n in batch["filenames"]]
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as e:
            raise InvcompError(f"{folder / file}: not a CIFAR-10 batch ({e})") from None
        if not len(data) == len(lab) == len(fn):
            raise InvcompError(f"{folder / file}: images, labels and file names differ in number")
        images.append(data)
        labels.extend(lab)
        names.extend(fn)
    return np.concatenate(images), np.asarray(labels, np.int64), names


def cifar10_split(images: np.ndarray, labels: np.ndarray, names: list[str], cls: str, split: str) -> dict[str, np.ndarray]:
    """One class's images in file-name order; the test split without every fifth image (index % 5 == 4)."""
    index = CIFAR10_CLASSES.index(cls)
    rows = sorted(np.flatnonzero(labels == index).tolist(), key=lambda i: names[i])
    if split == "test":
        rows = [r for k, r in enumerate(rows) if k % CIFAR10_TEST_WITHHELD != CIFAR10_TEST_WITHHELD - 1]
    return {"images": images[rows], "labels": np.full(len(rows), index, np.uint8),
            "filenames": np.array([names[r] for r in rows])}


def flowers102_split(labels: np.ndarray, setid: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (Oxford image numbers, subset)}: the official test images in a fixed random order,
    the first 1000 for testing, the next 500 withheld, the rest moved to training after the official
    training and validation images (subset 0, 1, 2 = official train, validation, moved test)."""
    trn, val, tst = (np.sort(np.asarray(setid[k], np.int64).ravel()) for k in ("trnid", "valid", "tstid"))
    n = len(labels)
    every = np.concatenate([trn, val, tst])
    if len(np.unique(every)) != len(every) or every.min(initial=1) < 1 or every.max(initial=0) > n:
        raise InvcompError(f"setid.mat: the splits overlap or name images outside 1..{n}")
    if len(tst) < FLOWERS_TEST + FLOWERS_WITHHELD:
        raise InvcompError(f"setid.mat: {len(tst)} test images, fewer than {FLOWERS_TEST + FLOWERS_WITHHELD}")
    order = tst[np.random.default_rng(FLOWERS_SEED).permutation(len(tst))]
    test, moved = np.sort(order[:FLOWERS_TEST]), np.sort(order[FLOWERS_TEST + FLOWERS_WITHHELD:])
    official = np.concatenate([trn, val])
    subset = np.concatenate([np.zeros(len(trn), np.uint8), np.ones(len(val), np.uint8)])
    by_id = np.argsort(official, kind="stable")
    train = np.concatenate([official[by_id], moved])
    train_subset = np.concatenate([subset[by_id], np.full(len(moved), 2, np.uint8)])
    return {"train": (train, train_subset), "test": (test, np.zeros(len(test), np.uint8))}


def flowers102_class_names() -> list[str]:
    from torchvision.datasets import Flowers102

    return [FLOWERS_NAME_FIXES.get(i, n) for i, n in enumerate(Flowers102.classes)]


def read_flowers102_meta(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """0-based labels of every image (index = Oxford number - 1) and the official split."""
    labels = load_mat(folder / "imagelabels.mat").get("labels")
    setid = load_mat(folder / "setid.mat")
    if labels is None or any(k not in setid for k in ("trnid", "valid", "tstid")):
        raise InvcompError(f"{folder}: imagelabels.mat needs 'labels', setid.mat 'trnid', 'valid' and 'tstid'")
    return np.asarray(labels, np.int64).ravel() - 1, setid


def convert_flowers102(folder: Path, sizes: Sequence[int], splits: Sequence[str],
                       progress: Progress | None = None) -> dict[tuple[int, str], dict[str, np.ndarray]]:
    """{(size, split): arrays} from jpg/: each JPEG decoded once, centre-cropped to a square and
    resized to each size (Lanczos, io.images.fit_to_square)."""
    labels, setid = read_flowers102_meta(folder)
    parts = flowers102_split(labels, setid)
    names = np.array(flowers102_class_names())
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(names):
        raise InvcompError(f"{folder}/imagelabels.mat: labels outside 1..{len(names)}")
    wanted = {int(i) for s in splits for i in parts[s][0]}
    pixels: dict[tuple[int, int], np.ndarray] = {}
    for done, image_id in enumerate(sorted(wanted), 1):
        loaded = read_image(folder / "jpg" / f"image_{image_id:05d}.jpg").pixels
        for size in sizes:
            pixels[size, image_id] = fit_to_square(loaded, size)
        if progress:
            progress("convert", done, len(wanted))
    out = {}
    for size in sizes:
        for split in splits:
            ids, subset = parts[split]
            arrays = {"images": np.stack([pixels[size, int(i)] for i in ids]), "labels": labels[ids - 1].astype(np.uint8),
                      "image_ids": ids.astype(np.uint16)}
            if split == "train":
                arrays["subset"] = subset
            arrays["class_names"] = names
            out[size, split] = arrays
    return out


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed through files.atomic_writer: the file appears whole or not at all."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with atomic_writer(path) as f:
        f.write(buf.getbuffer())


@dataclass(frozen=True)
class Written:
    path: Path
    images: int
    matches_reference: bool | None  # None: no reference digest for this file


def prepare(names: Sequence[str], root: Path, raw_root: Path | None = None, splits: Sequence[str] = SPLITS,
            download: bool = True, progress: Progress | None = None) -> list[Written]:
    """Write <name>_<split>.npz into root for the named data sets, fetching their sources into
    raw_root (default root/downloads) when they are not there. Every file is checked against the
    reference digest where there is one (`matches_reference`)."""
    datasets = resolve_names(names)
    for s in splits:
        if s not in SPLITS:
            raise InvcompError(f"unknown split {s!r}; choose from {', '.join(SPLITS)}")
    raw_root = raw_root if raw_root is not None else root / "downloads"
    results: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    cifar = [d for d in datasets if d.source == "cifar10"]
    flowers = [d for d in datasets if d.source == "flowers102"]
    if cifar:
        folder = fetch_cifar10(raw_root, download)
        for split in splits:
            batches = read_cifar10_batches(folder, split)
            for d in cifar:
                results[d.name, split] = cifar10_split(*batches, d.name.split("_", 1)[1], split)
    if flowers:
        folder = fetch_flowers102(raw_root, download)
        converted = convert_flowers102(folder, [d.resolution for d in flowers], splits, progress)
        for d in flowers:
            for split in splits:
                results[d.name, split] = converted[d.resolution, split]
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for d in datasets:
        for split in splits:
            arrays = results[d.name, split]
            path = root / d.file(split)
            write_npz(path, arrays)
            ref = d.digests.get(split)
            written.append(Written(path, len(arrays["images"]), None if ref is None else array_digest(arrays) == ref))
            if progress:
                progress("write", len(written), len(datasets) * len(splits))
    return written
