"""The `invcomp` command line: one typer app, its commands registered from their modules.

Every command module only parses options, calls the library and prints; heavy imports
(torch, numpy, matplotlib) happen inside the commands that need them.
"""
from __future__ import annotations

import sys

import typer

from invcomp.cli import archive, bench, codec, data, train
from invcomp.cli.common import short_help

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Generative image compression by GAN latent inversion.")


@app.callback()
def _root() -> None:
    """Generative image compression by GAN latent inversion."""


for command in (codec.fit, codec.decode, codec.info, codec.trim, codec.models, archive.pack, archive.unpack, archive.ls,
                archive.verify, archive.add, archive.merge, bench.bench, bench.evaluate, bench.ablate, train.train):
    app.command(name=command.__name__, short_help=short_help(command))(command)
app.add_typer(data.app, name="data")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("invcomp: interrupted", err=True)
        sys.exit(130)
