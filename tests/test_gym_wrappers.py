"""Gymnasium's own vector wrappers on AtariVectorEnv: RecordEpisodeStatistics,
NormalizeReward and DictInfoToList (RecordVideo and HumanRendering: see the render tests)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.wrappers.vector import DictInfoToList, NormalizeReward, RecordEpisodeStatistics

import atari_vec


def test_record_episode_statistics_needs_native_stats_off(closing):
    with_native = atari_vec.AtariVectorEnv("breakout", 2, max_num_frames_per_episode=200)
    closing(with_native)
    wrapped = RecordEpisodeStatistics(with_native)
    wrapped.reset(seed=0)
    with pytest.raises(ValueError, match="episode"):
        for _ in range(60):  # the first episode end would add the stats a second time
            wrapped.step(np.zeros(2, dtype=np.int64))


def test_record_episode_statistics_equals_native_stats(closing):
    kwargs = dict(repeat_action_probability=0.25, reward_clipping=False,
                  max_num_frames_per_episode=600, autoreset_mode="SameStep")
    native = atari_vec.AtariVectorEnv("space_invaders", 3, **kwargs)
    plain = atari_vec.AtariVectorEnv("space_invaders", 3, episode_statistics=False, **kwargs)
    wrapped = RecordEpisodeStatistics(plain)
    closing(native)
    closing(wrapped)
    native.reset(seed=2)
    wrapped.reset(seed=2)
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(400):
        a = rng.integers(0, native.single_action_space.n, 3)
        *_, ours = native.step(a)
        *_, theirs = wrapped.step(a)
        assert ("episode" in ours) == ("episode" in theirs)
        if "episode" in ours:
            done = ours["_episode"]
            np.testing.assert_array_equal(done, theirs["_episode"])
            np.testing.assert_array_equal(ours["episode"]["r"][done], theirs["episode"]["r"][done])
            np.testing.assert_array_equal(ours["episode"]["l"][done], theirs["episode"]["l"][done])
            episodes += int(done.sum())
    assert episodes >= 3
    assert any(r != 0 for r in wrapped.return_queue)


def test_normalize_reward_on_integer_rewards(closing):
    env = NormalizeReward(atari_vec.AtariVectorEnv("space_invaders", 2, reward_clipping=False))
    closing(env)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    seen = []
    for _ in range(300):
        _, rew, *_ = env.step(rng.integers(0, 6, 2))
        assert rew.dtype.kind == "f"
        seen.append(rew)
    seen = np.concatenate(seen)
    assert np.isfinite(seen).all() and (seen != 0).any()


def test_dict_info_to_list_keeps_every_key(closing):
    env = DictInfoToList(atari_vec.AtariVectorEnv(["pong", "breakout"], 2))
    closing(env)
    _, infos = env.reset(seed=0)
    assert [int(i["game_id"]) for i in infos] == [0, 1]
    _, _, _, _, infos = env.step(np.zeros(2, dtype=np.int64))
    for i, info in enumerate(infos):
        assert int(info["env_id"]) == i
        for key in ("lives", "frame_number", "episode_frame_number", "reward", "terminated",
                    "elapsed_step"):
            assert key in info, key
