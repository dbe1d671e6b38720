"""Helpers for scripts/demo.sh: extract a test image to PNG; put two images side by side."""
import sys

import numpy as np

from invcomp.io.datasets import load_npz_images, resolve_data_path
from invcomp.io.images import image_grid, read_image, resize_to, write_png


def main(argv: list[str]) -> None:
    if argv[0] == "extract":
        images, _ = load_npz_images(resolve_data_path(argv[1]))
        write_png(argv[3], images[int(argv[2])])
    elif argv[0] == "side-by-side":
        a, b = read_image(argv[1]).pixels, read_image(argv[2]).pixels
        b = resize_to(b, a.shape[1], a.shape[0])
        scale = max(1, 256 // max(a.shape[:2]))  # enlarge tiny images so they can be seen
        pair = np.stack([a, b]).repeat(scale, 1).repeat(scale, 2)
        write_png(argv[3], image_grid(pair, 2))
    else:
        raise SystemExit(f"unknown helper {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
