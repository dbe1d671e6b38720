"""Reading the rate-distortion curves: budget envelopes, where curves cross, the targets against WebP q0, Markdown."""
from __future__ import annotations

import math

import numpy as np


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
