"""The fuzzers' shared harness (scripts/fuzz.py, scripts/fuzz_archive.py): the format-blind mutations, the
loop that runs mutated inputs through a decoder with a time limit, and the merging of sharded summaries."""
from __future__ import annotations

import collections
import random
import re
import resource
import signal
import sys
import time
import traceback

import torch

from invcomp.errors import InvcompError
from invcomp.models.nets import Generator, NetConfig, init_weights
from invcomp.models.weights import weights_bytes
from invcomp.models.zoo import Model


def tiny_model(seed: int, latent: int) -> Model:
    """A seeded generator of width 8: the bitstream path of the pretrained models at a fraction of the cost."""
    cfg = NetConfig(resolution=32, latent_dim=latent, width=8)
    torch.manual_seed(seed)
    g = Generator(cfg)
    init_weights(g)
    return Model.from_bytes(f"fuzz{latent}", weights_bytes("generator", g.eval(), cfg))


def bitflip(d, corpus, rnd):
    for _ in range(rnd.choice([1, 1, 1, 2, 3, 8])):
        i = rnd.randrange(len(d) * 8)
        d[i // 8] ^= 1 << (i % 8)
    return bytes(d)


def byte_set(d, corpus, rnd):
    for _ in range(rnd.choice([1, 1, 2, 4])):
        d[rnd.randrange(len(d))] = rnd.choice([0, 0xFF, 0x7F, 0x80, 0x01, rnd.randrange(256)])
    return bytes(d)


def truncate(d, corpus, rnd):
    return bytes(d[: rnd.randrange(len(d))])


def extend(d, corpus, rnd):
    return bytes(d) + bytes(rnd.randrange(256) for _ in range(rnd.choice([1, 1, 2, 7, 100, 5000])))


def insert_delete(d, corpus, rnd):
    i = rnd.randrange(len(d))
    if rnd.random() < 0.5:
        return bytes(d[:i] + bytes([rnd.randrange(256)]) * rnd.randint(1, 4) + d[i:])
    return bytes(d[:i] + d[i + rnd.randint(1, 4) :])


def splice(d, corpus, rnd):
    other = rnd.choice(corpus)
    return bytes(d[: rnd.randrange(len(d) + 1)]) + other[rnd.randrange(len(other) + 1) :]


GENERIC_MUTATORS = [bitflip, bitflip, byte_set, truncate, extend, insert_delete, splice]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def fuzz_loop(n: int, rnd: random.Random, timeout: float, progress: bool, fmt: str, draw, mutators: list,
              extra: dict) -> dict:
    """Run n mutated inputs; `draw()` gives (a seed file, its corpus, the decoder that takes its mutations),
    which must return or raise InvcompError: anything else, or taking longer than `timeout`, is a finding."""
    outcomes = collections.Counter()
    by_mutator: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    messages = collections.Counter()
    findings = []
    slowest = 0.0
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        signal.signal(signal.SIGALRM, _alarm)
    t0 = time.perf_counter()
    for i in range(n):
        seed_file, corpus, target = draw()
        kind = rnd.choice(mutators)
        name, data = kind.__name__.lstrip("_"), kind(bytearray(seed_file), corpus, rnd)
        t = time.perf_counter()
        try:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, timeout)
            target(data)
            outcome = "decoded"
        except InvcompError as e:
            outcome = "refused"
            messages[re.sub(r"\d+", "N", re.sub(r"^\S*: ", "", str(e)).split("(")[0].strip())] += 1
        except _Timeout:
            outcome = "finding"
            findings.append({"mutator": name, "input": data.hex(), "error": f"took more than {timeout} s"})
        except Exception as e:  # noqa: BLE001 - any other exception is what we are looking for
            outcome = "finding"
            findings.append({"mutator": name, "input": data.hex()[:20000], "error": f"{type(e).__name__}: {e}",
                             "where": traceback.format_exc().strip().splitlines()[-3].strip()})
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, time.perf_counter() - t)
        outcomes[outcome] += 1
        by_mutator[name][outcome] += 1
        if progress and (i + 1) % 5000 == 0:
            print(f"{i + 1}/{n} inputs, {dict(outcomes)}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return {
        "format": fmt, "inputs": n, "seconds": round(time.perf_counter() - t0, 1),
        "outcomes": dict(outcomes), "findings_count": len(findings), "findings": findings[:50],
        "by_mutator": {k: dict(v) for k, v in sorted(by_mutator.items())},
        "refusal_messages": dict(messages.most_common(40)), **extra,
        "slowest_input_seconds": round(slowest, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__,
    }


def combine(parts: list[dict]) -> dict:
    """One summary from several runs with different seeds (shards run in parallel)."""
    def add(key):
        out = collections.Counter()
        for p in parts:
            out.update(p[key])
        return dict(out)

    mutators = sorted({m for p in parts for m in p["by_mutator"]})
    return {
        "format": parts[0]["format"], "inputs": sum(p["inputs"] for p in parts), "shards": len(parts),
        "seeds": [p["seed"] for p in parts], "seconds": max(p["seconds"] for p in parts),
        "outcomes": add("outcomes"), "findings_count": sum(p["findings_count"] for p in parts),
        "findings": [f for p in parts for f in p["findings"]][:50],
        "by_mutator": {m: dict(sum((collections.Counter(p["by_mutator"].get(m, {})) for p in parts), collections.Counter()))
                       for m in mutators},
        "refusal_messages": dict(collections.Counter(add("refusal_messages")).most_common(40)),
        "seed_files": parts[0]["seed_files"], "models": parts[0]["models"],
        "slowest_input_seconds": max(p["slowest_input_seconds"] for p in parts),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in parts), "torch": parts[0]["torch"],
    }
