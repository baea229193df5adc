"""Ray overhead on one node: a local AtariVectorEnv against RayVectorEnv (one actor holding the
same pool), stepped per call and with rollout calls, interleaved by round; also the cost of
one Ray call and the bytes a step moves. Numbers for docs/scaling.md.

Run it in Ray's environment, in a network namespace (Ray binds the machine's address):
    unshare -n bash -c 'ip link set lo up && RAY_AUTH_MODE=disabled \\
        ~/.cache/atari_vec/ray-2.60.0-venv/bin/python benchmarks/ray_scaling.py'
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import ray

from atari_vec import AtariVectorEnv
from atari_vec.ray import RayVectorEnv


def step_fps(env, seconds: float, rng: np.random.Generator) -> float:
    """Frames/s of `env` (a local pool or a RayVectorEnv) stepped one call per step."""
    n = env.num_envs
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(0, env.single_action_space.n, size=n))
        steps += 1
    return steps * n * 4 / (time.perf_counter() - start)


def ray_rollout_fps(env: RayVectorEnv, seconds: float, length: int) -> float:
    n = env.num_envs
    frames = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.rollout(length)
        frames += length * n * 4
    return frames / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--game", default="breakout")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rollout", type=int, default=128, help="steps per rollout call")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()

    ray.init(num_cpus=args.threads, include_dashboard=False, log_to_driver=False)
    local = AtariVectorEnv(args.game, args.num_envs, num_threads=args.threads)
    remote = RayVectorEnv(args.game, args.num_envs, num_actors=1, num_cpus_per_actor=args.threads)
    local.reset(seed=0)
    remote.reset(seed=0)
    rng = np.random.default_rng(0)
    actor = remote.actors[0]
    calls = []
    for _ in range(200):
        t = time.perf_counter()
        ray.get(actor.describe.remote())
        calls.append(time.perf_counter() - t)
    results: dict[str, list[float]] = {"local": [], "ray_step": [], "ray_rollout": []}
    for r in range(args.rounds):
        order = list(results)
        np.random.default_rng(r).shuffle(order)
        for name in order:
            if name == "local":
                results[name].append(step_fps(local, args.seconds, rng))
            elif name == "ray_step":
                results[name].append(step_fps(remote, args.seconds, rng))
            else:
                results[name].append(ray_rollout_fps(remote, args.seconds, args.rollout))
    obs_bytes = int(np.prod(local.single_observation_space.shape))
    print(f"game {args.game}, {args.num_envs} envs, {args.threads} threads, "
          f"{args.rounds} rounds of {args.seconds:g} s, rollout calls of {args.rollout} steps")
    print(f"one Ray call (actor method, no work): median {statistics.median(calls) * 1e3:.2f} ms, "
          f"p90 {sorted(calls)[int(0.9 * len(calls))] * 1e3:.2f} ms")
    print(f"bytes per env step: {obs_bytes} (observation) + ~20 (reward, flags, info)")
    base = statistics.median(results["local"])
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:12s} frames/s median {med:10,.0f}  (min {min(values):,.0f}, "
              f"max {max(values):,.0f})  ratio to local {med / base:.3f}")
    paired = [b / a for a, b in zip(results["local"], results["ray_rollout"])]
    print(f"rollout / local, median of per-round ratios: {statistics.median(paired):.3f}")
    local.close()
    remote.close()
    ray.shutdown()


if __name__ == "__main__":
    main()
