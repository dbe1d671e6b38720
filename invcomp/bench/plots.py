"""The benches' figures: rate-distortion curves, reconstruction grids, and the classic files matched to invcomp's bytes."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from invcomp.bench.classic import CLASSIC_CODECS
from invcomp.files import write_atomic

GRID_CODECS = ("WebP", "JPEG", "AVIF", "JPEG 2000", "WebP@1/2", "WebP@1/4")


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig, **savefig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig)
    pyplot().close(fig)
    return buf.getvalue()


def plot_rd(rows: list[dict], metric: str, title: str, path: Path) -> None:
    """Quality (`metric`) against bits per pixel, one curve per codec, invcomp in bold."""
    plt = pyplot()
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name in dict.fromkeys(r["codec"] for r in rows):
        pts = sorted((r["bpp"], r[metric]) for r in rows if r["codec"] == name)
        style = dict(lw=2.5, color="black", marker="o") if name.startswith("invcomp") else dict(lw=1, marker=".")
        if name.startswith("learned peer"):
            style = dict(lw=1.8, color="crimson", marker="s", ls="-" if "MSE" in name else ":")
        if "@1/" in name:
            style["ls"] = "--"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, **style)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks([t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10) if min(r["bpp"] for r in rows) / 1.5 <= t
                   <= max(r["bpp"] for r in rows) * 1.5])
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel({"ssim": "SSIM", "psnr": "PSNR (dB)", "msssim": "MS-SSIM"}[metric])
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    write_atomic(path, png_bytes(fig))


def plot_grid(originals: np.ndarray, columns: list[tuple[str, list[np.ndarray], list[int]]], path: Path) -> None:
    """Rows: images; columns: original, then each codec's reconstruction with its bytes."""
    plt = pyplot()
    n, ncol = len(originals), 1 + len(columns)
    fig, axes = plt.subplots(n, ncol, figsize=(1.3 * ncol, 1.45 * n), dpi=110, squeeze=False)
    for i in range(n):
        cells = [("original", originals[i], None)] + [(name, ims[i], sizes[i]) for name, ims, sizes in columns]
        for j, (name, im, size) in enumerate(cells):
            ax = axes[i][j]
            ax.imshow(im, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=6)
            if size is not None:
                ax.set_xlabel(f"{size} B", fontsize=6)
    fig.tight_layout()
    write_atomic(path, png_bytes(fig))


def matched_columns(images: np.ndarray, our_sizes: list[int]) -> list[tuple[str, list[np.ndarray], list[int]]]:
    """For the first len(our_sizes) images, per classic codec of the grid, the setting whose file is closest
    in bytes to invcomp's file for that image (the cheapest setting if all are larger): (name, decoded, bytes)."""
    columns = []
    for codec in (c for c in CLASSIC_CODECS if c.name in GRID_CODECS):
        ims, sizes = [], []
        for i, target in enumerate(our_sizes):
            trials = [codec.roundtrip(images[i], s) for s in codec.settings]
            best = min(trials, key=lambda t, b=target: (abs(len(t[0]) - b), len(t[0])))
            ims.append(best[1])
            sizes.append(len(best[0]))
        columns.append((codec.name, ims, sizes))
    return columns
