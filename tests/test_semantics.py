"""Autoreset modes, noop reset, modes/difficulties and continuous actions, with exact values."""

from __future__ import annotations

import numpy as np
import pytest

import atari_vec

# 40 frames = 10 steps of frameskip 4: every episode is truncated at step 10 exactly
# (breakout does not end on its own that fast).
SHORT = dict(noop_max=0, use_fire_reset=False, max_num_frames_per_episode=40)


def fresh_reset_obs(game="breakout", **kw):
    env = atari_vec.AtariVectorEnv(game, 1, **kw)
    obs, _ = env.reset(seed=0)
    env.close()
    return obs[0].copy()


def test_next_step(closing):
    env = atari_vec.AtariVectorEnv("breakout", 3, **SHORT)
    closing(env)
    reset_obs = fresh_reset_obs(**SHORT)
    obs, info = env.reset(seed=0)
    assert (obs == reset_obs).all()
    assert (obs[:, :3] == 0).all() and obs[:, 3].any()  # zero padding, then the first frame
    np.testing.assert_array_equal(info["episode_frame_number"], 0)
    for t in range(1, 11):
        obs, rew, term, trunc, info = env.step(np.zeros(3, dtype=np.int64))
        assert not term.any()
        assert trunc.tolist() == [t == 10] * 3
        np.testing.assert_array_equal(info["episode_frame_number"], 4 * t)
    # The step after the end resets: action ignored, zero reward, fresh observation.
    obs, rew, term, trunc, info = env.step(np.full(3, 1, dtype=np.int64))
    assert (obs == reset_obs).all()
    assert rew.tolist() == [0, 0, 0] and not term.any() and not trunc.any()
    np.testing.assert_array_equal(info["episode_frame_number"], 0)
    assert "final_obs" not in info


def test_same_step(closing):
    same = atari_vec.AtariVectorEnv("breakout", 2, autoreset_mode="SameStep", **SHORT)
    nxt = atari_vec.AtariVectorEnv("breakout", 2, **SHORT)
    closing(same)
    closing(nxt)
    reset_obs = fresh_reset_obs(**SHORT)
    same.reset(seed=0)
    nxt.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 4, size=(10, 2))
    for t, a in enumerate(actions, start=1):
        o1, r1, te1, tr1, i1 = same.step(a)
        o2, r2, te2, tr2, i2 = nxt.step(a)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)
        if t < 10:
            np.testing.assert_array_equal(o1, o2)
            assert "final_obs" not in i1 and "final_info" not in i1
    # Step 10 ended both episodes: same-step returns the new episode's first observation
    # and keeps the last one in final_obs, with masks marking who ended.
    assert tr1.all()
    assert (o1 == reset_obs).all()
    np.testing.assert_array_equal(i1["final_obs"], o2)
    assert i1["_final_obs"].tolist() == [True, True]
    assert i1["_final_info"].tolist() == [True, True]
    np.testing.assert_array_equal(i1["final_info"]["episode_frame_number"], 40)
    np.testing.assert_array_equal(i1["episode_frame_number"], 0)
    # The next step continues the new episode (no second reset).
    o1, r1, te1, tr1, i1 = same.step(np.zeros(2, dtype=np.int64))
    np.testing.assert_array_equal(i1["episode_frame_number"], 4)


def test_same_step_masks_only_ended_envs(closing):
    # Different limits are not possible per env, so end one env through the game: breakout
    # with episodic_life ends on the first life lost, at different steps per env.
    env = atari_vec.AtariVectorEnv("breakout", 4, autoreset_mode="SameStep", episodic_life=True,
                                   noop_max=0)
    closing(env)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    seen_partial = False
    for _ in range(400):
        obs, rew, term, trunc, info = env.step(rng.integers(0, 4, size=4))
        done = term | trunc
        assert ("final_obs" in info) == bool(done.any())
        if done.any():
            np.testing.assert_array_equal(info["_final_obs"], done)
            seen_partial |= bool(done.any() and not done.all())
            # A finished env's new observation is a fresh reset: zero padding.
            assert (obs[done][:, :3] == 0).all()
    assert seen_partial


def test_disabled(closing):
    env = atari_vec.AtariVectorEnv("breakout", 3, autoreset_mode="Disabled", **SHORT)
    closing(env)
    assert env.metadata["autoreset_mode"].value == "Disabled"
    reset_obs = fresh_reset_obs(**SHORT)
    env.reset(seed=0)
    for _ in range(10):
        obs, rew, term, trunc, info = env.step(np.zeros(3, dtype=np.int64))
    assert trunc.all()
    held = obs.copy()
    # Reset only env 1; the others report their current state unchanged.
    obs, info = env.reset(options={"reset_mask": np.array([False, True, False])})
    assert (obs[1] == reset_obs).all()
    np.testing.assert_array_equal(obs[[0, 2]], held[[0, 2]])
    np.testing.assert_array_equal(info["episode_frame_number"], [40, 0, 40])
    # Stepping an env whose episode is over is refused, and nothing is stepped.
    with pytest.raises(ValueError, match=r"environments \[0, 2\] are over"):
        env.step(np.zeros(3, dtype=np.int64))
    obs, info = env.reset(options={"reset_mask": np.array([True, False, True])})
    np.testing.assert_array_equal(info["episode_frame_number"], [0, 0, 0])
    obs, rew, term, trunc, info = env.step(np.zeros(3, dtype=np.int64))
    np.testing.assert_array_equal(info["episode_frame_number"], [4, 4, 4])


def test_disabled_needs_sync():
    with pytest.raises(ValueError, match="DISABLED"):
        atari_vec.AtariVectorEnv("breakout", 4, batch_size=2, autoreset_mode="Disabled")


def test_noop_count_distribution(closing):
    noop_max, num_envs, rounds = 6, 8, 60
    env = atari_vec.AtariVectorEnv("pong", num_envs, noop_max=noop_max, use_fire_reset=False)
    closing(env)
    counts = []
    for r in range(rounds):
        _, info = env.reset(seed=None if r else 123)
        counts.extend(info["episode_frame_number"].tolist())
    values, freq = np.unique(counts, return_counts=True)
    assert values.tolist() == list(range(1, noop_max + 1))
    expected = len(counts) / noop_max
    chi2 = float((((freq - expected) ** 2) / expected).sum())
    assert chi2 < 25.0, (freq, chi2)  # 5 degrees of freedom: p < 1e-4 under uniformity


def test_noop_reset_is_seeded(closing):
    env = atari_vec.AtariVectorEnv("pong", 4, noop_max=30)
    closing(env)
    a = env.reset(seed=42)[1]["episode_frame_number"].copy()
    b = env.reset(seed=42)[1]["episode_frame_number"].copy()
    np.testing.assert_array_equal(a, b)


def test_fire_reset_presses_fire(closing):
    fire = atari_vec.AtariVectorEnv("breakout", 1, noop_max=0, use_fire_reset=True)
    nofire = atari_vec.AtariVectorEnv("pong", 1, noop_max=0, use_fire_reset=True)
    closing(fire)
    closing(nofire)
    assert fire.reset(seed=0)[1]["episode_frame_number"].tolist() == [1]
    # pong's minimal action set has FIRE too; a game without FIRE would show 0.
    assert nofire.reset(seed=0)[1]["episode_frame_number"].tolist() == [1]


def test_mode_and_difficulty(closing):
    env = atari_vec.AtariVectorEnv("breakout", 1, mode=4, difficulty=1)
    closing(env)
    assert 4 in env.available_modes and 1 in env.available_difficulties
    env.reset(seed=0)
    with pytest.raises(ValueError, match="mode 3 is not available"):
        atari_vec.AtariVectorEnv("breakout", 1, mode=3)


def test_continuous_actions(closing):
    env = atari_vec.AtariVectorEnv("breakout", 2, continuous=True, noop_max=0)
    closing(env)
    assert env.single_action_space.shape == (3,)
    assert env.action_set == list(range(18))
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(20):
        obs, *_ = env.step(env.action_space.sample())
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full((2, 3), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((2, 2), dtype=np.float32))
    obs, *_ = env.step(np.zeros((2, 3), dtype=np.float32))  # still usable
