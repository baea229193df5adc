"""Command line: ``python -m atari_vec list | actions GAME | demo GAME``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from atari_vec import AtariVectorEnv, list_games
from atari_vec.registration import gym_id


def _list(args: argparse.Namespace) -> None:
    games = list_games()
    width = max(len(g) for g in games)
    for game in games:
        print(f"{game:<{width}}  {gym_id(game)}")
    print(f"{len(games)} games", file=sys.stderr)


def _actions(args: argparse.Namespace) -> None:
    env = AtariVectorEnv(args.game, 1, full_action_space=args.full_action_space)
    try:
        meanings = env.get_action_meanings()
    finally:
        env.close()
    print(f"{env.game}: {len(meanings)} actions")
    for index, name in enumerate(meanings):
        print(f"{index:>3}  {name}")


def _demo(args: argparse.Namespace) -> None:
    if args.seconds <= 0:
        raise ValueError(f"--seconds must be positive, got {args.seconds}")
    env = AtariVectorEnv(
        args.game, args.num_envs, num_threads=args.num_threads, frameskip=args.frameskip
    )
    num_threads = env.num_threads
    try:
        rng = np.random.default_rng(0)
        num_actions = env.single_action_space.n
        env.reset(seed=0)
        # Draw actions up front so the timed loop measures the environment alone.
        actions = rng.integers(0, num_actions, size=(256, env.batch_size), dtype=np.int64)
        steps = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < args.seconds:
            env.step(actions[steps % len(actions)])
            steps += 1
    finally:
        env.close()
    env_steps = steps * env.batch_size
    print(
        f"{env.game}: {args.num_envs} envs, {num_threads} threads, {elapsed:.2f} s, "
        f"{env_steps} env steps"
    )
    print(f"steps/s:  {env_steps / elapsed:,.0f}")
    print(f"frames/s: {env_steps * args.frameskip / elapsed:,.0f}  (frameskip {args.frameskip})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m atari_vec", description="Fast vectorized Atari environments."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list every game: ROM id and Gymnasium id").set_defaults(run=_list)

    actions = sub.add_parser("actions", help="the actions of a game, by index")
    actions.add_argument("game", help='ROM id, e.g. "breakout"')
    actions.add_argument(
        "--full-action-space", action="store_true", help="all 18 actions, not the minimal set"
    )
    actions.set_defaults(run=_actions)

    demo = sub.add_parser("demo", help="step random actions for a while and print the speed")
    demo.add_argument("game", help='ROM id, e.g. "breakout"')
    demo.add_argument("--num-envs", type=int, default=8, help="number of environments")
    demo.add_argument("--num-threads", type=int, default=0, help="worker threads; 0 = auto")
    demo.add_argument("--frameskip", type=int, default=4, help="emulator frames per step")
    demo.add_argument("--seconds", type=float, default=3.0, help="how long to run")
    demo.set_defaults(run=_demo)

    # Its flags are the server's own (python -m atari_vec serve --help lists them).
    sub.add_parser("serve", add_help=False,
                   help="serve a game over OpenEnv's HTTP/WebSocket protocol (extra: [server])")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from .server import main as serve

        return serve(argv[1:], prog="python -m atari_vec serve")
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``python -m atari_vec list | head``): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
