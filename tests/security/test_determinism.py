"""Decoding determinism (issue 7): the same pixels across runs and thread counts."""
import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from invcomp.codec import Codec
from invcomp.formats.icz import Header, encode_file

_DECODE_SCRIPT = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from invcomp.codec import decompress
model = sys.argv[3] if len(sys.argv) > 3 else None
for _ in range(2):
    pixels = decompress(open(sys.argv[2], 'rb').read(), model=model, device='cpu', original_size=True)
    print(hashlib.sha256(pixels.tobytes()).hexdigest(), torch.get_num_threads())
"""


def _files_for(model_fingerprint: bytes, latent: int, bits: int) -> list[bytes]:
    rng = np.random.default_rng(11)
    return [encode_file(Header(model_fingerprint, bits, 0, size), rng.integers(0, 1 << bits, latent), 3.0)
            for size in (None, (97, 41))]


def _in_process_digests(codec: Codec, files: list[bytes]) -> set[str]:
    before = torch.get_num_threads()
    digests = set()
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            for data in files:
                for _ in range(2):
                    digests.add((data, hashlib.sha256(codec.decompress(data, original_size=True).tobytes()).hexdigest()))
    finally:
        torch.set_num_threads(before)
    return digests


@pytest.mark.slow
def test_decoding_is_identical_across_runs_and_thread_counts(tmp_path, tiny_model, tiny_weights):
    files = _files_for(tiny_model.fingerprint, 8, 4)
    digests = _in_process_digests(Codec(tiny_model, "cpu"), files)
    assert len(digests) == len(files)  # one digest per file whatever the thread count
    path = tmp_path / "f.icz"
    path.write_bytes(files[1])
    want = next(d for f, d in digests if f == files[1])
    for threads in (1, 2):  # fresh processes
        out = subprocess.run([sys.executable, "-c", _DECODE_SCRIPT, str(threads), str(path), str(tiny_weights)],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out == [want, str(threads), want, str(threads)]


@pytest.mark.slow
@pytest.mark.pretrained
def test_pretrained_decoding_is_identical_across_thread_counts(tmp_path):
    """The real generator (wider convolutions, where thread partitioning could matter)."""
    codec = Codec("airplanes32", "cpu")
    files = _files_for(codec.model.fingerprint, codec.model.config.latent_dim, 3)
    digests = _in_process_digests(codec, files)
    assert len(digests) == len(files)
    path = tmp_path / "p.icz"
    path.write_bytes(files[0])
    want = next(d for f, d in digests if f == files[0])
    out = subprocess.run([sys.executable, "-c", _DECODE_SCRIPT, "2", str(path)], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [want, "2", want, "2"]
