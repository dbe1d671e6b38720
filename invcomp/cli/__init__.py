"""The command line (`invcomp ...`): parsing options, calling the library, printing results.

`app` builds the typer application from the command modules (`codec`: fit, decode, info,
models; `archive`: pack, unpack, ls, verify, add, merge; `bench`: bench, evaluate, ablate;
`train`); `common` holds what they share (errors, progress bars, paths). The top layer:
it may import any part of invcomp, and nothing in invcomp imports it.
"""
from invcomp.cli.app import app, main

__all__ = ["app", "main"]
