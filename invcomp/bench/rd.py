"""Rate-distortion sweep: invcomp's operating points beside the classic codecs (through Pillow).

Every point is measured per image (whole-file bytes, PSNR, SSIM, MS-SSIM) and kept per image
in a cache file per series, so a rerun only computes what is missing and the summary
(crossings, target checks, matched-bytes grid) can be recomputed from the cache.

    from invcomp.bench.data import load_bench_data
    from invcomp.bench.rd import run_rd_bench
    from invcomp.codec import Codec

    codec = Codec("flowers64")
    report = run_rd_bench(codec, load_bench_data("flowers_64_test.npz", codec.resolution), Path("results"))

writes results/bench_<model>_<data>.{json,md}, the RD plots (*_ssim.png, *_psnr.png) and the
matched-bytes grid (*_grid.png), and returns the JSON report.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from invcomp.bench.analysis import analyse, markdown
from invcomp.bench.classic import CLASSIC_CODECS, ClassicCodec
from invcomp.bench.data import BenchData
from invcomp.bench.msssim import msssim_per_image, msssim_settings
from invcomp.bench.plots import matched_columns, plot_grid, plot_rd
from invcomp.bench.progress import Stages, silent
from invcomp.codec import Codec
from invcomp.files import write_atomic
from invcomp.inversion.invert import InversionConfig
from invcomp.inversion.rate import OPERATING_BITS, PARTS_BITS, PARTS_MSE_WEIGHT, PRIORLESS_BITS
from invcomp.metrics import image_quality

CACHE_VERSION = 1


def measure(original: np.ndarray, decoded: np.ndarray, sizes: list[int]) -> dict:
    """Per-image bytes, PSNR, SSIM and MS-SSIM (lists, rounded for the cache)."""
    psnr, ssim = image_quality(original, decoded)
    msssim = msssim_per_image(original, decoded)
    return {"bytes": [int(s) for s in sizes], "psnr": [round(float(v), 4) for v in psnr],
            "ssim": [round(float(v), 5) for v in ssim],
            "msssim": [None if math.isnan(v) else round(float(v), 5) for v in msssim]}


# --- series and the cache -------------------------------------------------------------------

@dataclass(frozen=True)
class Series:
    """One codec's curve: per setting, per-image measurements."""

    codec: str
    kind: str  # "invcomp" or "classic"
    settings: list  # bits (invcomp) or quality settings (classic)
    labels: list[str]
    points: list[dict]  # one per setting: {"bytes": [...], "psnr": [...], "ssim": [...], "msssim": [...]}
    key: dict = field(default_factory=dict)  # what the cache was computed for
    extra: dict = field(default_factory=dict)  # invcomp: hex files per setting (for the grid)

    def summary(self, pixels: int) -> list[dict]:
        rows = []
        for setting, label, p in zip(self.settings, self.labels, self.points):
            ms = [v for v in p["msssim"] if v is not None]
            mean_bytes = float(np.mean(p["bytes"]))
            rows.append({"codec": self.codec, "setting": setting, "label": label, "images": len(p["bytes"]),
                         "mean_bytes": round(mean_bytes, 2), "bpp": round(8 * mean_bytes / pixels, 4),
                         "psnr": round(float(np.mean(p["psnr"])), 3), "ssim": round(float(np.mean(p["ssim"])), 4),
                         "msssim": round(float(np.mean(ms)), 4) if ms else None})
        return rows


def images_digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def load_cached(path: Path, key: dict) -> Series | None:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if obj.get("version") != CACHE_VERSION or obj.get("key") != key:
        return None
    obj.pop("version")
    return Series(**obj)


def save_cached(path: Path, series: Series) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"version": CACHE_VERSION, **asdict(series)}).encode())


def run_classic(codec: ClassicCodec, images: np.ndarray, key: dict,
                progress: Callable[[int], None] | None = None) -> Series:
    points = []
    for setting in codec.settings:
        pairs = [codec.roundtrip(im, setting) for im in images]
        points.append(measure(images, np.stack([p[1] for p in pairs]), [len(p[0]) for p in pairs]))
        if progress:
            progress(len(images))
    return Series(codec.name, "classic", list(codec.settings), [codec.setting_label(s) for s in codec.settings],
                  points, key)


def run_invcomp(codec: Codec, images: np.ndarray, bits: tuple[int, ...], cfg: InversionConfig, batch_size: int,
                key: dict, progress: Callable[[int], None] | None = None) -> Series:
    """invcomp at every operating point, one inversion run per batch (Codec.compress_candidates); the
    run's tails fitted for parts (PARTS_BITS) and without a prior (PRIORLESS_BITS) are kept too, as
    extra["parts_files"] and extra["priorless_files"], for the budgets."""
    found = codec.compress_candidates(list(images), bits, cfg, batch_size, progress, PARTS_BITS, PRIORLESS_BITS)
    points, files = [], {}
    for j, b in enumerate(bits):
        datas = [per_image[j].data for per_image in found]
        decoded = np.stack([codec.decompress(d) for d in datas])
        points.append(measure(images, decoded, [len(d) for d in datas]))
        files[str(b)] = [d.hex() for d in datas]
    def tails(first: int, depths: tuple[int, ...]) -> dict[str, list[str]]:
        return {str(b): [per_image[first + j].data.hex() for per_image in found] for j, b in enumerate(depths)}

    name = f"invcomp {codec.model.name}"
    return Series(name, "invcomp", list(bits), [f"{b}-bit" for b in bits], points, key,
                  {"files": files, "parts_files": tails(len(bits), PARTS_BITS),
                   "priorless_files": tails(len(bits) + len(PARTS_BITS), codec.priorless(PRIORLESS_BITS, cfg))})


def cache_dir(out: Path, data: BenchData) -> Path:
    """Where a bench keeps its per-image measurements (classic series are shared by all models)."""
    return out / "bench_cache" / (data.stem + (f"_n{data.n}" if data.n else ""))


def invcomp_series(codec: Codec, data: BenchData, cfg: InversionConfig, cache: Path, batch_size: int = 64,
                   progress: Stages = silent) -> Series:
    """invcomp's files at every operating point for these images (and the bases fitted for parts), from
    the cache when it holds them."""
    key = {"images": images_digest(data.images), "model_sha256": codec.model.sha256, "inversion": cfg.settings(),
           "bits": list(OPERATING_BITS), "parts_bits": list(PARTS_BITS), "parts_mse_weight": PARTS_MSE_WEIGHT,
           "priorless_bits": list(PRIORLESS_BITS)}
    if codec.dtype != torch.float32:  # fp32 caches keep their key
        key["precision"] = str(codec.dtype).removeprefix("torch.")
    key = json.loads(json.dumps(key))  # as the cache file holds it (a prior schedule's tuples become lists)
    path = cache / f"invcomp_{codec.model.name}.json"
    ours = load_cached(path, key)
    if ours is None:
        with progress("invcomp", len(data.images)) as bar:
            ours = run_invcomp(codec, data.images, OPERATING_BITS, cfg, batch_size, key, bar.advance)
        save_cached(path, ours)
    return ours


def classic_series(c: ClassicCodec, images: np.ndarray, cache: Path, progress: Stages = silent) -> Series:
    key = {"images": images_digest(images), "codec": c.name, "settings": list(c.settings), "options": c.options(c.settings[0])}
    path = cache / f"{c.key}.json"
    s = load_cached(path, key)
    if s is None:
        with progress(c.name, len(images) * len(c.settings)) as bar:
            s = run_classic(c, images, key, bar.advance)
        save_cached(path, s)
    return s


# --- the whole bench ------------------------------------------------------------------------

def run_rd_bench(codec: Codec, data: BenchData, out: Path, config: InversionConfig | None = None,
                 batch_size: int = 64, grid: int = 6, progress: Stages = silent, extra_rows: tuple[dict, ...] = (),
                 peers: tuple[Series, ...] = ()) -> dict:
    """Every series (from the cache where it holds one for these images and settings), the analysis,
    the plots, the grid of the first `grid` images (0: none), Markdown and JSON; returns the report.
    extra_rows: more summary rows to plot and analyse (invcomp with enhancement parts: budgets.rd_rows);
    peers: measured series of the learned peer (peers.load_peer_series)."""
    cfg = config or codec.config()
    images, n, name = data.images, data.n, codec.model.name
    stem = f"bench_{name}_{data.stem}" + (f"_n{n}" if n else "")
    cache = cache_dir(out, data)
    t_start = time.perf_counter()

    ours = invcomp_series(codec, data, cfg, cache, batch_size, progress)
    series = [ours] + [classic_series(c, images, cache, progress) for c in CLASSIC_CODECS] + list(peers)

    rows = [r for s in series for r in s.summary(codec.resolution**2)] + list(extra_rows)
    analysis = analyse(rows, codec.model.default_bits)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{stem}.md"
    outputs = {"json": str(out / f"{stem}.json"), "markdown": str(md), "ssim_plot": str(out / f"{stem}_ssim.png"),
               "psnr_plot": str(out / f"{stem}_psnr.png")}
    title = f"{name} on {data.name} ({len(images)} images, {codec.resolution}x{codec.resolution})"
    plot_rd(rows, "ssim", title, Path(outputs["ssim_plot"]))
    plot_rd(rows, "psnr", title, Path(outputs["psnr_plot"]))
    if grid > 0:
        k = min(grid, len(images))
        bits = codec.model.default_bits
        files = [bytes.fromhex(h) for h in ours.extra["files"][str(bits)][:k]]
        our_sizes = ours.points[ours.settings.index(bits)]["bytes"][:k]
        columns = [(f"invcomp {bits}-bit", [codec.decompress(f) for f in files], our_sizes)]
        columns += matched_columns(images, our_sizes)
        outputs["grid"] = str(out / f"{stem}_grid.png")
        plot_grid(images[:k], columns, Path(outputs["grid"]))
    ms = msssim_settings(codec.resolution)
    report = {"data": data.name, "images": len(images), "resolution": codec.resolution, "model": name,
              "model_sha256": codec.model.sha256, "inversion": cfg.settings(), "operating_bits": list(OPERATING_BITS),
              "default_bits": codec.model.default_bits, "device": str(codec.device), "threads": torch.get_num_threads(),
              "msssim": ms and {"win_size": ms[0], "weights": ms[1]},
              "peers": [{"codec": s.codec, "trained": s.extra.get("trained")} for s in peers],
              "notes": list(data.notes), "seconds": round(time.perf_counter() - t_start, 1), "rows": rows,
              "analysis": analysis, "outputs": outputs}
    header = (f"{title}; invcomp: {cfg.steps} steps x {cfg.restarts} start(s), bits {list(OPERATING_BITS)} "
              f"(default {codec.model.default_bits}); bytes are whole files; quality means over images.\n\n")
    write_atomic(md, (header + markdown(rows, analysis)).encode())
    write_atomic(Path(outputs["json"]), (json.dumps(report, indent=2) + "\n").encode())
    return report
