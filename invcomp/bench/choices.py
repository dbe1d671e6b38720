"""invcomp's side of the equal-budget table (budgets.py): per budget, metric and image, the file `fit
--max-bytes` chooses from the cached bases. The part search is the slow part of a bench rerun, so its
result is cached under results/bench_cache/, keyed by the bases and the code that chooses."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from invcomp.bench.progress import Stages
from invcomp.codec import Codec
from invcomp.enhance.choose import Base, Target, choose_enhanced
from invcomp.files import write_atomic
from invcomp.inversion.rate import PARTS_BITS


def budget_choices(codec: Codec, images: np.ndarray, ours, budgets: list[int], cache: Path, progress: Stages) -> dict:
    """Per budget and metric, per image: (bytes, PSNR, SSIM, has parts) of the file `fit --max-bytes`
    chooses from the cached bases; cached too, keyed by the bases and the source of the choice (a rerun
    that only adds the learned peer's rows chooses nothing again)."""
    key = {"bases": ours.key, "budgets": budgets, "code": choice_code_digest()}
    path = cache / f"choices_{codec.model.name}.json"
    try:
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["choices"]
    except (OSError, ValueError):
        pass
    bases = [[Base(int(b), bytes.fromhex(files[i]), np.zeros(0), kind != "priorless_files")
              for kind in ("files", "parts_files", "priorless_files") for b, files in ours.extra[kind].items()]
             for i in range(len(images))]
    with progress("decode bases", len(images)) as bar:
        for per_image in bases:
            for j, b in enumerate(per_image):
                per_image[j] = replace(b, pixels=codec.decompress(b.data))
            bar.advance(1)
    choices = {}
    for budget in budgets:
        for metric in ("ssim", "psnr"):
            with progress(f"invcomp {budget} B {metric}", len(images)) as bar:
                chosen = []
                for x, b in zip(images, bases):
                    c = choose_enhanced(x, b, Target(max_bytes=budget, metric=metric), part_bits=PARTS_BITS).candidate
                    chosen.append((c.size, c.psnr, c.ssim, c.data[2] == 2))
                    bar.advance(1)
            choices[f"{budget} {metric}"] = chosen
    write_atomic(path, json.dumps({"key": key, "choices": choices}).encode())
    return json.loads(json.dumps(choices))  # the same types a cache hit gives


def choice_code_digest() -> str:
    """sha256 of the modules that choose and code the parts and of this one, which calls the choice: a change
    to any invalidates cached choices (the table's code is not in it: editing the table keeps them)."""
    import invcomp.enhance as enhance
    import invcomp.formats as formats

    files = [*sorted(Path(enhance.__file__).parent.glob("*.py")), *sorted(Path(formats.__file__).parent.glob("*.py")),
             Path(__file__)]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
