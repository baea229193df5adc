"""A/B benchmark: two builds of atari_vec side by side, in one interleaved run.

Performance claims about a change ("stepping does not get slower") compare the code before
and after it. Both builds cannot live in one interpreter, so each measurement runs in a fresh
subprocess that imports atari_vec from the build's own directory. Rounds alternate which build
goes first; the report gives each build's median frames/s and the median of the per-round
ratios (B / A), which is steadier than the ratio of medians on a noisy machine.

Install each build into its own directory first, e.g.:

    git worktree add /tmp/before <commit> && pip install --no-deps --target /tmp/av_before /tmp/before
    pip install --no-deps --target /tmp/av_after .

Then:

    python benchmarks/ab.py --a /tmp/av_before --b /tmp/av_after --games breakout pong

The settings are those of benchmarks/throughput.py (frameskip 4, 84x84 gray, stack 4, up to 30
no-ops, fire reset, reward clipping, random actions), synchronous, or with --batch-size an
async batch. With --emulator each build's bare emulator is timed instead, one thread
(`atari_vec._bench.emulator_limit`, one random action held for 4 frames): how one ALE patch
is measured (install the build without it with --target, then the one with it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from throughput import ALE_KWARGS, FRAMESKIP, WARMUP_STEPS, Setup, random_actions, time_limit

_CHILD = "--child"


def child(game: str, num_envs: int, batch_size: int, seconds: float, seed: int) -> None:
    """Runs in the subprocess: time one build's stepping (num_envs 0: its bare emulator, one
    thread), print a JSON line."""
    import atari_vec

    if num_envs == 0:
        steps, elapsed = time_limit(Setup("limit", game, 1, 1, 1), seconds, seed, {})
        print(json.dumps({"file": atari_vec.__file__, "frames_per_s": steps * FRAMESKIP / elapsed}))
        return

    env = atari_vec.AtariVectorEnv(game, num_envs, batch_size=batch_size, **ALE_KWARGS)
    b = env.batch_size
    actions = random_actions(int(env.single_action_space.n), b, seed)
    env.reset(seed=seed)
    for i in range(WARMUP_STEPS):
        env.send(actions[i % len(actions)])
        env.recv()
    steps = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(16):
            env.send(actions[(steps // b + i) % len(actions)])
            env.recv()
        steps += 16 * b
    env.close()
    print(json.dumps({"file": atari_vec.__file__, "frames_per_s": steps * FRAMESKIP / elapsed}))


def measure(site: str, game: str, args: argparse.Namespace, seed: int) -> float:
    cmd = [sys.executable, __file__, _CHILD, game, str(0 if args.emulator else args.num_envs),
           str(args.batch_size),
           str(args.seconds), str(seed)]
    env = {"PYTHONPATH": site, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["file"].startswith(site):
        raise RuntimeError(f"{site}: imported atari_vec from {result['file']} instead")
    return result["frames_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", required=True, help="directory holding build A (before)")
    p.add_argument("--b", required=True, help="directory holding build B (after)")
    p.add_argument("--games", nargs="+", default=["breakout", "pong"])
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=0, help="0: synchronous")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--emulator", action="store_true", help="time the bare emulator, one thread")
    args = p.parse_args()
    for site in (args.a, args.b):
        if not (Path(site) / "atari_vec").is_dir():
            p.error(f"{site} holds no atari_vec package")
    what = ("bare emulator, one thread" if args.emulator else
            f"{args.num_envs} envs, batch {args.batch_size or 'all'}")
    print(f"A = {args.a}\nB = {args.b}\n{what}, {args.rounds} rounds of {args.seconds} s, "
          "order alternating per round, fresh processes\n")
    print("| game | A frames/s (median) | B frames/s (median) | B / A (median of rounds) | "
          "B / A per round |")
    print("|---|---|---|---|---|")
    for game in args.games:
        a_runs, b_runs, ratios = [], [], []
        for r in range(args.rounds):
            order = [("a", args.a), ("b", args.b)][:: 1 if r % 2 == 0 else -1]
            got = {name: measure(site, game, args, seed=r) for name, site in order}
            a_runs.append(got["a"])
            b_runs.append(got["b"])
            ratios.append(got["b"] / got["a"])
        per_round = " ".join(f"{x:.3f}" for x in ratios)
        print(f"| {game} | {statistics.median(a_runs):,.0f} | {statistics.median(b_runs):,.0f} | "
              f"{statistics.median(ratios):.3f} | {per_round} |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == _CHILD:
        g, n, bs, secs, sd = sys.argv[2:7]
        child(g, int(n), int(bs), float(secs), int(sd))
    else:
        main()
