"""Bare-emulator speed: our ALE build (patched, built by this project) against stock ALE 0.12.1
(ale-py's own wheel), one thread, frames per second.

Both play random actions of the game's minimal set, each held for 4 frames (ALE's act() with
frame_skip 4 for stock, act() four times for ours: the same frames emulated), without sticky
actions, resetting at game over. Rounds interleave the two in an order that alternates; the
median of the per-round ratios (ours / stock) is reported per game, with the medians of each.

Usage:
    python benchmarks/emulator.py                                   # 4 games, 7 rounds of 2 s
    python benchmarks/emulator.py --games breakout pong --rounds 9 --seconds 3 --out F.txt
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FRAMESKIP = 4


def rom(game: str) -> str:
    from ale_py import roms

    return str(roms.get_rom_path(game))


def ours(game: str, seconds: float, rate: float) -> float:
    """frames/s of our build's ALEInterface (atari_vec._bench.emulator_limit, one env)."""
    from atari_vec._bench import emulator_limit

    frames = max(FRAMESKIP, int(rate * seconds) // FRAMESKIP * FRAMESKIP)
    done, elapsed = emulator_limit(rom(game), 1, 1, frames)
    return done / elapsed


def stock(game: str, seconds: float, rate: float) -> float:
    """frames/s of ale-py's ALEInterface, stepped from Python four frames per call."""
    from ale_py import ALEInterface, LoggerMode

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", 0)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("frame_skip", FRAMESKIP)
    ale.loadROM(rom(game))
    actions = ale.getMinimalActionSet()
    calls = max(1, int(rate * seconds) // FRAMESKIP)
    picks = np.random.default_rng(0).integers(0, len(actions), calls)
    start = time.perf_counter()
    for i in range(calls):
        ale.act(actions[picks[i]])
        if ale.game_over():
            ale.reset_game()
    return calls * FRAMESKIP / (time.perf_counter() - start)


def run(games: Sequence[str], rounds: int, seconds: float) -> list[str]:
    lines = [f"bare emulator, one thread, frames/s (median over {rounds} interleaved rounds of "
             f"~{seconds} s; ratio = median of per-round ours/stock)",
             f"{'game':<18}{'ours':>12}{'stock ALE':>12}{'ratio':>8}{'range':>16}"]
    lines.append("-" * len(lines[-1]))
    for game in games:
        rate = stock(game, 0.3, 10_000.0)  # a first guess of the frame rate, for run lengths
        a, b = [], []
        for rnd in range(rounds):
            order = (ours, stock) if rnd % 2 == 0 else (stock, ours)
            got = {f: f(game, seconds, rate) for f in order}
            a.append(got[ours])
            b.append(got[stock])
            print(f"[{game} round {rnd + 1}/{rounds}] ours {a[-1]:,.0f} stock {b[-1]:,.0f} "
                  f"({a[-1] / b[-1]:.3f})", flush=True)
        ratios = [x / y for x, y in zip(a, b, strict=True)]
        lines.append(f"{game:<18}{statistics.median(a):>12,.0f}{statistics.median(b):>12,.0f}"
                     f"{statistics.median(ratios):>8.3f}"
                     f"{f'{min(ratios):.2f}-{max(ratios):.2f}':>16}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--games", nargs="+", default=["breakout", "pong", "ms_pacman", "seaquest"])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--out", type=Path, help="also write the table (and the command) here")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        p.error("--rounds and --seconds must be positive")
    lines = run(args.games, args.rounds, args.seconds)
    print("\n" + "\n".join(lines))
    if args.out:
        command = "python benchmarks/emulator.py " + " ".join(argv if argv is not None
                                                              else sys.argv[1:])
        args.out.write_text(f"$ {command}\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
