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


# Default settings, seeds included: 30 no-ops drawn from the env's own generator, sticky
# actions (ALE's seeded RNG), fire at reset for games with FIRE, reward clipping. The
# reference is atari_vec.registration.make_reference_env: Gymnasium's stack over ale-py's
# AtariEnv, with registration.FireOnReset (Gymnasium has no fire reset) under it.
DEFAULT_CASES = [
    ("breakout", {}),
    ("pong", dict(max_num_frames_per_episode=1500)),  # ALE's count, reset frames included
    ("space_invaders", {}),
    ("ms_pacman", {}),
    ("seaquest", {}),
    ("qbert", {}),
    ("boxing", dict(max_num_frames_per_episode=1200)),
    ("breakout", dict(episodic_life=True)),
    ("enduro", dict(grayscale=False, max_num_frames_per_episode=900)),
]


@pytest.mark.parametrize(("game", "extra"), DEFAULT_CASES,
                         ids=[f"{g}-{'-'.join(e) or 'defaults'}" for g, e in DEFAULT_CASES])
def test_default_settings_with_seeds_match_reference(game, extra, closing):
    from atari_vec.registration import make_reference_env

    num_envs, steps = 2, 700
    kwargs = dict(repeat_action_probability=0.25, **extra)
    ref = gym.vector.SyncVectorEnv([lambda: make_reference_env(game, **kwargs)] * num_envs)
    ours = atari_vec.AtariVectorEnv(game, num_envs, **kwargs)
    closing(ref)
    closing(ours)
    actions = random_actions(steps, num_envs, ours.single_action_space.n, seed=2)
    for seed in (0, 123):
        r = run(ref, actions, seed=seed)
        o = run(ours, actions, seed=seed)
        assert_same_trajectory(o, r)
        assert (r["term"] | r["trunc"]).any(), "the run must cross an episode boundary"
