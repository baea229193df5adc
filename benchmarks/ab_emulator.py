"""Bare-emulator A/B of two atari_vec builds: the installed one ("with") against another
installed with ``pip install --target DIR`` ("without"), one thread, in fresh processes,
alternating the order every round; prints the median of the per-round ratios.

How to measure one ALE patch: move it out of cmake/patches/speed, ``pip install
--no-build-isolation --target /tmp/without .``, move it back, ``pip install
--no-build-isolation .``, then:

    python benchmarks/ab_emulator.py --without /tmp/without --games breakout pong seaquest
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = """
import json, sys
from ale_py import roms
from atari_vec._bench import emulator_limit
done, seconds = emulator_limit(str(roms.get_rom_path(sys.argv[1])), 1, 1, int(sys.argv[2]))
print(json.dumps(done / seconds))
"""

FRAMES = {"pong": 60000}  # about 2 s each on this machine; others 45,000


def frames_per_second(path: str | None, game: str, frames: int) -> float:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path
    out = subprocess.run([sys.executable, "-c", PROBE, game, str(frames)], capture_output=True,
                         text=True, env=env, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--without", required=True, help="a directory holding the other build (pip --target)")
    p.add_argument("--games", nargs="+", default=["breakout", "pong", "ms_pacman", "seaquest"])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    builds = {"with": None, "without": args.without}
    results = {g: {b: [] for b in builds} for g in args.games}
    for r in range(args.rounds):
        for g in args.games:
            for b in (list(builds) if r % 2 == 0 else list(builds)[::-1]):
                results[g][b].append(frames_per_second(builds[b], g, FRAMES.get(g, 45000)))
    print(f"bare emulator, one thread, {args.rounds} alternating rounds, fresh processes")
    print(f"{'game':<12} {'with fps':>10} {'without fps':>12} {'with/without':>13} {'range':>13}")
    for g in args.games:
        ratios = [a / b for a, b in zip(results[g]["with"], results[g]["without"])]
        print(f"{g:<12} {statistics.median(results[g]['with']):>10,.0f} "
              f"{statistics.median(results[g]['without']):>12,.0f} {statistics.median(ratios):>13.3f} "
              f"{min(ratios):>6.3f}-{max(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
