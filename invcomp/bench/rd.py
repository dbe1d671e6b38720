"""Rate-distortion sweep: invcomp's operating points beside the classic codecs (through Pillow).

Every point is measured per image (whole-file bytes, PSNR, SSIM, MS-SSIM) and kept per image
in a cache file per series, so a rerun only computes what is missing and the summary
(crossings, target checks, matched-bytes grid) can be recomputed from the cache.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from invcomp.errors import InvcompError
from invcomp.files import write_atomic
from invcomp.metrics import image_quality, to_unit

CACHE_VERSION = 1
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


# --- the classic codecs ---------------------------------------------------------------------

@dataclass(frozen=True)
class ClassicCodec:
    """A Pillow codec swept over `settings`; scale k > 1 encodes at 1/k size and upscales on decode."""

    name: str
    pil_format: str
    settings: tuple[int, ...]
    scale: int = 1

    def options(self, setting: int) -> dict:
        if self.pil_format == "JPEG":
            return {"quality": setting, "optimize": True}
        if self.pil_format == "WEBP":
            return {"quality": setting, "method": 6}
        if self.pil_format == "AVIF":
            return {"quality": setting}
        if self.pil_format == "JPEG2000":  # raw codestream; target PSNR in dB (rate mode floors at the header)
            return {"quality_mode": "dB", "quality_layers": [setting], "no_jp2": True, "num_resolutions": 3}
        raise InvcompError(f"unknown Pillow format {self.pil_format}")

    @property
    def key(self) -> str:
        return self.name.lower().replace(" ", "").replace("@1/", "_div")

    def setting_label(self, setting: int) -> str:
        return f"{setting} dB" if self.pil_format == "JPEG2000" else f"q{setting}"

    def roundtrip(self, pixels: np.ndarray, setting: int) -> tuple[bytes, np.ndarray]:
        """The encoded file and the decoded image at the input's size."""
        h, w = pixels.shape[:2]
        img = Image.fromarray(pixels)
        if self.scale > 1:
            img = img.resize((max(1, w // self.scale), max(1, h // self.scale)), Image.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format=self.pil_format, **self.options(setting))
        data = buf.getvalue()
        decoded = Image.open(io.BytesIO(data)).convert("RGB")
        if decoded.size != (w, h):
            decoded = decoded.resize((w, h), Image.LANCZOS)
        return data, np.asarray(decoded, dtype=np.uint8)


def classic_roundtrip(pil_format: str, pixels: np.ndarray, setting: int) -> tuple[bytes, np.ndarray]:
    """One image through a Pillow codec at full size, with the bench's options: (file, decoded)."""
    return ClassicCodec(pil_format, pil_format, (setting,)).roundtrip(pixels, setting)


CLASSIC_CODECS = (
    ClassicCodec("JPEG", "JPEG", (1, 5, 10, 20, 30, 50, 75, 90)),
    ClassicCodec("WebP", "WEBP", (0, 5, 10, 20, 30, 50, 75, 90)),
    ClassicCodec("AVIF", "AVIF", (0, 10, 20, 30, 50, 70, 90)),
    ClassicCodec("JPEG 2000", "JPEG2000", (16, 18, 20, 22, 24, 27, 30, 34)),
    ClassicCodec("WebP@1/2", "WEBP", (0, 10, 30, 50, 75, 90), 2),
    ClassicCodec("WebP@1/4", "WEBP", (0, 30, 75, 90), 4),
    ClassicCodec("JPEG@1/2", "JPEG", (1, 10, 30, 50, 75, 90), 2),
    ClassicCodec("JPEG@1/4", "JPEG", (1, 30, 75, 90), 4),
)


# --- metrics --------------------------------------------------------------------------------

def msssim_settings(side: int) -> tuple[int, tuple[float, ...]] | None:
    """(window, scale weights) for MS-SSIM at this image size, or None where it is undefined.

    The standard 5 scales need a side > 2**4 * (window - 1): 64 px works with a 3 x 3
    window. At 32 px only 4 scales fit (the coarsest is 4 x 4); the first four standard
    weights are renormalised to sum to 1. Below 32 px MS-SSIM is not reported.
    """
    if side >= 64:
        return 3, MSSSIM_WEIGHTS
    if side >= 32:
        w = MSSSIM_WEIGHTS[:4]
        return 3, tuple(x / sum(w) for x in w)
    return None


def msssim_per_image(original: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    spec = msssim_settings(min(original.shape[1:3]))
    if spec is None:
        return np.full(len(original), np.nan)
    win, weights = spec
    return ms_ssim_levels(to_unit(original), to_unit(decoded), win, weights).numpy().astype(float)


def ms_ssim_levels(x: torch.Tensor, y: torch.Tensor, win_size: int, weights: tuple[float, ...]) -> torch.Tensor:
    """pytorch-msssim's ms_ssim (per image, data range 1) with as many scales as `weights`.

    ms_ssim itself insists on room for 5 scales; this is its loop, using its own SSIM
    kernel, so that 4 scales can be measured at 32 x 32 (equal to ms_ssim at 5 scales).
    """
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    win = _fspecial_gauss_1d(win_size, 1.5).repeat([x.shape[1], 1, 1, 1])
    w = x.new_tensor(weights)
    mcs = []
    for i in range(len(weights)):
        ssim_per_channel, cs = _ssim(x, y, win=win, data_range=1.0, size_average=False, K=(0.01, 0.03))
        if i < len(weights) - 1:
            mcs.append(torch.relu(cs))
            padding = [s % 2 for s in x.shape[2:]]
            x = torch.nn.functional.avg_pool2d(x, kernel_size=2, padding=padding)
            y = torch.nn.functional.avg_pool2d(y, kernel_size=2, padding=padding)
    stacked = torch.stack(mcs + [torch.relu(ssim_per_channel)], dim=0)
    return torch.prod(stacked ** w.view(-1, 1, 1), dim=0).mean(1)


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


def run_invcomp(codec, images: np.ndarray, bits: tuple[int, ...], cfg, batch_size: int, key: dict,
                progress: Callable[[int], None] | None = None) -> Series:
    """invcomp at every operating point, one inversion run per batch (Codec.compress_candidates)."""
    found = codec.compress_candidates(list(images), bits, cfg, batch_size, progress)
    points, files = [], {}
    for j, b in enumerate(bits):
        datas = [per_image[j].data for per_image in found]
        decoded = np.stack([codec.decompress(d) for d in datas])
        points.append(measure(images, decoded, [len(d) for d in datas]))
        files[str(b)] = [d.hex() for d in datas]
    name = f"invcomp {codec.model.name}"
    return Series(name, "invcomp", list(bits), [f"{b}-bit" for b in bits], points, key, {"files": files})


# --- analysis -------------------------------------------------------------------------------

def _interp(x: float, xs: list[float], ys: list[float]) -> float | None:
    """Piecewise-linear y at x over log(x); None outside the curve's range."""
    order = np.argsort(xs)
    xs_s, ys_s = np.log(np.asarray(xs, float)[order]), np.asarray(ys, float)[order]
    lx = math.log(x)
    if lx < xs_s[0] - 1e-12 or lx > xs_s[-1] + 1e-12:
        return None
    return float(np.interp(lx, xs_s, ys_s))


def _upper_envelope(rows: list[dict], metric: str) -> tuple[list[float], list[float]]:
    """The curve's best quality reachable at or below each byte count (a codec can always spend less)."""
    pts = sorted((r["mean_bytes"], r[metric]) for r in rows)
    xs, ys, best = [], [], -math.inf
    for b, q in pts:
        best = max(best, q)
        xs.append(b)
        ys.append(best)
    return xs, ys


def _envelope_at(nbytes: float, xs: list[float], ys: list[float]) -> float | None:
    """The envelope's quality at a byte count: flat beyond its last point, None below its first."""
    if nbytes < xs[0]:
        return None
    return ys[-1] if nbytes >= xs[-1] else _interp(nbytes, xs, ys)


def crossings(ours: list[dict], theirs: list[dict], metric: str) -> dict:
    """Where two curves meet, as quality at a byte budget (each codec's best point within it).

    From the larger of the two lowest rates on, both are defined; returns who leads there
    ("invcomp" or "other") and the budgets (mean bytes) where the lead changes hands.
    """
    ox, oy = _upper_envelope(ours, metric)
    tx, ty = _upper_envelope(theirs, metric)
    start = max(ox[0], tx[0])
    grid = sorted(b for b in set(ox + tx) if b >= start)
    diffs = [(b, _envelope_at(b, ox, oy) - _envelope_at(b, tx, ty)) for b in grid]
    changes = []
    for (b0, d0), (b1, d1) in zip(diffs, diffs[1:]):
        if (d0 > 0) != (d1 > 0):
            t = d0 / (d0 - d1) if d0 != d1 else 0.0
            changes.append(round(math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))), 1))
    return {"from_bytes": round(start, 1), "leader": "invcomp" if diffs[0][1] > 0 else "other", "changes": changes}


def analyse(rows: list[dict], default_bits: int) -> dict:
    """The issue's targets and the crossings, from the summary rows of every series."""
    ours = [r for r in rows if r["codec"].startswith("invcomp")]
    webp = [r for r in rows if r["codec"] == "WebP"]
    out: dict = {}
    q0 = next((r for r in webp if r["setting"] == 0), None)
    default = next((r for r in ours if r["setting"] == default_bits), None)
    if q0 and default:
        out["default_vs_webp_q0"] = {
            "bytes_ratio": round(default["mean_bytes"] / q0["mean_bytes"], 4),
            "ssim_delta": round(default["ssim"] - q0["ssim"], 4),
            "psnr_delta_db": round(default["psnr"] - q0["psnr"], 3),
            "target_met": default["mean_bytes"] <= 0.5 * q0["mean_bytes"] and default["ssim"] >= q0["ssim"]}
        for metric in ("ssim", "psnr"):  # our bytes at WebP q0's quality, on our curve's envelope
            xs, ys = _upper_envelope(ours, metric)
            hit = next((i for i, y in enumerate(ys) if y >= q0[metric]), None)
            if hit is None:
                ratio = None
            elif hit == 0:
                ratio = round(xs[0] / q0["mean_bytes"], 4)  # already above at our lowest rate
            else:
                t = (q0[metric] - ys[hit - 1]) / (ys[hit] - ys[hit - 1])
                ratio = round(math.exp(math.log(xs[hit - 1]) + t * (math.log(xs[hit]) - math.log(xs[hit - 1])))
                              / q0["mean_bytes"], 4)
            out[f"bytes_ratio_at_webp_q0_{metric}"] = ratio
        # dominance below WebP q0's size: at each classic point cheaper than WebP q0, is our envelope higher?
        violations, checked = [], 0
        ox, oy = _upper_envelope(ours, "ssim")
        for r in rows:
            if r in ours or r["mean_bytes"] >= q0["mean_bytes"]:
                continue
            ours_at = _envelope_at(r["mean_bytes"], ox, oy)
            checked += 1
            if ours_at is None or ours_at <= r["ssim"]:
                violations.append({"codec": r["codec"], "label": r["label"], "mean_bytes": r["mean_bytes"],
                                   "ssim": r["ssim"], "invcomp_ssim": None if ours_at is None else round(ours_at, 4)})
        out["ssim_curve_above_classics_below_webp_q0"] = {"classic_points_checked": checked, "violations": violations}
    out["crossings_bytes"] = {}
    for name in dict.fromkeys(r["codec"] for r in rows if r not in ours):
        theirs = [r for r in rows if r["codec"] == name]
        out["crossings_bytes"][name] = {m: crossings(ours, theirs, m) for m in ("ssim", "psnr")}
    return out


def markdown(rows: list[dict], analysis: dict) -> str:
    lines = ["| codec | setting | mean bytes | bpp | PSNR (dB) | SSIM | MS-SSIM |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ms = f"{r['msssim']:.4f}" if r["msssim"] is not None else "n/a"
        lines.append(f"| {r['codec']} | {r['label']} | {r['mean_bytes']:.1f} | {r['bpp']:.3f} | {r['psnr']:.2f} | "
                     f"{r['ssim']:.4f} | {ms} |")
    lines.append("")
    d = analysis.get("default_vs_webp_q0")
    if d:
        lines.append(f"- Default setting vs WebP q0: {d['bytes_ratio']:.2f}x the bytes, SSIM {d['ssim_delta']:+.4f}, "
                     f"PSNR {d['psnr_delta_db']:+.2f} dB; target (<= 0.5x bytes, >= SSIM) "
                     f"{'met' if d['target_met'] else 'NOT met'}.")
        for m in ("ssim", "psnr"):
            r = analysis.get(f"bytes_ratio_at_webp_q0_{m}")
            lines.append(f"- invcomp's bytes at WebP q0's {m.upper()}: "
                         + (f"{r:.2f}x WebP q0's bytes." if r is not None else "not reached by any operating point."))
        dom = analysis["ssim_curve_above_classics_below_webp_q0"]
        lines.append(f"- SSIM curve above every classic point cheaper than WebP q0: {dom['classic_points_checked']} "
                     f"points checked, {len(dom['violations'])} below or outside invcomp's curve"
                     + ("" if not dom["violations"] else ": " + "; ".join(
                         f"{v['codec']} {v['label']} ({v['mean_bytes']:.0f} B, SSIM {v['ssim']:.3f} vs ours "
                         f"{'n/a' if v['invcomp_ssim'] is None else format(v['invcomp_ssim'], '.3f')})"
                         for v in dom["violations"])) + ".")
    cross = analysis.get("crossings_bytes", {})
    if cross:
        lines.append("- Where the curves meet (quality at a byte budget: each codec's best point within it):")
        for name, c in cross.items():
            lines.append(f"  - {name}: " + "; ".join(f"{m.upper()} {_lead_text(name, c[m])}" for m in ("ssim", "psnr")))
    return "\n".join(lines) + "\n"


def _lead_text(name: str, c: dict) -> str:
    who = {"invcomp": "invcomp", "other": name}
    text = f"{who[c['leader']]} above from {c['from_bytes']:.0f} B"
    leader = c["leader"]
    for b in c["changes"]:
        leader = "other" if leader == "invcomp" else "invcomp"
        text += f", {who[leader]} above from {b:.0f} B"
    return text


# --- figures --------------------------------------------------------------------------------

def plot_rd(rows: list[dict], metric: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name in dict.fromkeys(r["codec"] for r in rows):
        pts = sorted((r["bpp"], r[metric]) for r in rows if r["codec"] == name)
        style = dict(lw=2.5, color="black", marker="o") if name.startswith("invcomp") else dict(lw=1, marker=".")
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def plot_grid(originals: np.ndarray, columns: list[tuple[str, list[np.ndarray], list[int]]], path: Path) -> None:
    """Rows: images; columns: original, then each codec's reconstruction with its bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def matched_grid(images: np.ndarray, ours: Series, bits: int, n: int) -> tuple[list[int], list]:
    """The first n images: invcomp at `bits`, and per classic codec the setting whose file is
    closest in bytes to invcomp's file for that image (the cheapest setting if all are larger)."""
    j = ours.settings.index(bits)
    our_sizes = ours.points[j]["bytes"][:n]
    columns = []
    for codec in (c for c in CLASSIC_CODECS if c.name in ("WebP", "JPEG", "AVIF", "JPEG 2000", "WebP@1/2", "WebP@1/4")):
        ims, sizes = [], []
        for i in range(n):
            trials = [codec.roundtrip(images[i], s) for s in codec.settings]
            best = min(trials, key=lambda t: (abs(len(t[0]) - our_sizes[i]), len(t[0])))
            ims.append(best[1])
            sizes.append(len(best[0]))
        columns.append((codec.name, ims, sizes))
    return our_sizes, columns
