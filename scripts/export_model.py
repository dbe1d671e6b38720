"""Copy a finished training run into pretrained/: weights, encoder, training log, sample grid.

    python scripts/export_model.py runs/cmp/aegan64.pt runs/cmp_aegan64 airplanes32 [VERSION]
    python scripts/export_model.py runs/f64.best.pt runs/f64 flowers64 2     # the best held-out epoch

Prints the registry entry (file names, sha256, version) to add to MODELS in
invcomp/models/registry.py. A retrained model of an existing name is the next VERSION, with
versioned file names (NAME.vN.pt); the old entry stays, so files written with it still decode.
"""
import json
import shutil
import sys
from pathlib import Path

from invcomp.models.train import encoder_path
from invcomp.models.weights import load_net, sha256_of


def main(weights: str, run_dir: str, name: str, version: str = "1") -> None:
    src, run, dst = Path(weights), Path(run_dir), Path("pretrained")
    stem = name if version == "1" else f"{name}.v{version}"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in log if r["generator"] == sha256_of(src)]
    if not epochs:  # the last epoch's weights (NAME.pt) or the best held-out epoch's (NAME.best.pt)
        raise SystemExit(f"{src} is not the weights of any epoch of the run (log.jsonl)")
    last = epochs[-1]
    shutil.copyfile(src, dst / f"{stem}.pt")
    shutil.copyfile(encoder_path(src), dst / f"{stem}.encoder.pt")
    shutil.copyfile(run / "log.jsonl", dst / f"{stem}.train.jsonl")
    shutil.copyfile(run / "samples" / f"epoch_{last['epoch']:03d}.png", dst / f"{stem}.samples.png")
    cfg = load_net((dst / f"{stem}.pt").read_bytes(), "generator", name).cfg
    print(f'ModelInfo("{name}", "{stem}.pt", {cfg.resolution}, {cfg.latent_dim}, "{sha256_of(dst / f"{stem}.pt")}", '
          f'"{stem}.encoder.pt", "{sha256_of(dst / f"{stem}.encoder.pt")}", version={version}),')
    print(f"epoch {last['epoch']} of {log[-1]['epoch']}, training {last['seconds'] / 60:.1f} min to it")


if __name__ == "__main__":
    main(*sys.argv[1:])
