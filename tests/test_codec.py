import numpy as np
import pytest

from invcomp import Codec, InvcompError, compress, compress_batch, decompress
from invcomp.formats.icz import unpack_header

FAST = dict(steps=5, restarts=1)


def test_round_trip_and_deterministic(tiny_model, rng_image):
    data = compress(rng_image, model=tiny_model, device="cpu", bits=4, **FAST)
    assert data[:3] == b"IC\x01" and len(data) <= 7 + 4  # 8 dims x 4 bits, or fewer when coded
    a = decompress(data, model=tiny_model, device="cpu")
    b = decompress(data, model=tiny_model, device="cpu")
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)


def test_batch_equals_single(tiny_model, rng_image):
    """The random starts do not depend on the batch (with a real generator the kernels' rounding can)."""
    imgs = [rng_image, rng_image[::-1].copy(), rng_image[:, ::-1].copy()]
    batch = compress_batch(imgs, model=tiny_model, device="cpu", **FAST)
    assert batch[1] == compress(imgs[1], model=tiny_model, device="cpu", **FAST)


def test_other_weights_refused_with_model_named(tiny_model, other_model, rng_image):
    data = compress(rng_image, model=tiny_model, device="cpu", **FAST)
    with pytest.raises(InvcompError, match="unknown model \\(fingerprint"):
        Codec(other_model, "cpu").decompress(data)
    with pytest.raises(InvcompError, match="unknown model"):
        decompress(data)  # no model given and the fingerprint is not registered


def test_original_size_stored_and_restored(tiny_model):
    img = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    data = compress(img, model=tiny_model, device="cpu", **FAST)
    header, _ = unpack_header(data)
    assert header.original_size == (80, 48)
    assert decompress(data, model=tiny_model).shape == (32, 32, 3)
    assert decompress(data, model=tiny_model, original_size=True).shape == (48, 80, 3)


def test_grey_and_rgba_arrays(tiny_model):
    grey = np.full((32, 32), 128, np.uint8)
    rgba = np.zeros((32, 32, 4), np.uint8)
    for img in (grey, rgba):
        assert decompress(compress(img, model=tiny_model, **FAST), model=tiny_model).shape == (32, 32, 3)


def test_bad_options(tiny_model, rng_image):
    for bad in (dict(bits=1), dict(bits=13), dict(restarts=0), dict(steps=-1), dict(colour=3)):
        with pytest.raises(InvcompError):
            compress(rng_image, model=tiny_model, **bad)
    with pytest.raises(InvcompError, match="unknown model"):
        compress(rng_image, model="no-such-model")
    with pytest.raises(InvcompError):
        compress(np.zeros((32, 32, 3), np.float32), model=tiny_model)
