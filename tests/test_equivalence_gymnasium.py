"""Bit-exact equivalence with Gymnasium's reference stack:
SyncVectorEnv(FrameStackObservation(AtariPreprocessing(gym.make(id, frameskip=1)), 4, "zero"))."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import GAMES, assert_same_trajectory, gym_id, random_actions, run
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

import atari_vec


def reference(game: str, num_envs: int, stack: int = 4, frame_skip: int = 4, screen=84,
              grayscale: bool = True, max_frames: int = 108000):
    def make():
        env = gym.make(gym_id(game), frameskip=1, repeat_action_probability=0.0,
                       max_num_frames_per_episode=max_frames)
        env = AtariPreprocessing(env, noop_max=0, frame_skip=frame_skip, screen_size=screen,
                                 grayscale_obs=grayscale)
        return FrameStackObservation(env, stack, padding_type="zero")

    return gym.vector.SyncVectorEnv([make for _ in range(num_envs)])


@pytest.mark.parametrize("game", GAMES)
def test_matches_reference(game, closing):
    num_envs, steps = 2, 600
    ref = reference(game, num_envs, max_frames=1600)
    ours = atari_vec.AtariVectorEnv(game, num_envs, noop_max=0, use_fire_reset=False,
                                    reward_clipping=False, max_num_frames_per_episode=1600)
    closing(ref)
    closing(ours)
    actions = random_actions(steps, num_envs, ours.single_action_space.n, seed=1)
    r = run(ref, actions, seed=7)
    o = run(ours, actions, seed=7)
    assert_same_trajectory(o, r)
    # The run must have crossed episode boundaries for autoreset to be checked.
    assert (r["term"] | r["trunc"]).any()


@pytest.mark.parametrize("kwargs", [
    dict(frame_skip=1, stack=1),
    dict(frame_skip=3, stack=2, screen=(64, 48)),
    dict(grayscale=False, screen=(80, 100)),
])
def test_matches_reference_other_settings(kwargs, closing):
    game, num_envs, steps = "breakout", 2, 400
    ref = reference(game, num_envs, **kwargs)
    screen = kwargs.get("screen", 84)
    w, h = (screen, screen) if isinstance(screen, int) else screen  # cv2 sizes are (w, h)
    ours = atari_vec.AtariVectorEnv(
        game, num_envs, noop_max=0, use_fire_reset=False, reward_clipping=False,
        frameskip=kwargs.get("frame_skip", 4), stack_num=kwargs.get("stack", 4),
        img_height=h, img_width=w, grayscale=kwargs.get("grayscale", True))
    closing(ref)
    closing(ours)
    actions = random_actions(steps, num_envs, ours.single_action_space.n, seed=3)
    assert_same_trajectory(run(ours, actions, seed=11), run(ref, actions, seed=11))
