"""Compare trained generators by how well they reproduce held-out images (inversion quality).

    python scripts/compare_generators.py runs/cmp/aegan64.pt runs/cmp/dcgan100.pt --n 100

For each generator (its encoder is used when one lies beside it): invert N held-out images
(by default the last 200 of the training file, which `invcomp train --holdout 200` never
trains on, so that choosing a recipe does not peek at the test file) at 12 bits (close to unquantized) and at 4 bits,
with the default inversion settings;
report mean bytes, PSNR and SSIM. Writes results/compare_generators.{json,md}.
"""
import argparse
import itertools
import json
from pathlib import Path

from invcomp.bench.evaluate import evaluate_invcomp, evaluate_webp
from invcomp.codec import Codec
from invcomp.files import write_atomic
from invcomp.io.datasets import load_npz_images, resolve_data_path
from invcomp.models.zoo import resolve_model


def label(weights: Path) -> str:
    """A registered name as it is; a weights file by its folder and stem (runs/x/A.best.pt -> x/A.best)."""
    return f"{weights.parent.name}/{weights.stem}" if str(weights).endswith(".pt") else str(weights)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", nargs="+", type=Path)
    ap.add_argument("--data", default="cifar10_airplane_train.npz")
    ap.add_argument("--holdout", type=int, default=200, help="use the last HOLDOUT images of the file (0: all)")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--bits", type=int, nargs="+", default=[12, 4])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--restarts", type=int, default=2)
    ap.add_argument("--prior-weight", type=lambda v: None if v == "model" else float(v), nargs="+", default=[None],
                    help="the inversion's latent prior weight(s) (a rate-distortion knob: higher, fewer bytes), at "
                         "every depth; 'model' (the default): each model's own, with its schedule per depth")
    ap.add_argument("--prior-at", nargs="+", default=None, metavar="BITS=WEIGHT",
                    help="a schedule: the prior weight of the quantization-aware tail at these depths "
                         "(InversionConfig.prior_weights; default: each model's own)")
    ap.add_argument("--out", type=Path, default=Path("results/compare_generators"))
    args = ap.parse_args()
    images, _ = load_npz_images(resolve_data_path(args.data))
    images = (images[-args.holdout :] if args.holdout else images)[: args.n]
    rows = [{"generator": "WebP q0", **evaluate_webp(images).to_dict()}]
    for w in args.weights:
        codec = Codec(resolve_model(str(w)), "cpu")
        log = w.with_name(w.stem + ".log.jsonl")  # a copy of the run's training log, if kept beside it
        trained = json.loads(log.read_text().splitlines()[-1]) if log.exists() else {}
        measured = set()
        for bits, prior in itertools.product(args.bits, args.prior_weight):
            weight = {} if prior is None else {"prior_weight": prior}
            if args.prior_at is not None:
                weight["prior_weights"] = tuple((int(b), float(w)) for b, w in (p.split("=") for p in args.prior_at))
            cfg = codec.config(bits=bits, steps=args.steps, restarts=args.restarts, **weight)
            if cfg in measured:  # e.g. `--prior-weight 0.02 model` for a model whose own weight is 0.02
                continue
            measured.add(cfg)
            s = evaluate_invcomp(codec, images, cfg)
            rows.append({"generator": label(w), "encoder": codec.model.encoder is not None,
                         "latent": codec.model.config.latent_dim, "prior_weight": cfg.prior_weight,
                         "tail_prior_weight": cfg.prior_at(bits),
                         "epochs": trained.get("epoch"),
                         "train_minutes": round(trained["seconds"] / 60, 1) if trained else None, **s.to_dict()})
            print(json.dumps(rows[-1]), flush=True)
    lines = ["| generator | latent | epochs | train min | prior weight (/ tail) | codec | mean bytes | PSNR (dB) | SSIM |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        latent, epochs, minutes, prior, tail = (r.get(k) if r.get(k) is not None else "" for k in
                                                ("latent", "epochs", "train_minutes", "prior_weight", "tail_prior_weight"))
        prior = f"{prior} / {tail}" if tail != prior else prior
        lines.append(f"| {r['generator']} | {latent} | {epochs} | {minutes} | {prior} | "
                     f"{r['codec']} | {r['mean_bytes']:.2f} | {r['psnr']:.2f} | {r['ssim']:.4f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"data": args.data, "holdout": args.holdout, "n": args.n, "prior_weight": args.prior_weight,
              "prior_at": args.prior_at, "rows": rows}
    write_atomic(args.out.with_suffix(".json"), json.dumps(report, indent=2).encode())
    write_atomic(args.out.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
