"""EnvPool's info keys that training scripts read: info["reward"] (unclipped),
info["terminated"] (the game as played is over), info["elapsed_step"], info["lives"].

The main check replays the episode accounting of CleanRL's ppo_atari_envpool.py (sum the
unclipped info["reward"], close the episode where info["terminated"] is set) and holds it
against our native info["episode"]."""

from __future__ import annotations

import numpy as np
import pytest

import atari_vec


def cleanrl_returns(env, steps, seed):
    """CleanRL's envpool accounting, per env: a list of (return, length) of finished games."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    n = env.num_envs
    episode_returns = np.zeros(n)
    episode_lengths = np.zeros(n, dtype=np.int64)
    cleanrl = {e: [] for e in range(n)}
    native = {e: [] for e in range(n)}
    clipped_seen = False
    for _ in range(steps):
        obs, reward, term, trunc, info = env.step(rng.integers(0, env.single_action_space.n, n))
        clipped_seen |= bool((np.abs(info["reward"]) > np.abs(reward)).any())
        episode_returns += info["reward"]
        episode_lengths += 1
        for e in np.flatnonzero(info["terminated"]):
            cleanrl[e].append((episode_returns[e], episode_lengths[e]))
        episode_returns *= 1 - info["terminated"]
        episode_lengths *= 1 - info["terminated"]
        if "episode" in info:
            for e in np.flatnonzero(info["_episode"]):
                native[e].append((float(info["episode"]["r"][e]), int(info["episode"]["l"][e])))
        # The step after a game ends (or is truncated) is its reset (NEXT_STEP): no reward,
        # and not a step of any episode. (A life loss with life_loss_info resets nothing.)
        episode_lengths[info["terminated"] | trunc] -= 1
    return cleanrl, native, clipped_seen


@pytest.mark.parametrize("kwargs", [
    dict(),                      # episodes end at game over
    dict(episodic_life=True),    # a life loss ends the game as played (the reset restarts it)
    dict(life_loss_info=True),   # life losses terminate, but the game goes on
], ids=["game_over", "episodic_life", "life_loss_info"])
def test_cleanrl_envpool_accounting_matches_native_episode_stats(kwargs, closing):
    # Space Invaders scores 5 to 30 per alien (200 for the ship): clipping changes them.
    env = atari_vec.AtariVectorEnv("space_invaders", 4, repeat_action_probability=0.25, **kwargs)
    closing(env)
    cleanrl, native, clipped_seen = cleanrl_returns(env, 1500, seed=1)
    assert clipped_seen, "clipped rewards must differ from info['reward'] somewhere"
    finished = sum(len(v) for v in native.values())
    assert finished >= 4
    for e in range(env.num_envs):
        assert [(float(r), int(n)) for r, n in cleanrl[e]] == native[e], f"env {e}"


def test_life_loss_info_reports_the_whole_game_once_at_game_over(closing):
    env = atari_vec.AtariVectorEnv("breakout", 2, life_loss_info=True, reward_clipping=True)
    closing(env)
    rng = np.random.default_rng(0)
    env.reset(seed=4)
    total = np.zeros(2)
    games = 0
    for _ in range(2000):
        obs, rew, term, trunc, info = env.step(rng.integers(0, 4, 2))
        total += info["reward"]
        # A life loss terminates the step but does not end the game.
        assert not (info["terminated"] & ~term).any()
        for e in np.flatnonzero(info["terminated"]):
            assert info["lives"][e] == 0
            assert info["_episode"][e]
            assert info["episode"]["r"][e] == total[e]
            total[e] = 0
            games += 1
    assert games >= 2


def test_elapsed_step_counts_steps_since_reset(closing):
    env = atari_vec.AtariVectorEnv("pong", 2, max_num_frames_per_episode=120, noop_max=0,
                                   use_fire_reset=False)
    closing(env)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["elapsed_step"], [0, 0])
    expected = 0
    for _ in range(70):
        obs, rew, term, trunc, info = env.step(np.zeros(2, dtype=np.int64))
        expected = 0 if expected < 0 else expected + 1
        np.testing.assert_array_equal(info["elapsed_step"], [expected] * 2)
        if trunc.any():
            assert trunc.all() and expected == 30  # 120 frames / 4
            expected = -1  # the next step is the reset


def test_same_step_rows_carry_the_final_steps_info(closing):
    env = atari_vec.AtariVectorEnv("pong", 2, autoreset_mode="SameStep", noop_max=0,
                                   use_fire_reset=False, max_num_frames_per_episode=80)
    closing(env)
    env.reset(seed=0)
    for t in range(1, 25):
        obs, rew, term, trunc, info = env.step(np.zeros(2, dtype=np.int64))
        if trunc.any():
            np.testing.assert_array_equal(info["elapsed_step"], [20, 20])
            break
    else:
        pytest.fail("no truncation")
