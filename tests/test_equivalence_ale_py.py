"""Bit-exact equivalence with ale-py's own AtariVectorEnv under the same keyword arguments."""

from __future__ import annotations

import numpy as np
import pytest
from ale_py.vector_env import AtariVectorEnv as AlePyVectorEnv
from conftest import random_actions

import atari_vec

SETTINGS = {
    "default": {},
    "episodic_life": dict(episodic_life=True),
    "life_loss_info": dict(life_loss_info=True),
    "rgb_non_square": dict(grayscale=False, img_height=100, img_width=80),
    "stack1_frameskip1": dict(stack_num=1, frameskip=1, max_num_frames_per_episode=300),
    "full_action_space": dict(full_action_space=True),
    "same_step": dict(autoreset_mode="SameStep", max_num_frames_per_episode=700),
    "short_episodes": dict(max_num_frames_per_episode=500),
    "sticky_actions": dict(repeat_action_probability=0.25),
    "no_maxpool_no_clip": dict(maxpool=False, reward_clipping=False, frameskip=3),
}


def trajectory(env, actions, seed):
    obs, info = env.reset(seed=seed)
    steps = [(obs.copy(), None, None, None, {k: np.array(v) for k, v in info.items()})]
    for a in actions:
        obs, rew, term, trunc, info = env.step(a)
        info = {k: np.array(v) for k, v in info.items() if k in
                ("env_id", "lives", "frame_number", "episode_frame_number", "final_obs")}
        steps.append((obs.copy(), rew.copy(), term.copy(), trunc.copy(), info))
    return steps


@pytest.mark.parametrize("game", ["breakout", "pong", "space_invaders"])
@pytest.mark.parametrize("name", list(SETTINGS))
def test_matches_ale_py(name, game, closing):
    kwargs = dict(noop_max=0, **SETTINGS[name])
    theirs_kwargs = dict(kwargs)
    num_envs, steps = 3, 400
    theirs = AlePyVectorEnv(game, num_envs, **theirs_kwargs)
    ours = atari_vec.AtariVectorEnv(game, num_envs, seeding="ale_py", **kwargs)
    closing(theirs)
    closing(ours)
    assert ours.single_observation_space == theirs.single_observation_space
    assert ours.single_action_space == theirs.single_action_space
    actions = random_actions(steps, num_envs, ours.single_action_space.n, seed=5)
    a, b = trajectory(ours, actions, 3), trajectory(theirs, actions, 3)
    ended = 0
    for t, ((o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2)) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(o1, o2, f"obs at step {t}")
        if t:
            np.testing.assert_array_equal(r1, r2, f"reward at step {t}")
            assert r1.dtype == r2.dtype
            np.testing.assert_array_equal(te1, te2, f"terminated at step {t}")
            np.testing.assert_array_equal(tr1, tr2, f"truncated at step {t}")
            ended += int((te1 | tr1).sum())
        for key in ("env_id", "lives", "frame_number", "episode_frame_number"):
            np.testing.assert_array_equal(i1[key], i2[key], f"info[{key!r}] at step {t}")
        assert ("final_obs" in i1) == ("final_obs" in i2), f"final_obs presence at step {t}"
        if "final_obs" in i2:
            done = te1 | tr1
            np.testing.assert_array_equal(i1["final_obs"][done], i2["final_obs"][done])
    lives_matter = name in ("episodic_life", "life_loss_info") and game != "pong"  # pong has no lives
    if game == "breakout" or lives_matter or name in ("short_episodes", "same_step"):
        assert ended > 0, "the run should cross episode boundaries"
