"""Marked tests: the committed airplanes32 weights on real held-out test airplanes."""
import numpy as np
import pytest

from invcomp import Codec, decompress
from invcomp.bitstream import unpack_header
from invcomp.datasets import load_npz_images
from invcomp.invert import InversionConfig
from invcomp.registry import REGISTRY, load_model
from invcomp.ssim import image_quality

from conftest import DATA

pytestmark = pytest.mark.pretrained


@pytest.fixture(scope="module")
def airplanes():
    path = DATA / "cifar10_airplane_test.npz"
    if not path.exists():
        pytest.skip(f"{path} not found (set INVCOMP_DATA)")
    return load_npz_images(path)[0][:8]


def test_registry_lists_airplanes32_and_weights_check():
    info = REGISTRY["airplanes32"]
    model = load_model("airplanes32")
    assert model.sha256 == info.sha256 and model.config.latent_dim == info.latent_dim


def test_fits_real_airplanes_within_quality_band(airplanes):
    codec = Codec("airplanes32", "cpu")
    files = codec.compress_batch(list(airplanes), InversionConfig(bits=3))
    decoded = np.stack([decompress(f) for f in files])
    psnr, ssim = image_quality(airplanes, decoded)
    sizes = [len(f) for f in files]
    assert all(unpack_header(f)[0].fingerprint == codec.model.fingerprint for f in files)
    assert max(sizes) <= 7 + 36  # never more than the raw 3-bit packing of 96 codes
    # WebP q0 on these images spends ~88 bytes for SSIM ~0.68; we must do better on fewer bytes
    assert ssim.mean() > 0.70, ssim
    assert psnr.mean() > 19.0, psnr
