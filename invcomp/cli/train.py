"""`invcomp train`: train a generator (and encoder) for one image domain."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from invcomp.cli.common import fail, guarded


@guarded
def train(
    data: str = typer.Argument(..., help=".npz file (images array) or folder of images"),
    out: Path = typer.Option(..., "--out", "-o", help="generator weights to write (encoder goes beside it)"),
    resolution: int = typer.Option(32, help="32 or 64"),
    latent: int = typer.Option(64, help="latent size"),
    width: int = typer.Option(64, help="base channel width"),
    recipe: str = typer.Option("aegan", help="aegan (generator + encoder, reconstruction + adversarial loss), "
                               "ae (the same without the discriminator, a fraction of the work) or dcgan"),
    epochs: int = typer.Option(100),
    batch_size: int = typer.Option(64),
    lr: float = typer.Option(2e-4),
    adv_weight: float = typer.Option(0.05, help="aegan: weight of the adversarial loss"),
    holdout: int = typer.Option(200, help="last N images kept out of training for validation"),
    minutes: Optional[float] = typer.Option(None, help="stop after the epoch that passes this many minutes"),
    work_dir: Optional[Path] = typer.Option(None, help="checkpoints, samples and log (default runs/<name>)"),
    resume: bool = typer.Option(False, help="continue from the work dir's checkpoint"),
    init: Optional[str] = typer.Option(None, help="start from this model's generator and encoder (name, NAME@VERSION "
                                       "or .pt path) with a fresh discriminator"),
    seed: int = typer.Option(0),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
) -> None:
    """Train a generator (and encoder) for one image domain.

    Under `torchrun --nproc_per_node N -m invcomp train ...` the N processes train one model with
    DistributedDataParallel (gloo on CPU, NCCL on CUDA); --batch-size is the global batch."""
    import contextlib

    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from invcomp import distributed
    from invcomp.io.collection import load_collection
    from invcomp.io.datasets import resolve_data_path
    from invcomp.models.device import pick_device
    from invcomp.models.nets import NetConfig
    from invcomp.models.train import TrainConfig, Trainer
    from invcomp.models.zoo import resolve_model

    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(net=NetConfig(resolution=resolution, latent_dim=latent, width=width), recipe=recipe,
                      epochs=epochs, batch_size=batch_size, lr=lr, adv_weight=adv_weight, holdout=holdout, seed=seed)
    images, _, _ = load_collection([resolve_data_path(data)], resolution)
    wd = work_dir or Path("runs") / out.stem
    with distributed.session(device) as dev:  # joins torchrun's process group when launched by it
        main = distributed.is_main()
        if main:
            wd.mkdir(parents=True, exist_ok=True)
            out.parent.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(cfg, images, wd, out, pick_device(dev))
        if resume and trainer.checkpoint_path.exists():
            trainer.load_checkpoint()
            if main:
                typer.echo(f"resumed at epoch {trainer.epoch}", err=True)
        elif trainer.checkpoint_path.exists():
            fail(f"{trainer.checkpoint_path} exists: pass --resume to continue or choose another --work-dir")
        elif init:
            start = resolve_model(init)
            trainer.warm_start(start.generator, start.encoder)
            if main:
                typer.echo(f"starting from {init}", err=True)
        bar = (Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
               if main else contextlib.nullcontext())
        with bar:
            task = bar.add_task("train", total=None, epoch=0, info="") if main else None

            def progress(epoch, done, total, stats):
                info = " ".join(f"{k}={v:.3f}" for k, v in stats.items())
                bar.update(task, completed=done, total=total, epoch=epoch + 1, info=info)

            trainer.run(max_minutes=minutes, progress=progress if main else None)
    if main:
        world = f" on {trainer.world} processes" if trainer.world > 1 else ""
        typer.echo(f"trained {trainer.epoch} epochs{world} in {trainer.elapsed / 60:.1f} min -> {out}")
