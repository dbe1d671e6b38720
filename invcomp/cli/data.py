"""The data commands: `invcomp data list` and `invcomp data prepare NAME... --root DIR`."""
from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer

from invcomp.cli.common import ProgressBar, guarded, short_help

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="The data sets the pretrained models were trained on (data/README.md).")


def _root(root: Optional[Path]) -> Path:
    from invcomp.io.datasets import data_dir

    return root if root is not None else data_dir()


@guarded
def list_(
    root: Optional[Path] = typer.Option(None, "--root", help="data folder (default: $INVCOMP_DATA, else ../shared/data, else data)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The data sets, their images per split, and whether the data folder holds their files."""
    from invcomp.io.prepare import DOWNLOAD_MB, status

    folder = _root(root)
    rows = []
    for s in status(folder):
        state = "missing"
        if s.present:
            state = "present" if s.complete else f"present, {s.images} images (expected {s.dataset.images[s.split]})" \
                if s.images is not None else "present, unreadable"
        rows.append({"name": s.dataset.name, "split": s.split, "file": s.path.name, "images": s.dataset.images[s.split],
                     "resolution": s.dataset.resolution, "source": s.dataset.source, "present": s.complete, "state": state,
                     "bytes": s.bytes})
    if as_json:
        typer.echo(json.dumps({"root": str(folder), "files": rows}, indent=2))
        return
    env = "" if "INVCOMP_DATA" not in os.environ or root is not None else " ($INVCOMP_DATA)"
    typer.echo(f"data folder: {folder}{env}")
    typer.echo(f"{'file':28s} {'images':>6s} {'size':>5s}  state")
    for r in rows:
        typer.echo(f"{r['file']:28s} {r['images']:>6d} {r['resolution']:>3d}px  {r['state']}")
    sources = ", ".join(f"{k} {v} MB" for k, v in DOWNLOAD_MB.items())
    typer.echo(f"\n`invcomp data prepare NAME --root DIR` downloads and converts ({sources}).\n"
               "Your own images: any folder of PNG/JPEG files works wherever a data file does (data/README.md).")


@guarded
def prepare(
    names: list[str] = typer.Argument(..., help="data sets (see `invcomp data list`), or cifar10, flowers, all"),
    root: Optional[Path] = typer.Option(None, "--root", help="where the .npz files go (default: $INVCOMP_DATA, else data)"),
    downloads: Optional[Path] = typer.Option(None, "--downloads", help="where the sources are downloaded (default: ROOT/downloads)"),
    split: str = typer.Option("both", "--split", help="train, test or both"),
    download: bool = typer.Option(True, "--download/--no-download", help="fetch missing sources (or use only what is there)"),
) -> None:
    """Download data sets through torchvision and write their .npz train/test files.

    Sources go to ROOT/downloads (kept, so that another data set of the same source needs no
    second download; delete the folder when done). Point INVCOMP_DATA at ROOT to use the files.
    """
    from invcomp.errors import InvcompError
    from invcomp.io.prepare import SPLITS
    from invcomp.io.prepare import prepare as run

    if split not in (*SPLITS, "both"):
        raise InvcompError(f"--split must be train, test or both, not {split!r}")
    folder = root if root is not None else Path(os.environ.get("INVCOMP_DATA", "data"))
    splits = SPLITS if split == "both" else (split,)
    with ExitStack() as stack:
        bars: dict[str, ProgressBar] = {}

        def progress(stage: str, done: int, total: int) -> None:  # a bar from the first image converted on
            if stage == "convert":
                if stage not in bars:
                    bars[stage] = stack.enter_context(ProgressBar(stage, total))
                bars[stage].update(done, total)

        written = run(names, folder, downloads, splits, download, progress)
    for w in written:
        check = {True: "identical to the reference file", False: "differs from the reference file (data/README.md)",
                 None: "no reference file"}[w.matches_reference]
        typer.echo(f"{w.path}: {w.images} images, {check}")
    typer.echo(f"export INVCOMP_DATA={folder.resolve()}")


for name, command in (("list", list_), ("prepare", prepare)):
    app.command(name, short_help=short_help(command))(command)
