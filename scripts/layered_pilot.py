"""Pilot of the *layered inversion* enhancement design (issue 13): offsets added to the generator's
intermediate activations, optimised per image on top of the quantized base latent under the same
SSIM + MSE loss with an L1 (rate) penalty, quantized uniformly and coded with the enhancement coder
(coefficients.encode, offsets grouped as blocks of 16) to count real bytes.

    python scripts/layered_pilot.py --n 30 --budgets 1 2

Two placements: `spatial4` (an offset per channel and position at the 4x4 layer) and `channels`
(one offset per channel at every intermediate layer). Per image and budget, the best (SSIM) of a
small grid of (penalty, step) that fits is kept, against the DCT residual part at the same budget
on the same base files. Writes results/enhance/layered_pilot.json/.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


PENALTIES = {"spatial4": (0.3, 1.0, 3.0), "channels": (0.1, 0.3, 1.0)}  # from a one-image sweep: smaller ones cost
# hundreds of bytes


def run_with_offsets(G, z, offsets, placement):
    import torch

    h = z.view(z.shape[0], -1, 1, 1)
    relu = 0
    for layer in G.net:
        h = layer(h)
        if isinstance(layer, torch.nn.ReLU):
            if placement == "spatial4" and relu == 0:
                h = h + offsets[0]
            elif placement == "channels":
                h = h + offsets[relu][None, :, None, None]
            relu += 1
    return h


def offset_shapes(G, placement):
    import torch

    shapes, ch = [], None
    for layer in G.net:
        if isinstance(layer, torch.nn.BatchNorm2d):
            ch = layer.num_features
            shapes.append(ch)
    return [(1, shapes[0], 4, 4)] if placement == "spatial4" else [(c,) for c in shapes]


def fit_offsets(G, z, x, placement, penalty, steps=150):
    import torch

    from invcomp.metrics import ssim01

    offs = [torch.zeros(s, requires_grad=True) for s in offset_shapes(G, placement)]
    opt = torch.optim.Adam(offs, lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        y = (run_with_offsets(G, z, offs, placement) + 1) / 2
        loss = (1 - ssim01(y, x).mean()) + ((y - x) ** 2).mean() + penalty * sum(o.abs().mean() for o in offs)
        loss.backward()
        opt.step()
    return [o.detach() for o in offs]


def code_offsets(offs, step):
    """Quantized offsets and their coded bytes (the enhancement coder, blocks of 16 values)."""
    from invcomp.formats import coefficients

    q = np.concatenate([np.round(o.numpy().ravel() / step) for o in offs]).astype(np.int64)
    pad = (-len(q)) % 16
    blocks = np.concatenate([q, np.zeros(pad, np.int64)]).reshape(1, 1, -1, 16)
    data = coefficients.encode(blocks, (False,))
    return q, len(data) + 3  # + kind, step and check bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--budgets", type=float, nargs="+", default=[1.0, 2.0])
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from invcomp.bench.classic import classic_roundtrip
    from invcomp.codec import Codec
    from invcomp.enhance.choose import Base, Target, choose_enhanced
    from invcomp.formats.icz import decode_file
    from invcomp.inversion.quantize import dequantize
    from invcomp.io.datasets import data_dir
    from invcomp.metrics import image_quality

    codec = Codec("airplanes32", "cpu")
    G = codec.model.generator
    images = np.load(data_dir() / "cifar10_airplane_test.npz")["images"][: args.n]
    webp0 = float(np.mean([len(classic_roundtrip("WEBP", im, 0)[0]) for im in images]))
    cands = codec.compress_candidates(list(images))
    rows = []
    t0 = time.time()
    fits = {}  # (image, bits, placement, penalty) -> offsets: fitted once, coded at every budget
    for mult in args.budgets:
        budget = int(round(mult * webp0))
        dct = [choose_enhanced(x, [Base(c.bits, c.data, codec.decompress(c.data)) for c in cs], Target(max_bytes=budget)).candidate
               for x, cs in zip(images, cands)]
        rows.append({"budget_x": mult, "budget": budget, "design": "DCT residual part", "bytes": float(np.mean([c.size for c in dct])),
                     "psnr": float(np.mean([c.psnr for c in dct])), "ssim": float(np.mean([c.ssim for c in dct]))})
        for placement in ("spatial4", "channels"):
            got = []
            for i, (x, cs) in enumerate(zip(images, cands)):
                xt = torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255
                best = None
                for c in cs:
                    if c.size + 4 > budget:
                        continue
                    _, codes = decode_file(c.data, G.cfg.latent_dim, G.cfg.latent_range)
                    z = dequantize(torch.from_numpy(codes)[None], c.bits, G.cfg.latent_range)
                    best = best or (c.ssim, c.psnr, c.size)
                    if best[0] < c.ssim:
                        best = (c.ssim, c.psnr, c.size)
                    if c.bits not in (3, 4):
                        continue
                    for penalty in PENALTIES[placement]:
                        key = (i, c.bits, placement, penalty)
                        if key not in fits:
                            fits[key] = fit_offsets(G, z, xt, placement, penalty)
                        offs = fits[key]
                        for step in (0.4, 0.8, 1.6):
                            q, nbytes = code_offsets(offs, step)
                            total = c.size + 2 + nbytes
                            if total > budget:
                                continue
                            it = iter(q.tolist())
                            deq = [torch.tensor([next(it) * step for _ in range(o.numel())]).view(o.shape) for o in offs]
                            with torch.no_grad():
                                y = ((run_with_offsets(G, z, deq, placement) + 1) / 2 * 255).round().clamp(0, 255)
                            p, s = image_quality(x[None], y[0].permute(1, 2, 0).numpy().astype(np.uint8)[None])
                            if s[0] > best[0]:
                                best = (float(s[0]), float(p[0]), total)
                got.append(best)
            rows.append({"budget_x": mult, "budget": budget, "design": f"layered inversion ({placement})",
                         "bytes": float(np.mean([g[2] for g in got])), "psnr": float(np.mean([g[1] for g in got])),
                         "ssim": float(np.mean([g[0] for g in got]))})
            print(rows[-1], flush=True)
    out = ROOT / "results" / "enhance"
    out.mkdir(parents=True, exist_ok=True)
    (out / "layered_pilot.json").write_text(json.dumps({"n": len(images), "webp_q0_mean_bytes": webp0, "rows": rows,
                                                         "seconds": round(time.time() - t0, 1)}, indent=2) + "\n")
    lines = ["| budget | design | bytes | PSNR | SSIM |", "|---|---|---|---|---|"]
    lines += [f"| {r['budget_x']:g}x ({r['budget']} B) | {r['design']} | {r['bytes']:.1f} | {r['psnr']:.2f} | {r['ssim']:.3f} |"
              for r in rows]
    (out / "layered_pilot.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
