"""Where the gap between synchronous stepping and the bare-emulator limit goes.

Four measurements of the same game, num_envs and threads, in fresh processes, in an order
that rotates every round:

    ale        the limit of benchmarks/throughput.py: bare ALE act(), random actions, native
               threads, no preprocessing, no barrier between steps
    env_ram    the same native loop driving atari_vec's AtariEnv observing the RAM (no-op and
               fire reset, reward clipping, frameskip 4): the env's own bookkeeping
    env_gray   the same with the benchmark's observation (max-pooled 84x84 grayscale, stack
               of 4): what a step's preprocessing adds
    pool       AtariVectorEnv, synchronous, the settings of benchmarks/throughput.py (threads - 1
               workers plus the calling thread): what the pool (a barrier per step, the
               result blocks, Python) adds

It prints each one's median steps/s and the medians of the per-round ratios to ``ale``.

    python benchmarks/limit_split.py --games pong breakout --num-envs 16 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from throughput import FRAMESKIP, STICKY, Setup, time_limit
from throughput import measure as measure_peer

KINDS = ("ale", "env_ram", "env_gray", "pool")
_CHILD = "--child"


def child(kind: str, game: str, num_envs: int, threads: int, seconds: float, seed: int) -> None:
    """Runs in the subprocess: one measurement, printed as a JSON line of steps/s."""
    if kind == "pool":
        # The thread waiting in step() runs env steps too: threads - 1 workers keep `threads`
        # threads busy, as the pool's own default does (min(num_envs, CPUs) - 1 workers).
        steps, elapsed = measure_peer(
            Setup("atari_vec", game, num_envs, num_envs, max(1, threads - 1)), seconds, seed, {})
    else:
        steps, elapsed = time_limit(Setup("limit", game, num_envs, num_envs, threads), seconds,
                                    seed, {}, through=kind)
    print(json.dumps({"steps_per_s": steps / elapsed}))


def measure(kind: str, game: str, args: argparse.Namespace, seed: int) -> float:
    cmd = [sys.executable, os.path.abspath(__file__), _CHILD, kind, game, str(args.num_envs),
           str(args.threads), str(args.seconds), str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--games", nargs="+", default=["pong", "breakout"])
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--threads", type=int, default=2,
                   help="native threads (the pool: this many minus one workers, plus the caller)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    if args.num_envs < 1 or args.threads < 1 or args.rounds < 1 or args.seconds <= 0:
        p.error("--num-envs, --threads and --rounds must be positive, --seconds above 0")
    print(f"{args.num_envs} envs, {args.threads} threads, {args.rounds} rounds of "
          f"{args.seconds} s, fresh processes, order rotating per round "
          f"(frameskip {FRAMESKIP}, sticky {STICKY})\n")
    print("| game | what | steps/s (median) | / ale (median of rounds) | per round |")
    print("|---|---|---|---|---|")
    for game in args.games:
        runs: dict[str, list[float]] = {k: [] for k in KINDS}
        for r in range(args.rounds):
            order = KINDS[r % len(KINDS):] + KINDS[:r % len(KINDS)]
            for kind in order:
                runs[kind].append(measure(kind, game, args, seed=r))
        for kind in KINDS:
            ratios = [x / a for x, a in zip(runs[kind], runs["ale"])]
            print(f"| {game} | {kind} | {statistics.median(runs[kind]):,.0f} | "
                  f"{statistics.median(ratios):.3f} | {' '.join(f'{x:.3f}' for x in ratios)} |",
                  flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == _CHILD:
        kind, game, n, t, secs, seed = sys.argv[2:8]
        child(kind, game, int(n), int(t), float(secs), int(seed))
    else:
        main()
