"""Pilot of the deblocking filter of parts of kind 1: how much it buys at equal bytes, and at which strength.

    python scripts/deblock_pilot.py --model airplanes32 --data cifar10_airplane_test.npz --n 100 --budgets 1 2 3

Per image and budget (multiples of WebP-q0's mean bytes over these images) and per metric: the file
`fit --max-bytes` chose before kind 1 existed (the filter switched off); the same file's parts decoded
with the filter at strengths 0.3, 0.5 and 0.7 (t = strength x step; kind 1 is 0.5) and with the better
of off and 0.5 per image; and the file `fit --max-bytes` chooses now (the kind chosen inside the
search for the part's step). Writes results/enhance/deblock_<model>.json and .md.
"""
from __future__ import annotations

import json

import numpy as np
from pilots import pilot_inputs, pilot_parser, save_pilot


def main() -> None:
    args = pilot_parser(__doc__, [1.0, 2.0, 3.0]).parse_args()
    from invcomp.enhance import parts
    from invcomp.enhance.choose import Base, Target, choose_enhanced
    from invcomp.enhance.presets import step_size
    from invcomp.enhance.residual import deblock, to_pixels
    from invcomp.formats.icz import split_file
    from invcomp.inversion.rate import PARTS_BITS
    from invcomp.metrics import image_quality

    codec, images, webp0, bases = pilot_inputs(args, PARTS_BITS)

    def decoded_with(base: Base, data: bytes, strength: float) -> np.ndarray:
        recon = base.pixels.astype(np.float64)
        for raw in split_file(data)[2]:
            part = parts.parse_part(raw)
            recon = parts.decode_part(part, recon)
            if strength:  # deblock's t is step / 2: a step of 2 x strength x step gives t = strength x step
                recon = deblock(recon, part.block, 2 * strength * step_size(part.step))
        return to_pixels(recon)

    def quality(x, pixels):
        p, s = image_quality(x[None], pixels[None])
        return float(p[0]), float(s[0])

    rows = []
    real = parts.deblocked
    for mult in args.budgets:
        budget = int(round(mult * webp0))
        for metric in ("ssim", "psnr"):
            k = 0 if metric == "psnr" else 1
            parts.deblocked = lambda part, decoded: (part, decoded)  # the filter switched off
            before = [choose_enhanced(x, b, Target(max_bytes=budget, metric=metric)).candidate for x, b in zip(images, bases)]
            parts.deblocked = real
            now = [choose_enhanced(x, b, Target(max_bytes=budget, metric=metric)).candidate for x, b in zip(images, bases)]
            results = {f"strength {s:g}": [] for s in (0.3, 0.5, 0.7)}
            results["better of off and 0.5"] = []
            for x, b, c in zip(images, bases, before):
                base = next((m for m in b if c.data[2] == 2 and split_file(m.data)[1] == split_file(c.data)[1]), None)
                got = {s: (quality(x, decoded_with(base, c.data, s)) if base else (c.psnr, c.ssim)) for s in (0.3, 0.5, 0.7)}
                for s in (0.3, 0.5, 0.7):
                    results[f"strength {s:g}"].append(got[s])
                results["better of off and 0.5"].append(max((c.psnr, c.ssim), got[0.5], key=lambda q: q[k]))
            row = {"multiple": mult, "budget": budget, "metric": metric,
                   "off (as before)": _mean([(c.psnr, c.ssim) for c in before]), **{n: _mean(v) for n, v in results.items()},
                   "chosen now": _mean([(c.psnr, c.ssim) for c in now]),
                   "chosen now, kind 1": sum(c.data[2] == 2 and split_file(c.data)[2][0][0] == 1 for c in now),
                   "bytes before": round(float(np.mean([c.size for c in before])), 2),
                   "bytes now": round(float(np.mean([c.size for c in now])), 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {"model": args.model, "data": args.data, "images": len(images), "webp_q0_mean_bytes": round(webp0, 2), "rows": rows}
    cols = ["off (as before)", "strength 0.3", "strength 0.5", "strength 0.7", "better of off and 0.5", "chosen now"]
    lines = [f"{args.model}, first {len(images)} images of {args.data}; budgets are multiples of WebP-q0's mean "
             f"{webp0:.1f} B; PSNR / SSIM of the files chosen for the metric named.", "",
             "| budget | chosen for | " + " | ".join(cols) + " | kind 1 now |", "|---|---|" + "---:|" * (len(cols) + 1)]
    for r in rows:
        cells = [f"{r[c][0]:.2f} / {r[c][1]:.4f}" for c in cols]
        lines.append(f"| {r['multiple']:g}x ({r['budget']} B) | {r['metric'].upper()} | " + " | ".join(cells)
                     + f" | {r['chosen now, kind 1']} |")
    save_pilot(f"deblock_{args.model}", report, lines)


def _mean(pairs: list[tuple[float, float]]) -> list[float]:
    a = np.mean(np.asarray(pairs, dtype=np.float64), 0)
    return [round(float(a[0]), 3), round(float(a[1]), 4)]


if __name__ == "__main__":
    main()
