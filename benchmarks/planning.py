"""Planning throughput: stepping many saved states, every peer in one interleaved run.

Peers, for N walkers each taking one step of F emulator frames from its own saved state
(RAM observations, random actions, states chained from step to step as a planner does):

    step_states       atari_vec.AtariVectorEnv.step_states (native, the pool's threads)
    av_plangym        atari_vec.plangym.AtariEnv.step_batch (the drop-in, same calls as plangym)
    plangym           plangym 0.1.32 AtariEnv.step_batch (serial, one process)
    plangym_parallel  plangym 0.1.32 ParallelEnv(n_workers=2) (processes, pickled states)
    plain             atari_vec's own stepping of a 64-env pool at F frames per step (no
                      states): the ceiling planning is measured against

F = 1: frameskip 1 for all. F = 4: plangym's frameskip 2 (it applies frameskip twice: 2 x 2
frames per step, its cheapest way to 4 frames), our pools' frameskip 4. Rounds alternate the
peers' order; the report gives medians and the ratios the issue asks about.

    python benchmarks/planning.py                       # N in 64 256 1024 4096, both games
    python benchmarks/planning.py --quick               # N in 64 1024, Ms. Pac-Man
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import numpy as np

import atari_vec
from atari_vec import plangym as av_plangym

RAW_RAM = dict(obs_type="ram", stack_num=0, raw=True, noop_max=0, use_fire_reset=False,
               maxpool=False, reward_clipping=False)
PLAIN_ENVS = 64


def walker_states(env_states: np.ndarray, n: int) -> list:
    return [env_states[i % len(env_states)] for i in range(n)]


class Peer:
    name = ""

    def setup(self, n: int) -> None: ...

    def step(self, actions: np.ndarray) -> None: ...

    def close(self) -> None: ...


class StepStates(Peer):
    name = "step_states"

    def __init__(self, game, frames):
        self.env = atari_vec.AtariVectorEnv(game, len(os.sched_getaffinity(0)), frameskip=frames, **RAW_RAM)
        self.env.reset(seed=0)

    def setup(self, n):
        # As the plangym peers: walkers start from one state a few random steps into the game.
        rng = np.random.default_rng(n)
        for _ in range(5):
            self.env.step(rng.integers(0, self.env.single_action_space.n, self.env.num_envs))
        self.states = np.repeat(self.env.clone_states(0), n, axis=0)
        self.out = atari_vec.PlanningResult.empty(n, self.env)

    def step(self, actions):
        res = self.env.step_states(self.states, actions, 1, out=self.out)
        self.states, self.out.states = res.states, self.states  # chain: new states in, old out

    def close(self):
        self.env.close()


class PlangymLike(Peer):
    """plangym's API: the real one or ours (same calls)."""

    def __init__(self, name, make_env, frames):
        self.name = name
        self.env = make_env()
        self.env.reset()

    def setup(self, n):
        rng = np.random.default_rng(n)
        for _ in range(5):
            self.env.step(int(rng.integers(0, int(self.env.n_actions))))
        self.states = [self.env.get_state() for _ in range(n)]

    def step(self, actions):
        out = self.env.step_batch(list(actions), self.states, dt=1, return_state=True)
        self.states = out[0]

    def close(self):
        self.env.close()


class Plain(Peer):
    name = "plain"

    def __init__(self, game, frames):
        self.env = atari_vec.AtariVectorEnv(game, PLAIN_ENVS, frameskip=frames, **RAW_RAM)
        self.env.reset(seed=0)
        self.n = PLAIN_ENVS

    def step(self, actions):
        self.env.step(actions[: self.n])

    def close(self):
        self.env.close()


def measure(peer: Peer, n: int, seconds: float, n_actions: int) -> float:
    """Walker-steps per second (plain: env-steps per second)."""
    rng = np.random.default_rng(0)
    width = PLAIN_ENVS if isinstance(peer, Plain) else n
    actions = [rng.integers(0, n_actions, max(width, PLAIN_ENVS)) for _ in range(8)]
    if not isinstance(peer, Plain):
        peer.setup(n)
    peer.step(actions[0])  # warm-up
    steps, start = 0, time.perf_counter()
    while True:
        peer.step(actions[steps % 8][:width] if not isinstance(peer, Plain) else actions[steps % 8])
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps * width / elapsed


def run(games, ns, frames_list, rounds, seconds):
    from plangym.vectorization.parallel import ParallelEnv
    from plangym.videogames.atari import AtariEnv as RealAtariEnv

    rows = []
    for game in games:
        gym_id = "ALE/" + "".join(p.capitalize() for p in game.split("_")) + "-v5"
        for frames in frames_list:
            pg_frameskip = 1 if frames == 1 else 2  # plangym: frameskip ** 2 frames per step
            assert pg_frameskip ** 2 == frames
            peers = [
                StepStates(game, frames),
                PlangymLike("av_plangym", lambda: av_plangym.AtariEnv(
                    gym_id, frameskip=pg_frameskip, obs_type="ram", render_mode=None), frames),
                PlangymLike("plangym", lambda: RealAtariEnv(
                    gym_id, frameskip=pg_frameskip, obs_type="ram", render_mode=None), frames),
                PlangymLike("plangym_parallel", lambda: ParallelEnv(
                    env_class=RealAtariEnv, name=gym_id, frameskip=pg_frameskip, obs_type="ram",
                    n_workers=2, render_mode=None), frames),
                Plain(game, frames),
            ]
            n_actions = peers[0].env.single_action_space.n
            results = {(p.name, n): [] for p in peers for n in ns}
            for r in range(rounds):
                for n in ns:
                    order = peers[:]
                    random.Random(r * 1000 + n).shuffle(order)
                    for p in order:
                        if isinstance(p, Plain) and n != ns[0]:
                            continue  # the ceiling does not depend on N: measured once per round
                        results[(p.name, n)].append(measure(p, n, seconds, n_actions))
            for p in peers:
                p.close()
            plain = statistics.median(results[("plain", ns[0])])
            for n in ns:
                med = {p.name: statistics.median(results[(p.name, n)]) for p in peers
                       if results[(p.name, n)]}
                rows.append((game, frames, n, med, plain))
    return rows


def report(rows) -> str:
    lines = [
        "| game | frames/step | N | step_states walker-steps/s | av_plangym | plangym serial | "
        "plangym ParallelEnv(2) | av_plangym / plangym | av_plangym / ParallelEnv | "
        "step_states / ParallelEnv | step_states frames/s / plain |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for game, frames, n, med, plain in rows:
        ss, av, pg, pp = med["step_states"], med["av_plangym"], med["plangym"], med["plangym_parallel"]
        lines.append(
            f"| {game} | {frames} | {n} | {ss:,.0f} | {av:,.0f} | {pg:,.0f} | {pp:,.0f} | "
            f"{av / pg:.2f} | {av / pp:.2f} | {ss / pp:.2f} | {ss / plain:.2f} |"
        )
    plain_lines = sorted({(g, f, p) for g, f, _, _, p in rows})
    lines.append("")
    lines.append("plain stepping (64 envs, the same frames per step), env-steps/s: " + ", ".join(
        f"{g} F={f}: {p:,.0f} ({p * f:,.0f} frames/s)" for g, f, p in plain_lines))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", nargs="+", default=["ms_pacman", "pong"])
    parser.add_argument("--n", nargs="+", type=int, default=[64, 256, 1024, 4096])
    parser.add_argument("--frames", nargs="+", type=int, default=[1, 4], choices=[1, 4])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.games, args.n, args.rounds, args.seconds = ["ms_pacman"], [64, 1024], 2, 1.0
    print(f"atari_vec {atari_vec.__version__}, {len(os.sched_getaffinity(0))} CPUs, "
          f"{args.rounds} interleaved rounds of {args.seconds} s per peer")
    print(report(run(args.games, args.n, args.frames, args.rounds, args.seconds)))


if __name__ == "__main__":
    main()
