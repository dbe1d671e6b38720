"""Data set preparation on tiny data sets in torchvision's on-disk layouts: never the network."""
import pickle

import numpy as np
import pytest
from conftest import data_file
from fake_sources import mat_bytes, write_cifar, write_flowers
from PIL import Image
from torchvision.datasets import CIFAR10

from invcomp.errors import InvcompError
from invcomp.io import prepare as prep
from invcomp.io.images import fit_to_square, read_image
from invcomp.io.matfile import parse_mat

pytestmark = pytest.mark.usefixtures("no_network")  # fixtures in tests/conftest.py


def test_cifar10_in_torchvisions_layout_to_npz(tmp_path, unchecked_md5):
    _, truth = write_cifar(tmp_path / "raw")
    tv = CIFAR10(tmp_path / "raw", train=False)  # torchvision itself reads the fake layout
    assert len(tv) == 50
    written = prep.prepare(["cifar10_airplane", "cifar10_bird"], tmp_path / "out", tmp_path / "raw", download=False)
    assert [w.path.name for w in written] == ["cifar10_airplane_train.npz", "cifar10_airplane_test.npz",
                                             "cifar10_bird_train.npz", "cifar10_bird_test.npz"]
    assert all(w.matches_reference in (False, None) for w in written)  # fakes are not the reference files
    for cls, index in (("airplane", 0), ("bird", 2)):
        for split, kept in (("train", 6), ("test", 4)):  # test: of 5 in name order, the 5th (index % 5 == 4) withheld
            with np.load(tmp_path / "out" / f"cifar10_{cls}_{split}.npz", allow_pickle=False) as f:
                assert list(f.keys()) == ["images", "labels", "filenames"]
                expected = sorted(truth[split, index])[:kept]
                assert f["images"].dtype == np.uint8 and f["images"].shape == (kept, 32, 32, 3)
                assert list(f["filenames"]) == [n for n, _ in expected]
                assert np.array_equal(f["images"], np.stack([im for _, im in expected]))
                assert f["labels"].dtype == np.uint8 and set(f["labels"]) == {index}


def test_cifar10_batch_pickles_allow_numpy_arrays_only(tmp_path, unchecked_md5):
    folder, _ = write_cifar(tmp_path)
    old = (folder / "test_batch").read_bytes()
    assert b"numpy._core.multiarray" in old or b"numpy.core.multiarray" in old
    # the real batches were pickled by an old numpy: the module is numpy.core.multiarray
    (folder / "test_batch").write_bytes(old.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert len(prep.read_cifar10_batches(folder, "test")[0]) == 50
    (folder / "test_batch").write_bytes(pickle.dumps({"data": print}, protocol=2))
    with pytest.raises(InvcompError, match=r"not a CIFAR-10 batch.*unexpected object (__builtin__|builtins)\.print"):
        prep.read_cifar10_batches(folder, "test")


def test_flowers102_in_torchvisions_layout_to_npz(tmp_path, unchecked_md5, monkeypatch):
    monkeypatch.setattr(prep, "FLOWERS_TEST", 3)
    monkeypatch.setattr(prep, "FLOWERS_WITHHELD", 2)
    folder, truth = write_flowers(tmp_path / "raw", n_train=4, n_val=3, n_test=9)
    written = prep.prepare(["flowers"], tmp_path / "out", tmp_path / "raw", download=False)
    assert sorted(w.path.name for w in written) == ["flowers_32_test.npz", "flowers_32_train.npz",
                                                   "flowers_64_test.npz", "flowers_64_train.npz"]
    perm = np.sort(truth["tstid"])[np.random.default_rng(prep.FLOWERS_SEED).permutation(9)]
    test_ids, moved = np.sort(perm[:3]), np.sort(perm[5:])
    train_ids = np.concatenate([np.sort(np.concatenate([truth["trnid"], truth["valid"]])), moved])
    for size in (32, 64):
        with np.load(tmp_path / "out" / f"flowers_{size}_train.npz") as tr, np.load(tmp_path / "out" / f"flowers_{size}_test.npz") as te:
            assert list(tr.keys()) == ["images", "labels", "image_ids", "subset", "class_names"]
            assert list(te.keys()) == ["images", "labels", "image_ids", "class_names"]
            assert tr["image_ids"].dtype == np.uint16 and list(tr["image_ids"]) == list(train_ids)
            assert list(te["image_ids"]) == list(test_ids)
            subset = [0 if i in truth["trnid"] else 1 if i in truth["valid"] else 2 for i in train_ids]
            assert tr["subset"].dtype == np.uint8 and list(tr["subset"]) == subset
            assert list(tr["labels"]) == [truth["labels"][i - 1] - 1 for i in train_ids]
            names = list(tr["class_names"])
            assert len(names) == 102 and names[59] == "pink-yellow dahlia" and names[77] == "lotus lotus"
            assert tr["class_names"].dtype == np.dtype("<U25")
            first = read_image(folder / "jpg" / f"image_{train_ids[0]:05d}.jpg").pixels
            assert tr["images"].shape == (len(train_ids), size, size, 3)
            assert np.array_equal(tr["images"][0], fit_to_square(first, size))


def test_flowers102_split_reproduces_the_reference_files():
    """The official split (recovered from the reference train file's `subset`) gives exactly the
    reference files' image ids, in their order."""
    import numpy.testing as npt

    with np.load(data_file("flowers_32_train.npz")) as tr, np.load(data_file("flowers_32_test.npz")) as te:
        ids, subset, test_ids = tr["image_ids"].astype(np.int64), tr["subset"], te["image_ids"]
        labels = np.zeros(8189, np.int64)
        labels[ids - 1] = tr["labels"]
    official = set(ids[subset < 2].tolist())
    tst = np.array([i for i in range(1, 8190) if i not in official])
    rng = np.random.default_rng(0)  # the order inside setid.mat does not matter
    setid = {"trnid": rng.permutation(ids[subset == 0]), "valid": ids[subset == 1], "tstid": rng.permutation(tst)}
    parts = prep.flowers102_split(labels, setid)
    npt.assert_array_equal(parts["train"][0], ids)
    npt.assert_array_equal(parts["train"][1], subset)
    npt.assert_array_equal(parts["test"][0], test_ids)


def test_flowers102_class_names_match_the_reference():
    with np.load(data_file("flowers_64_test.npz")) as te:
        assert list(te["class_names"]) == prep.flowers102_class_names()


def test_mat_reader_reads_what_matlab_writes():
    for stored in ("u1", "u2", "f8"):
        for compress in (True, False):
            got = parse_mat(mat_bytes({"labels": np.arange(1, 40), "m": np.arange(6).reshape(2, 3)}, stored, compress))
            assert got["labels"].shape == (1, 39) and got["labels"].dtype == np.float64
            assert list(got["labels"].ravel()) == list(range(1, 40))
            assert np.array_equal(got["m"], np.arange(6).reshape(2, 3))


@pytest.mark.parametrize("damage", [b"", b"x" * 200, "cut", "hdf5"])
def test_mat_reader_refuses_damage_with_one_error(damage):
    good = mat_bytes({"labels": np.arange(1, 40)}, "u1", compress=False)
    data = {"cut": good[:-20], "hdf5": good[:124] + b"\x00\x02IM" + good[128:]}.get(damage, damage)
    with pytest.raises(InvcompError):
        parse_mat(data)


def _reference(name):
    with np.load(data_file(name)) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.slow
def test_cifar10_batches_holding_the_reference_images_give_the_reference_files(tmp_path, unchecked_md5):
    """Batches in CIFAR's format built from the reference files (in shuffled order, with stand-ins for
    the withheld test images) convert to files whose arrays equal the reference files exactly."""
    rng = np.random.default_rng(3)
    batches = {"train": [], "test": []}
    for cls, index in (("airplane", 0), ("automobile", 1)):
        for split in ("train", "test"):
            ref = _reference(f"cifar10_{cls}_{split}.npz")
            rows = list(zip(ref["filenames"].tolist(), ref["images"]))
            if split == "test":  # the withheld 5th of every 5 in name order: a name just after the 4th
                rows += [(rows[k][0] + "~", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for k in range(3, 800, 4)]
            batches[split] += [(n, im, index) for n, im in rows]
    folder = tmp_path / "raw" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for split, files in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        rows = [batches[split][i] for i in rng.permutation(len(batches[split]))]
        for j, file in enumerate(files):
            part = rows[j :: len(files)]
            batch = {"labels": [c for _, _, c in part], "filenames": [n for n, _, _ in part],
                     "data": np.stack([im.transpose(2, 0, 1).reshape(-1) for _, im, _ in part])}
            (folder / file).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(prep.CIFAR10_CLASSES)}, protocol=2))
    written = prep.prepare(["cifar10_airplane", "cifar10_automobile"], tmp_path / "out", tmp_path / "raw", download=False)
    assert [(w.images, w.matches_reference) for w in written] == [(5000, True), (800, True), (5000, True), (800, True)]


@pytest.mark.slow
def test_flowers102_sources_holding_the_reference_images_give_the_reference_64px_files(tmp_path, unchecked_md5):
    """jpg/ holding the reference 64 x 64 images (as lossless files: fit_to_square leaves a 64 x 64
    image alone), labels and split recovered from the reference: flowers_64 equals the reference."""
    train, test = _reference("flowers_64_train.npz"), _reference("flowers_64_test.npz")
    folder = tmp_path / "raw" / "flowers-102"
    (folder / "jpg").mkdir(parents=True)
    labels = np.ones(8189)
    for part in (train, test):
        for i, im, label in zip(part["image_ids"], part["images"], part["labels"]):
            Image.fromarray(im).save(folder / "jpg" / f"image_{i:05d}.jpg", format="PNG", compress_level=0)
            labels[int(i) - 1] = int(label) + 1
    ids, subset = train["image_ids"].astype(np.int64), train["subset"]
    official = set(ids[subset < 2].tolist())
    setid = {"trnid": ids[subset == 0], "valid": ids[subset == 1],
             "tstid": np.array([i for i in range(1, 8190) if i not in official])}
    (folder / "imagelabels.mat").write_bytes(mat_bytes({"labels": labels}, "u1"))
    (folder / "setid.mat").write_bytes(mat_bytes(setid, "u2"))
    written = prep.prepare(["flowers_64"], tmp_path / "out", tmp_path / "raw", download=False)
    assert [(w.images, w.matches_reference) for w in written] == [(6689, True), (1000, True)]
