"""Copy a finished training run into pretrained/: weights, encoder, training log, sample grid.

    python scripts/export_model.py runs/cmp/aegan64.pt runs/cmp_aegan64 airplanes32

Prints the registry line (file names and sha256) to paste into invcomp/registry.py.
"""
import json
import shutil
import sys
from pathlib import Path

from invcomp.models.train import encoder_path
from invcomp.models.weights import load_net, sha256_of


def main(weights: str, run_dir: str, name: str) -> None:
    src, run, dst = Path(weights), Path(run_dir), Path("pretrained")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    last = log[-1]
    if sha256_of(src) != last["generator"]:
        raise SystemExit(f"{src} is not the weights of the run's last epoch")
    shutil.copyfile(src, dst / f"{name}.pt")
    shutil.copyfile(encoder_path(src), dst / f"{name}.encoder.pt")
    shutil.copyfile(run / "log.jsonl", dst / f"{name}.train.jsonl")
    shutil.copyfile(run / "samples" / f"epoch_{last['epoch']:03d}.png", dst / f"{name}.samples.png")
    cfg = load_net((dst / f"{name}.pt").read_bytes(), "generator", name).cfg
    print(f'ModelInfo("{name}", "{name}.pt", {cfg.resolution}, {cfg.latent_dim}, "{sha256_of(dst / f"{name}.pt")}", '
          f'"{name}.encoder.pt", "{sha256_of(dst / f"{name}.encoder.pt")}"),')
    print(f"epochs {last['epoch']}, training {last['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main(*sys.argv[1:])
