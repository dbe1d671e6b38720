"""Process groups for `torchrun`: joining the group a launcher describes, rank and world size,
barriers and small collectives with timeouts, and a shared board for work that does not move in
lockstep.

`torchrun --nproc_per_node N -m invcomp CMD ...` starts N copies of a command with RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in their environment; `session(device)`
joins that group (gloo on CPU, NCCL on CUDA with one device per local rank) and leaves it
afterwards. Without those variables everything here is a no-op with rank 0 of 1, so library code
asks `rank()`/`world_size()` without caring how it was started.

Every wait has a timeout (`INVCOMP_DIST_TIMEOUT` seconds, default 1800): a rank that dies or
stalls ends the others with an error instead of a hang. `torch.distributed` is imported inside
the functions, so importing this module costs nothing.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from invcomp.errors import InvcompError

TIMEOUT_ENV = "INVCOMP_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 1800.0
POLL_SECONDS = 0.1


_STORE = None  # the process group's key-value store, while joined (init)

def launched() -> bool:
    """Whether a launcher (torchrun, or srun running torchrun) started this process as a rank."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    """Whether this process has joined a process group."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    if not active():
        return 0
    import torch.distributed as dist

    return dist.get_rank()


def world_size() -> int:
    if not active():
        return 1
    import torch.distributed as dist

    return dist.get_world_size()


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def timeout_seconds() -> float:
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise InvcompError(f"{TIMEOUT_ENV} must be a positive number of seconds, not {text!r}")
    return value


def init(device: str = "auto") -> str:
    """Join the process group described by the environment (torchrun's); the device this rank
    uses: 'cpu' (gloo), or 'cuda:LOCAL_RANK' (NCCL) when CUDA is asked for or 'auto' finds it."""
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise InvcompError("this torch has no torch.distributed: run without torchrun")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvcompError("--device cuda: no CUDA device is available")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise InvcompError(f"unknown device {device!r} (auto, cpu or cuda)")
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        if local_rank() >= torch.cuda.device_count():
            raise InvcompError(f"local rank {local_rank()} has no CUDA device ({torch.cuda.device_count()} here): "
                               "start at most one process per device (--nproc_per_node)")
        torch.cuda.set_device(local_rank())
    global _STORE
    try:
        # the key-value store made here with the public API (torchrun's agent already serves one at
        # MASTER_ADDR:MASTER_PORT; without it rank 0 serves it), so that Board can use it too
        limit = timedelta(seconds=timeout_seconds())
        me, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        serve = me == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), size, serve, limit)
        store = dist.PrefixStore(f"attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
        dist.init_process_group("nccl" if cuda else "gloo", store=store, rank=me, world_size=size, timeout=limit)
        _STORE = store
    except KeyError as e:
        raise InvcompError(f"cannot join the torchrun process group: {e.args[0]} is not set") from None
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvcompError(f"cannot join the torchrun process group: {first}") from None
    return f"cuda:{local_rank()}" if cuda else "cpu"


def cleanup() -> None:
    """Leave the process group (if joined)."""
    global _STORE
    if active():
        import torch.distributed as dist

        dist.destroy_process_group()
    _STORE = None


@contextmanager
def session(device: str = "auto") -> Iterator[str]:
    """Inside torchrun: join the group for the block and leave it afterwards, yielding this rank's
    device. Elsewhere: yield `device` unchanged."""
    if not launched() or active():
        yield device
        return
    dev = init(device)
    try:
        yield dev
    finally:
        cleanup()


def _backend_device() -> str:
    import torch.distributed as dist

    return f"cuda:{local_rank()}" if dist.get_backend() == "nccl" else "cpu"


def barrier() -> None:
    """Wait for every rank, at most the timeout; a rank that does not arrive is an error."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=timeout_seconds()), wait_all_ranks=True)
        else:
            dist.barrier(device_ids=[local_rank()])
    except RuntimeError as e:
        raise InvcompError(f"ranks did not meet within {timeout_seconds():.0f} s ({TIMEOUT_ENV}): "
                           f"{str(e).strip().splitlines()[0] if str(e).strip() else 'timeout'}") from None


def sum_over_ranks(values: list[float]) -> list[float]:
    """The element-wise sum of `values` over all ranks (every rank gets it)."""
    if world_size() == 1:
        return list(values)
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=_backend_device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def from_main(value: int) -> int:
    """Rank 0's `value`, on every rank (so that all ranks take the same branch)."""
    if world_size() == 1:
        return int(value)
    import torch
    import torch.distributed as dist

    t = torch.tensor([int(value)], device=_backend_device())
    dist.broadcast(t, 0)
    return int(t.item())


class Board:
    """Counters and a first error that every rank sees at once, kept in the process group's
    key-value store (the TCPStore torchrun sets up): for work whose ranks do not move in lockstep,
    e.g. packing shards of different sizes. Outside a group it is local to this process."""

    def __init__(self, name: str):
        self._prefix = f"invcomp/{name}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
        self._local: dict[str, int] = {}
        self._error: str | None = None
        self._store = None
        if active():
            self._store = _STORE

    def add(self, key: str, k: int = 1) -> int:
        """Add k to a counter; its new value."""
        if self._store is None:
            self._local[key] = self._local.get(key, 0) + k
            return self._local[key]
        return int(self._store.add(self._prefix + key, k))

    def get(self, key: str) -> int:
        return self.add(key, 0)

    def fail(self, message: str) -> None:
        """Post this rank's error (the first one posted is the one every rank reports)."""
        text = f"rank {rank()}: {message}"
        if self._store is None:
            self._error = self._error or text
        elif not self._store.check([self._prefix + "error"]):
            self._store.set(self._prefix + "error", text)

    def error(self) -> str | None:
        if self._store is None:
            return self._error
        if not self._store.check([self._prefix + "error"]):
            return None
        return self._store.get(self._prefix + "error").decode("utf-8", "replace")

    def raise_if_failed(self) -> None:
        err = self.error()
        if err is not None:
            raise InvcompError(f"stopped because {err}")

    def wait(self, key: str, value: int, alive: Callable[[], int] = lambda: 0, what: str = "the other ranks") -> None:
        """Wait until counter `key` reaches `value`, stopping with an error when a rank posts one
        or when neither `key` nor `alive()` (a progress count) changes for the timeout."""
        limit = timeout_seconds()
        last, since = None, time.monotonic()
        while True:
            self.raise_if_failed()
            now = (self.get(key), alive())
            if now[0] >= value:
                return
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since > limit:
                raise InvcompError(f"waited {limit:.0f} s for {what} without progress ({TIMEOUT_ENV} sets the limit)")
            time.sleep(POLL_SECONDS)
