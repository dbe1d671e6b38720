"""Write compatibility vectors: files made by one invcomp release, with the pixels that release decodes.

    python scripts/make_vectors.py --release 0.1.0                       # this checkout's invcomp
    python scripts/make_vectors.py --release 0.1.0 --pythonpath /tmp/old  # another release's source tree

Every file is made and decoded through the command line (`python -m invcomp fit/decode/pack/unpack`),
the interface every release keeps, so the same script drives old and new releases. The inputs are
synthetic (each model's own samples, one enlarged to test the stored original size, some with seeded
noise added so that they need enhancement parts): no image of a
data set goes into the repository. Writes tests/vectors/<release>/ with the files, the decoded PNGs
and manifest.json (per file: model, how it was made, the decoded pixels' SHA-256);
tests/test_vectors.py decodes them all with the current release.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("airplanes32", "automobiles32", "flowers32", "flowers64")


def sample_images(model: str, n: int, seed: int) -> np.ndarray:
    """n samples G(z) of a pretrained model (z ~ N(0, 1), seeded), as uint8 images."""
    import torch

    from invcomp.metrics import to_uint8
    from invcomp.models.zoo import load_model

    m = load_model(model)
    z = torch.randn(n, m.config.latent_dim, generator=torch.Generator().manual_seed(seed)).clamp(-2.5, 2.5)
    with torch.no_grad():
        return to_uint8((m.generator(z) + 1) / 2)


def run(args: list[str], env: dict) -> None:
    r = subprocess.run([sys.executable, "-m", "invcomp", *args], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"invcomp {' '.join(args)} failed:\n{r.stderr}")


def sha256_png(path: Path) -> str:
    return hashlib.sha256(np.asarray(Image.open(path).convert("RGB")).tobytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--release", required=True, help="the release that writes the files (a folder name)")
    ap.add_argument("--pythonpath", help="source tree of that release (default: this checkout)")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "vectors")
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    out = args.out / args.release
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def entry(name: str, model: str, made: str, icz: Path) -> None:
            png = out / f"{name}.png"
            run(["decode", str(icz), "-o", str(png), "--device", "cpu"]
                + (["--original-size"] if "original-size" in made else []), env)
            entries.append({"file": icz.name, "decoded": png.name, "model": model, "made_with": made,
                            "original_size": "original-size" in made, "pixels_sha256": sha256_png(png)})

        for model in MODELS:
            src = tmp / f"{model}.png"
            Image.fromarray(sample_images(model, 1, 7)[0]).save(src)
            icz = out / f"{model}_default.icz"
            run(["fit", str(src), "-o", str(icz), "-m", model, "--device", "cpu"], env)
            entry(icz.stem, model, f"fit -m {model}", icz)
        src = tmp / "airplanes32.png"
        for q in (1, 2, 3, 4, 5):
            icz = out / f"airplanes32_q{q}.icz"
            run(["fit", str(src), "-o", str(icz), "-m", "airplanes32", "--quality", str(q), "--device", "cpu"], env)
            entry(icz.stem, "airplanes32", f"fit -m airplanes32 --quality {q}", icz)
        for scheme in ("random", "edges+random"):
            icz = out / f"airplanes32_mask_{scheme.replace('+', '_')}.icz"
            run(["fit", str(src), "-o", str(icz), "-m", "airplanes32", "--mask-scheme", scheme, "--keep", "0.05",
                 "--device", "cpu"], env)
            entry(icz.stem, "airplanes32", f"fit --mask-scheme {scheme} --keep 0.05", icz)
        roi = tmp / "roi.png"
        mask = np.zeros((32, 32, 3), np.uint8)
        mask[8:20, 10:26] = 255
        Image.fromarray(mask).save(roi)
        icz = out / "airplanes32_user_mask.icz"
        run(["fit", str(src), "-o", str(icz), "-m", "airplanes32", "--mask", str(roi), "--device", "cpu"], env)
        entry(icz.stem, "airplanes32", "fit --mask roi.png (a 16x12 rectangle)", icz)
        if "--layers" in subprocess.run([sys.executable, "-m", "invcomp", "fit", "--help"], env=env,
                                        capture_output=True, text=True).stdout:  # .icz version 2: enhancement parts
            for name, model, opts in (("airplanes32_parts_max150", "airplanes32", ["--max-bytes", "150", "--layers", "2"]),
                                      ("airplanes32_parts_max250", "airplanes32", ["--max-bytes", "250"]),
                                      ("flowers32_q8", "flowers32", ["--quality", "8"]),
                                      ("flowers64_psnr28", "flowers64", ["--target-psnr", "28"])):
                # a sample with seeded noise on it: detail the generator cannot draw, so the file needs parts
                sample = np.asarray(Image.open(tmp / f"{model}.png"), dtype=np.int64)
                noise = np.random.default_rng(5).integers(-24, 25, sample.shape)
                src = tmp / f"{model}_detailed.png"
                Image.fromarray(np.clip(sample + noise, 0, 255).astype(np.uint8)).save(src)
                icz = out / f"{name}.icz"
                run(["fit", str(src), "-o", str(icz), "-m", model, "--device", "cpu", *opts], env)
                entry(icz.stem, model, f"fit -m {model} {' '.join(opts)}", icz)
            # smooth detail (a sinusoid on a sample) coded coarsely: a part with the deblocking filter (kind 1)
            sample = np.asarray(Image.open(tmp / "airplanes32.png"), dtype=np.float64)
            yy, xx = np.mgrid[0:32, 0:32]
            src = tmp / "airplanes32_waves.png"
            waves = 40 * np.sin(xx / 9) * np.cos(yy / 11)
            Image.fromarray(np.clip(sample + waves[..., None], 0, 255).astype(np.uint8)).save(src)
            icz = out / "airplanes32_parts_waves180.icz"
            run(["fit", str(src), "-o", str(icz), "-m", "airplanes32", "--device", "cpu", "--max-bytes", "180"], env)
            entry(icz.stem, "airplanes32", "fit -m airplanes32 --max-bytes 180 (a sample with waves added)", icz)
            trimmed = out / "airplanes32_parts_trimmed.icz"
            run(["trim", str(out / "airplanes32_parts_max150.icz"), "-o", str(trimmed), "--parts", "1"], env)
            entry(trimmed.stem, "airplanes32", "trim --parts 1 of airplanes32_parts_max150.icz", trimmed)
        big = tmp / "enlarged.png"
        Image.fromarray(sample_images("flowers32", 1, 11)[0]).resize((48, 40), Image.LANCZOS).save(big)
        icz = out / "flowers32_original_size.icz"
        run(["fit", str(big), "-o", str(icz), "-m", "flowers32", "--device", "cpu"], env)
        entry(icz.stem, "flowers32", "fit of a 48x40 image, decode --original-size", icz)
        # an archive of 12 samples
        folder = tmp / "pics"
        folder.mkdir()
        for i, im in enumerate(sample_images("airplanes32", 12, 13)):
            Image.fromarray(im).save(folder / f"sample_{i:02d}.png")
        def archive(name: str, model: str, folder: Path, made: str, pack: list[str] = (), unpack: list[str] = ()) -> None:
            icza = out / f"{name}.icza"
            run(["pack", str(folder), "-o", str(icza), "-m", model, "--device", "cpu", *pack], env)
            unpacked = tmp / f"unpacked_{name}"
            run(["unpack", str(icza), "-o", str(unpacked), "--device", "cpu", *unpack], env)
            pictures = {}
            for png in sorted(unpacked.glob("*.png")):
                shutil.copy(png, out / f"{name}.{png.name}")
                pictures[png.stem] = {"decoded": f"{name}.{png.name}", "pixels_sha256": sha256_png(png)}
            entries.append({"file": icza.name, "model": model, "made_with": made, "pictures": pictures,
                            **({"original_size": True} if "--original-size" in unpack else {})})

        archive("airplanes32_samples", "airplanes32", folder, "pack of 12 samples")
        if "--original-size" in subprocess.run([sys.executable, "-m", "invcomp", "unpack", "--help"], env=env,
                                               capture_output=True, text=True).stdout:  # archives of version 2
            sized = tmp / "sized"
            sized.mkdir()
            for i, im in enumerate(sample_images("flowers32", 3, 17)):
                img = Image.fromarray(im)
                (img.resize((48, 40), Image.LANCZOS) if i == 1 else img).save(sized / f"flower_{i}.png")
            archive("flowers32_original_sizes", "flowers32", sized,
                    "pack of 3 samples, one enlarged to 48x40; unpack --original-size", unpack=["--original-size"])
        if "--max-bytes" in subprocess.run([sys.executable, "-m", "invcomp", "pack", "--help"], env=env,
                                           capture_output=True, text=True).stdout:  # archives with enhancement parts
            noisy = tmp / "noisy"
            noisy.mkdir()
            for i, im in enumerate(sample_images("airplanes32", 4, 19)):
                noise = np.random.default_rng(i).integers(-24, 25, im.shape)
                Image.fromarray(np.clip(im.astype(np.int64) + noise, 0, 255).astype(np.uint8)).save(noisy / f"noisy_{i}.png")
            archive("airplanes32_parts", "airplanes32", noisy, "pack --max-bytes 150 of 4 samples with seeded noise",
                    pack=["--max-bytes", "150"])
    manifest = {"release": args.release, "made_by": "scripts/make_vectors.py", "files": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{len(entries)} vectors -> {out}")


if __name__ == "__main__":
    main()
