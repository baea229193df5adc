#!/usr/bin/env python3
"""Soak test: async stepping for a long time while watching the process's resident memory.

Prints RSS over time and exits with status 1 if, after a warm-up, RSS grew by more than the
tolerance: a leak per step or per batch shows up as steady growth. Some results are held
for a few batches (as a training loop's replay does), so the output-array renewal path
runs too.

    python scripts/soak.py --steps 2000000 --num-envs 16 --batch-size 8 --game pong

The pytest suite calls soak() with a short run (tests/test_reliability.py).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import numpy as np


def rss_mb() -> float:
    """Resident set size of this process, in MiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def soak(
    steps: int,
    num_envs: int,
    batch_size: int,
    game: str = "pong",
    num_threads: int = 0,
    frameskip: int = 4,
    hold: int = 3,
    samples: int = 20,
    warmup: float = 0.2,
    seed: int = 0,
    log=print,
) -> list[tuple[int, float]]:
    """Runs `steps` recv() calls of async stepping; returns [(step, rss_mb)] samples.

    The first sample is taken after `warmup` (a fraction of steps): allocator pools, NumPy
    caches and the output arrays have reached their steady size by then.
    """
    from atari_vec import AtariVectorEnv  # imported here so --help works without a build

    env = AtariVectorEnv(
        game, num_envs, batch_size=batch_size, num_threads=num_threads, frameskip=frameskip
    )
    rng = np.random.default_rng(seed)
    held: collections.deque = collections.deque(maxlen=hold)
    n_actions = env.single_action_space.n
    first = int(steps * warmup)
    every = max(1, (steps - first) // max(1, samples - 1))
    out: list[tuple[int, float]] = []
    start = time.monotonic()
    try:
        env.reset(seed=seed)
        for i in range(steps + 1):
            if i >= first and (i - first) % every == 0:
                out.append((i, rss_mb()))
                log(f"step {i:>9}  rss {out[-1][1]:8.1f} MiB  {time.monotonic() - start:7.1f} s")
            if i == steps:
                break
            env.send(rng.integers(0, n_actions, size=env.batch_size))
            result = env.recv()
            if hold:
                held.append(result)  # keeps these arrays alive: the next ones must be fresh
    finally:
        env.close()
    return out


def growth(samples: list[tuple[int, float]]) -> float:
    """RSS growth in MiB from the first sample to the largest of the last three."""
    return max(r for _, r in samples[-3:]) - samples[0][1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=200_000, help="recv() calls")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--game", default="pong")
    p.add_argument("--num-threads", type=int, default=0)
    p.add_argument("--frameskip", type=int, default=4)
    p.add_argument("--hold", type=int, default=3, help="results kept alive at any time")
    p.add_argument("--samples", type=int, default=20, help="RSS samples after warm-up")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of steps before sampling")
    p.add_argument("--tolerance-mb", type=float, default=16.0, help="allowed RSS growth")
    args = p.parse_args(argv)
    samples = soak(
        args.steps,
        args.num_envs,
        args.batch_size,
        args.game,
        args.num_threads,
        args.frameskip,
        args.hold,
        args.samples,
        args.warmup,
    )
    grew = growth(samples)
    print(f"RSS after warm-up {samples[0][1]:.1f} MiB, at the end {samples[-1][1]:.1f} MiB, "
          f"growth {grew:+.1f} MiB (tolerance {args.tolerance_mb} MiB)")
    if grew > args.tolerance_mb:
        print("FAIL: resident memory kept growing", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
