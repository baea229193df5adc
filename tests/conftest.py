"""Shared test helpers: reference environments and trajectory runners."""

from __future__ import annotations

import faulthandler
import sys

import ale_py
import gymnasium as gym
import numpy as np
import pytest

gym.register_envs(ale_py)
faulthandler.enable(file=sys.stderr, all_threads=True)

# Games whose random-policy episodes are short enough that autoreset is exercised.
GAMES = ["breakout", "pong", "space_invaders", "ms_pacman", "seaquest", "qbert", "boxing"]


def gym_id(game: str) -> str:
    return "ALE/" + "".join(part.capitalize() for part in game.split("_")) + "-v5"


def random_actions(num_steps: int, batch: int, num_actions: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, num_actions, size=(num_steps, batch))


def run(env, actions: np.ndarray, seed: int):
    """Reset with `seed`, apply `actions` (steps x batch); return stacked arrays per field."""
    obs, info = env.reset(seed=seed)
    out = {"obs": [np.array(obs)], "rew": [], "term": [], "trunc": []}
    for a in actions:
        obs, rew, term, trunc, info = env.step(a)
        out["obs"].append(np.array(obs))
        out["rew"].append(np.array(rew, dtype=np.float64))
        out["term"].append(np.array(term))
        out["trunc"].append(np.array(trunc))
    return {k: np.stack(v) for k, v in out.items()}


def assert_same_trajectory(ours: dict, ref: dict) -> None:
    for step in range(len(ref["rew"])):
        np.testing.assert_array_equal(ours["term"][step], ref["term"][step], f"terminated, step {step}")
        np.testing.assert_array_equal(ours["trunc"][step], ref["trunc"][step], f"truncated, step {step}")
        np.testing.assert_array_equal(ours["rew"][step], ref["rew"][step], f"reward, step {step}")
        np.testing.assert_array_equal(ours["obs"][step + 1], ref["obs"][step + 1], f"obs, step {step}")
    np.testing.assert_array_equal(ours["obs"][0], ref["obs"][0], "reset obs")


STEP_FIELDS = ("observation", "reward", "terminated", "truncated")


def lockstep(ours, ref, actions, *, seed: int,
             info_keys=("lives", "episode_frame_number", "frame_number")) -> tuple[int, int]:
    """Reset both envs with `seed`, then step both with each row of `actions`, asserting at
    every step that observations, rewards, flags and the `info_keys` arrays are equal, bit for
    bit. Returns (episodes ended, non-zero rewards) of the run, for the caller to require."""
    assert ours.single_observation_space == ref.single_observation_space
    assert ours.single_action_space == ref.single_action_space
    o1, i1 = ours.reset(seed=seed)
    o2, i2 = ref.reset(seed=seed)
    assert o1.shape == o2.shape and o1.dtype == o2.dtype
    np.testing.assert_array_equal(o1, o2, "reset observation")
    for key in info_keys:
        np.testing.assert_array_equal(i1[key], i2[key], f"reset info[{key!r}]")
    ended = rewarded = 0
    for t, a in enumerate(actions):
        r1, r2 = ours.step(a), ref.step(a)
        for k, name in enumerate(STEP_FIELDS):
            np.testing.assert_array_equal(r1[k], r2[k], f"{name} at step {t}")
        for key in info_keys:
            np.testing.assert_array_equal(r1[4][key], r2[4][key], f"info[{key!r}] at step {t}")
        ended += int((r2[2] | r2[3]).sum())
        rewarded += int((r2[1] != 0).sum())
    return ended, rewarded


@pytest.fixture
def closing():
    """Collects environments and closes them after the test."""
    envs = []
    yield envs.append
    for e in envs:
        e.close()


# Reliability (appended): pytest-timeout, with timeout_method = "thread", already prints the
# stack of every thread when a test overruns (tests/test_reliability.py checks it). Nothing
# watches the end of the run, though, where atexit closes leftover environments and joins
# their workers: if that hangs, dump every thread's stack and exit instead of stalling CI.
def pytest_sessionfinish(session, exitstatus):
    faulthandler.dump_traceback_later(300, exit=True)
