"""Make the starting probabilities of the enhancement coder's contexts (`coefficients.START`).

    python scripts/context_table.py            # prints the table to paste into invcomp/formats/coefficients.py

The mean adapted state of every context after coding the residuals G(z) missed, for the first 60
training airplanes (airplanes32 version 1 at its default bits; parts with the default block and chroma index)
at step indices 24, 32, 40 and 48, each coded from the neutral start (1/2). Integers only from here
on: the table is part of the format and never changes (tests pin its sha256).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from invcomp.codec import Codec
    from invcomp.enhance import parts, residual
    from invcomp.formats import coefficients
    from invcomp.formats.adaptive import HALF_PROB
    from invcomp.io.datasets import data_dir

    codec = Codec("airplanes32@1", "cpu")
    images = np.load(data_dir() / "cifar10_airplane_train.npz")["images"][:60]
    neutral = (HALF_PROB,) * coefficients.CONTEXTS
    states = []
    for x, f in zip(images, codec.compress_batch(list(images))):
        base = codec.decompress(f).astype(np.float64)
        for step in (24, 32, 40, 48):
            coefs = residual.forward(x.astype(np.float64) - base, parts.DEFAULT_BLOCK, step, parts.DEFAULT_CHROMA)
            states.append(coefficients.adapted_states(coefs, residual.CHROMA, neutral))
    table = np.mean(states, axis=0).round().astype(int).tolist()
    print("START = (")
    for i in range(0, len(table), 16):
        print("    " + ", ".join(map(str, table[i : i + 16])) + ",")
    print(")")


if __name__ == "__main__":
    main()
