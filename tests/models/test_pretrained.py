"""Marked tests: every registered model on real held-out test images of its domain."""
import numpy as np
import pytest
from conftest import DATA

from invcomp import Codec, decompress
from invcomp.formats.icz import unpack_header
from invcomp.io.datasets import load_npz_images
from invcomp.metrics import image_quality
from invcomp.models.registry import REGISTRY
from invcomp.models.zoo import load_model

pytestmark = pytest.mark.pretrained

# Lower bounds on the mean over the first 8 test images at the model's default settings,
# a few hundredths below what was measured (docs/RESULTS.md has the full test files; WebP q0
# on these domains: SSIM 0.55-0.68 at 88-212 bytes).
BANDS = {  # name: (mean SSIM >, mean PSNR >)
    "airplanes32": (0.80, 21.8),  # version 2: 0.835, 22.6 dB (version 1 at 0.02: 0.802, 21.3 dB)
    "automobiles32": (0.75, 17.0),  # version 3: 0.786, 18.3 dB (version 2: 0.788, 17.9 dB; version 1 at 0.02: 0.762, 17.3 dB)
    "flowers32": (0.69, 16.7),  # version 3: 0.724, 17.8 dB (version 2: 0.726, 17.7 dB; version 1: 0.688, 16.9 dB)
    "flowers64": (0.57, 16.7),  # version 3: 0.603, 17.8 dB (version 2: 0.596, 17.7 dB)
}


def test_every_registered_model_has_a_band():
    assert set(BANDS) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_model_reproduces_held_out_images_within_band(name):
    info = REGISTRY[name]
    path = DATA / info.test_data
    if not path.exists():
        pytest.skip(f"{path} not found (set INVCOMP_DATA)")
    images = load_npz_images(path)[0][:8]
    model = load_model(name)
    assert model.sha256 == info.sha256 and model.config.latent_dim == info.latent_dim
    codec = Codec(name, "cpu")
    files = codec.compress_batch(list(images), codec.config(bits=info.default_bits))  # its prior weights too
    decoded = np.stack([decompress(f) for f in files])
    psnr, ssim = image_quality(images, decoded)
    assert all(unpack_header(f)[0].fingerprint == model.fingerprint for f in files)
    raw = 7 + (info.latent_dim * info.default_bits + 7) // 8
    assert max(len(f) for f in files) <= raw  # never more than the raw bit packing
    min_ssim, min_psnr = BANDS[name]
    assert ssim.mean() > min_ssim, ssim
    assert psnr.mean() > min_psnr, psnr
