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
