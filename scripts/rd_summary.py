"""Condense the rate-distortion bench reports into the Markdown of docs/RESULTS.md.

    python scripts/rd_summary.py results/bench_*_test.json > results/rd_summary.md

One summary table over the domains (the issue's targets), then per domain the invcomp
points, each classic codec's points up to twice WebP q0's size, and the crossings.
"""
import json
import sys


def fmt_ratio(r):
    return "not reached" if r is None else f"{r:.2f}x"


def main(paths):
    reports = [json.load(open(p)) for p in paths]
    out = ["| model | test images | invcomp default | bytes | PSNR | SSIM | WebP q0 bytes | PSNR | SSIM | bytes ratio | "
           "target | bytes at WebP q0 SSIM | bytes at WebP q0 PSNR |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in reports:
        rows, a = r["rows"], r["analysis"]
        ours = next(x for x in rows if x["codec"].startswith("invcomp") and x["setting"] == r["default_bits"])
        q0 = next(x for x in rows if x["codec"] == "WebP" and x["setting"] == 0)
        d = a["default_vs_webp_q0"]
        out.append(f"| {r['model']} | {r['images']} | {ours['label']} | {ours['mean_bytes']:.1f} | {ours['psnr']:.2f} | "
                   f"{ours['ssim']:.3f} | {q0['mean_bytes']:.1f} | {q0['psnr']:.2f} | {q0['ssim']:.3f} | "
                   f"{d['bytes_ratio']:.2f} | {'met' if d['target_met'] else 'missed'} | "
                   f"{fmt_ratio(a['bytes_ratio_at_webp_q0_ssim'])} | {fmt_ratio(a['bytes_ratio_at_webp_q0_psnr'])} |")
    for r in reports:
        rows, a = r["rows"], r["analysis"]
        q0 = next(x for x in rows if x["codec"] == "WebP" and x["setting"] == 0)
        out += ["", f"### {r['model']} on {r['data']} ({r['images']} images, {r['resolution']}x{r['resolution']})", "",
                f"    invcomp bench {r['data']} --model {r['model']} --device cpu", "",
                f"Full table: `results/bench_{r['model']}_{r['data'].rsplit('.', 1)[0]}.md`. "
                f"Points shown: invcomp's, and each classic codec's up to twice WebP q0's size.", "",
                "| codec | setting | mean bytes | bpp | PSNR (dB) | SSIM | MS-SSIM |", "|---|---|---:|---:|---:|---:|---:|"]
        for x in rows:
            if x["codec"].startswith("invcomp") or x["mean_bytes"] <= 2 * q0["mean_bytes"]:
                ms = "n/a" if x["msssim"] is None else f"{x['msssim']:.3f}"
                out.append(f"| {x['codec']} | {x['label']} | {x['mean_bytes']:.1f} | {x['bpp']:.3f} | {x['psnr']:.2f} | "
                           f"{x['ssim']:.3f} | {ms} |")
        dom = a["ssim_curve_above_classics_below_webp_q0"]
        out += ["", f"- Classic points cheaper than WebP q0: {dom['classic_points_checked']}; below invcomp's SSIM curve: "
                f"{dom['classic_points_checked'] - len(dom['violations'])}"
                + ("" if not dom["violations"]
                   else " (not: " + ", ".join(f"{v['codec']} {v['label']}" for v in dom["violations"]) + ")") + "."]
        lead = []
        for name, c in a["crossings_bytes"].items():
            parts = []
            for m in ("ssim", "psnr"):
                x = c[m]
                who = "invcomp" if x["leader"] == "invcomp" else name
                t = f"{m.upper()}: {who} ahead at {x['from_bytes']:.0f} B"
                if x["changes"]:
                    t += ", lead changes at " + ", ".join(f"{b:.0f} B" for b in x["changes"])
                parts.append(t)
            lead.append(f"  - {name}: " + "; ".join(parts))
        out += ["- Where the curves meet (quality at a byte budget, each codec's best point within it):"] + lead
        out += ["", f"![bpp-SSIM](../results/bench_{r['model']}_{r['data'].rsplit('.', 1)[0]}_ssim.png)",
                f"![bpp-PSNR](../results/bench_{r['model']}_{r['data'].rsplit('.', 1)[0]}_psnr.png)", "",
                f"Reconstructions at matched bytes (first images of the test file): "
                f"`results/bench_{r['model']}_{r['data'].rsplit('.', 1)[0]}_grid.png`."]
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
