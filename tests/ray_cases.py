"""Ray checks, run by tests/test_ray.py in Ray's own virtual environment and in a network
namespace of their own (only loopback up): ``python tests/ray_cases.py <case>``. Each case
starts and stops its own cluster, asserts, and prints one JSON line of what it measured.
Not collected by pytest (it needs ray, which the main environment does not have)."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import ray
from ray.cluster_utils import Cluster

from atari_vec import AtariVectorEnv
from atari_vec.ray import ActorDiedError, RayVectorEnv


def two_node_cluster() -> tuple[Cluster, object]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"head": 1}})
    worker = cluster.add_node(num_cpus=1, resources={"worker": 1})
    cluster.wait_for_nodes(timeout=60)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    return cluster, worker


def local_run(seed: int, actions: np.ndarray, **kw):
    env = AtariVectorEnv("breakout", 4, **kw)
    try:
        out = [env.reset(seed=seed)]
        out += [env.step(a) for a in actions]
        return out
    finally:
        env.close()


def same(a, b, where: str) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), where)


def case_cluster() -> dict:
    """One actor per node (two node ids); bit-exact with a local pool; a killed actor raises a
    clear error in time; restart_actors replaces it."""
    cluster, worker = two_node_cluster()
    try:
        kw = {"noop_max": 30, "repeat_action_probability": 0.25}
        env = RayVectorEnv("breakout", 4, num_actors=2, placement_strategy="STRICT_SPREAD",
                           call_timeout=60, **kw)
        assert len(set(env.node_ids)) == 2, env.node_ids
        assert worker.node_id in env.node_ids
        actions = np.random.default_rng(0).integers(0, 4, size=(300, 4))
        ref = local_run(7, actions, **kw)
        obs, info = env.reset(seed=7)
        same(obs, ref[0][0], "reset obs")
        same(info["env_id"], ref[0][1]["env_id"], "reset env ids")
        ended = 0
        for t, a in enumerate(actions):
            got = env.step(a)
            for i, name in enumerate(("obs", "reward", "terminated", "truncated")):
                same(got[i], ref[t + 1][i], f"{name} at step {t}")
            for key in ("lives", "frame_number", "episode_frame_number", "env_id"):
                same(got[4][key], ref[t + 1][4][key], f"info[{key}] at step {t}")
            ended += int(got[2].sum())
        assert ended > 0, "no episode ended: the check would not see autoreset"

        # A rollout inside the actors equals stepping a local pool with the same policy.
        def policy(obs):  # deterministic: picklable, runs in each actor
            return (obs.reshape(len(obs), -1)[:, ::97].sum(axis=1) % 4).astype(np.int64)

        local = AtariVectorEnv("breakout", 4, **kw)
        lobs, _ = local.reset(seed=11)
        env.reset(seed=11)
        roll = env.rollout(50, policy)
        for t in range(50):
            lobs, lrew, lterm, ltrunc, _ = local.step(policy(lobs))
            same(roll["obs"][t], lobs, f"rollout obs at {t}")
            same(roll["rewards"][t], lrew, f"rollout reward at {t}")
            same(roll["terminated"][t], lterm, f"rollout terminated at {t}")
        local.close()

        # Kill actor 1 mid-run: a clear error, in time.
        ray.kill(env.actors[1])
        start = time.monotonic()
        try:
            env.step(np.zeros(4, np.int64))
            raise AssertionError("stepping a dead actor did not raise")
        except ActorDiedError as e:
            message = str(e)
        waited = time.monotonic() - start
        assert "actor 1" in message and "envs 2..3" in message, message
        assert waited < 60, waited
        env.close()

        # restart_actors: the dead actor is replaced; its envs report truncated, reset.
        env = RayVectorEnv("breakout", 4, num_actors=2, restart_actors=True, call_timeout=60)
        env.reset(seed=1)
        ray.kill(env.actors[0])
        obs, rew, term, trunc, info = env.step(np.zeros(4, np.int64))
        same(info["actor_restarted"], [True, True, False, False], "restarted mask")
        same(trunc[:2], [True, True], "truncated for the restarted envs")
        assert obs.shape == (4, 4, 84, 84)
        env.step(np.zeros(4, np.int64))
        env.close()
        return {"nodes": len(set(env.node_ids)), "episodes_ended": ended,
                "dead_actor_error_s": round(waited, 3)}
    finally:
        ray.shutdown()
        cluster.shutdown()


def case_rllib() -> dict:
    """RLlib's SingleAgentEnvRunner on our vector entry point, locally and as a remote actor,
    samples what it is asked; one PPO iteration reports our native episode return."""
    import gymnasium as gym
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from atari_vec.adapters import rllib as adapter

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # Short episodes (truncated at 200 frames) so that episodes end within the samples.
        kw = {"max_num_frames_per_episode": 200}
        config = adapter.ppo_config("breakout", num_envs_per_env_runner=4, num_env_runners=0,
                                    **kw)
        config.training(train_batch_size_per_learner=256, minibatch_size=64, num_epochs=1)
        runner = SingleAgentEnvRunner(config=config)
        assert runner.env.num_envs == 4
        assert runner.env.unwrapped.single_observation_space.shape == (84, 84, 4)
        episodes = runner.sample(num_timesteps=200, random_actions=True)
        local_steps = sum(len(e) for e in episodes)
        assert local_steps >= 200, local_steps
        remote = ray.remote(num_cpus=1)(SingleAgentEnvRunner).remote(config=config)
        episodes = ray.get(remote.sample.remote(num_timesteps=120, random_actions=True), timeout=300)
        remote_steps = sum(len(e) for e in episodes)
        assert remote_steps >= 120, remote_steps
        ray.kill(remote)
        # Wrong settings are refused before RLlib could mishandle them.
        for bad in ({"autoreset_mode": "SAME_STEP"}, {"batch_size": 2}):
            try:
                adapter.ppo_config("breakout", **bad)
                raise AssertionError(f"{bad} was accepted")
            except ValueError:
                pass
        algo = config.build_algo()
        result = algo.train()
        algo.stop()
        runners = result["env_runners"]
        assert "atari_vec_episode_return" in runners, sorted(runners)
        assert runners["num_env_steps_sampled"] >= 256
        assert gym is not None
        return {"local_steps": local_steps, "remote_steps": remote_steps,
                "native_return": float(runners["atari_vec_episode_return"]),
                "rllib_return": runners.get("episode_return_mean")}
    finally:
        ray.shutdown()


def case_torchrl() -> dict:
    """The README's TorchRL RayCollector snippet, run as written: its batches arrive."""
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"^```py\n(.*?)^```", readme, flags=re.S | re.M)
                 if "RayCollector" in b)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md (RayCollector)", "exec"), {})
    finally:
        ray.shutdown()
    shapes = [line for line in out.getvalue().splitlines() if line.startswith("torch.Size")]
    assert len(shapes) == 4, out.getvalue()
    frames = [int(np.prod(eval(line[len("torch.Size"):])))  # noqa: S307 - our own output
              for line in shapes]
    assert all(f == 256 for f in frames), shapes
    return {"batches": len(shapes), "frames_per_batch": frames[0]}


CASES = {"cluster": case_cluster, "rllib": case_rllib, "torchrl": case_torchrl}

if __name__ == "__main__":
    print(json.dumps(CASES[sys.argv[1]]()))
