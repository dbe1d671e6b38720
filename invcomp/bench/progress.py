"""How a bench reports progress: per stage, a context manager whose `advance(k)` counts k more items.

A bench calls `progress(label, total)` at the start of each stage and `advance(k)` as work
is done. The command line passes `invcomp.cli.common.ProgressBar` (a bar with rate and ETA);
library callers pass nothing (`silent`) or their own factory.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol


class Counter(Protocol):
    def advance(self, k: int = 1) -> None: ...


Stages = Callable[[str, int], AbstractContextManager[Counter]]


class _Silent:
    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def advance(self, k: int = 1) -> None:
        return None


def silent(label: str, total: int) -> _Silent:
    """A stage that reports nothing."""
    return _Silent()
