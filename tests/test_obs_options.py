"""Observation types and layouts (obs_type, channels_last, grayscale_newaxis, stack_num=0),
several games in one pool, and the bad input around them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import random_actions

import atari_vec
from atari_vec.registration import ATARI57


def trajectory(env, actions, seed):
    obs, info = env.reset(seed=seed)
    out = [(obs.copy(), None, None, None, info)]
    for a in actions:
        obs, rew, term, trunc, info = env.step(a)
        out.append((obs.copy(), rew.copy(), term.copy(), trunc.copy(), info))
    return out


@pytest.mark.parametrize("obs_type", ["grayscale", "rgb"])
def test_channels_last_is_the_transposed_channels_first(obs_type, closing):
    kwargs = dict(obs_type=obs_type, repeat_action_probability=0.25, max_num_frames_per_episode=400)
    first = atari_vec.AtariVectorEnv("breakout", 2, **kwargs)
    last = atari_vec.AtariVectorEnv("breakout", 2, channels_last=True, **kwargs)
    closing(first)
    closing(last)
    h, w = 84, 84
    expected = (h, w, 4) if obs_type == "grayscale" else (h, w, 12)
    assert last.single_observation_space.shape == expected
    actions = random_actions(300, 2, 4, seed=1)
    ended = 0
    for (o1, r1, t1, u1, _), (o2, r2, t2, _, _) in zip(trajectory(first, actions, 3),
                                                       trajectory(last, actions, 3)):
        if obs_type == "grayscale":  # (n, stack, H, W) -> (n, H, W, stack)
            want = o1.transpose(0, 2, 3, 1)
        else:  # (n, stack, H, W, 3) -> (n, H, W, stack, 3) -> (n, H, W, 3 * stack)
            want = o1.transpose(0, 2, 3, 1, 4).reshape(2, h, w, 12)
        np.testing.assert_array_equal(o2, want)
        if t1 is not None:
            np.testing.assert_array_equal(r1, r2)
            ended += int((t1 | u1).sum())
    assert ended > 0


def test_grayscale_newaxis_and_no_stack_axis(closing):
    base = atari_vec.AtariVectorEnv("pong", 2, stack_num=1)
    newaxis = atari_vec.AtariVectorEnv("pong", 2, stack_num=1, grayscale_newaxis=True)
    flat = atari_vec.AtariVectorEnv("pong", 2, stack_num=0)
    for e in (base, newaxis, flat):
        closing(e)
    assert newaxis.single_observation_space.shape == (1, 84, 84, 1)
    assert flat.single_observation_space.shape == (84, 84)
    a, _ = base.reset(seed=0)
    b, _ = newaxis.reset(seed=0)
    c, _ = flat.reset(seed=0)
    np.testing.assert_array_equal(b[..., 0], a)
    np.testing.assert_array_equal(c, a[:, 0])


def test_ram_observations_are_stacked_ram_bytes(closing):
    env = atari_vec.AtariVectorEnv("pong", 2, obs_type="ram", stack_num=3, noop_max=0,
                                   use_fire_reset=False, repeat_action_probability=0.0)
    raw = gym.make_vec("AtariVecRaw/Pong-v5", num_envs=2, obs_type="ram",
                       repeat_action_probability=0.0)
    closing(env)
    closing(raw)
    assert env.single_observation_space.shape == (3, 128)
    obs, _ = env.reset(seed=1)
    ram, _ = raw.reset(seed=1)
    np.testing.assert_array_equal(obs[:, :2], 0)  # zero padding before the first frame
    np.testing.assert_array_equal(obs[:, 2], ram)
    history = [np.zeros_like(ram), np.zeros_like(ram), ram]
    for _ in range(5):
        a = np.array([2, 3])
        obs, *_ = env.step(a)
        ram, *_ = raw.step(a)
        history.append(ram)
        np.testing.assert_array_equal(obs, np.stack(history[-3:], axis=1))


def test_several_games_each_env_equals_a_single_game_pool(closing):
    games = ["breakout", "pong", "space_invaders"]
    kwargs = dict(repeat_action_probability=0.25, full_action_space=True,
                  max_num_frames_per_episode=1200)
    mixed = atari_vec.AtariVectorEnv(games, 6, **kwargs)
    closing(mixed)
    assert mixed.games == games and mixed.single_action_space.n == 18
    actions = random_actions(400, 6, 18, seed=9)
    seed = 21
    ours = trajectory(mixed, actions, seed)
    np.testing.assert_array_equal(ours[0][4]["game_id"], [0, 0, 1, 1, 2, 2])
    ended = 0
    for g, game in enumerate(games):
        single = atari_vec.AtariVectorEnv(game, 2, **kwargs)
        closing(single)
        # Envs 2g and 2g + 1 of the mixed pool were seeded with seed + 2g and seed + 2g + 1.
        theirs = trajectory(single, actions[:, 2 * g:2 * g + 2], seed + 2 * g)
        for t, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_array_equal(a[0][2 * g:2 * g + 2], b[0], f"{game} obs, step {t}")
            if t:
                for k in (1, 2, 3):
                    np.testing.assert_array_equal(a[k][2 * g:2 * g + 2], b[k], f"{game} {k} {t}")
                ended += int((b[2] | b[3]).sum())
    assert ended > 0


def test_several_games_default_to_the_full_action_set(closing):
    env = atari_vec.AtariVectorEnv(["pong", "breakout"], 2)
    closing(env)
    assert env.single_action_space.n == 18
    with pytest.raises(ValueError, match="minimal action sets of .* differ"):
        atari_vec.AtariVectorEnv(["pong", "breakout"], 2, full_action_space=False)


def test_atari57_preset(closing):
    assert len(ATARI57) == 57 and len(set(ATARI57)) == 57
    env = gym.make_vec("AtariVec/Atari57-v5", num_envs=57)
    closing(env)
    assert env.games == list(ATARI57)
    obs, info = env.reset(seed=0)
    assert obs.shape == (57, 4, 84, 84)
    np.testing.assert_array_equal(info["game_id"], np.arange(57))
    obs, *_ = env.step(np.zeros(57, dtype=np.int64))
    assert obs.shape == (57, 4, 84, 84)
    with pytest.raises(TypeError, match="make_vec"):
        gym.make("AtariVec/Atari57-v5")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(obs_type="rgbd"), ValueError, "obs_type"),
    (dict(frameskip=(4, 4)), ValueError, "low < high"),
    (dict(frameskip=(5, 2)), ValueError, "low < high"),
    (dict(frameskip=(4, 0)), ValueError, "low < high"),
    (dict(frameskip=(2, 3.5)), TypeError, "frameskip"),
    (dict(frameskip=(0, 3)), ValueError, "frameskip"),
    (dict(frameskip=(2, 3, 4)), ValueError, "pair"),
    (dict(seeding="numpy"), ValueError, "seeding"),
    (dict(obs_type="ram", channels_last=True), ValueError, "channels_last"),
    (dict(game=["pong", "breakout"], num_envs=3), ValueError, "multiple of the number of games"),
    (dict(game=["pong", "not_a_game"], num_envs=2), ValueError, "Unknown game"),
])
def test_bad_observation_options_are_refused(kwargs, error, match):
    args = dict(game="pong", num_envs=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        atari_vec.AtariVectorEnv(args.pop("game"), args.pop("num_envs"), **args)


def test_stochastic_frameskip_draws_from_the_seeded_stream(closing):
    # Frame numbers advance by 2, 3 or 4 per step, and the same seed repeats them.
    def frames(seed):
        env = atari_vec.AtariVectorEnv("pong", 1, frameskip=(2, 5), noop_max=0, use_fire_reset=False)
        closing(env)
        _, info = env.reset(seed=seed)
        seen = [int(info["frame_number"][0])]
        for _ in range(50):
            *_, info = env.step(np.zeros(1, dtype=np.int64))
            seen.append(int(info["frame_number"][0]))
        return np.diff(seen)

    a, b, c = frames(1), frames(1), frames(2)
    assert set(a) == {2, 3, 4}
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("game", ["breakout", "pong"])
def test_stochastic_frameskip_pools_as_atari_preprocessing(closing, game):
    # Steps of 1 to 3 frames with max-pooling: each observation is AtariPreprocessing's
    # in-place pooling over the step's frames (its second buffer takes a step's second-to-last
    # frame, so a step of one frame pools with that of the last longer step), resized as
    # cv2 does. The frames come from the same game and seed stepped one frame at a time.
    import cv2

    kw = dict(noop_max=0, use_fire_reset=False, stack_num=1)
    env = atari_vec.AtariVectorEnv(game, 1, frameskip=(1, 4), **kw)
    frames = atari_vec.AtariVectorEnv(game, 1, frameskip=1, maxpool=False, img_height=210,
                                      img_width=160, **kw)
    closing(env)
    closing(frames)
    obs, info = env.reset(seed=5)
    first, _ = frames.reset(seed=5)
    buf0, buf1 = first[0, -1].copy(), np.zeros_like(first[0, -1])
    area = lambda f: cv2.resize(f, (84, 84), interpolation=cv2.INTER_AREA)  # noqa: E731
    np.testing.assert_array_equal(obs[0, -1], area(buf0))
    frame_number = int(info["frame_number"][0])
    skips = []
    rng = np.random.default_rng(0)
    for _ in range(150):
        action = rng.integers(0, env.single_action_space.n, size=1)
        obs, _, term, trunc, info = env.step(action)
        skip = int(info["frame_number"][0]) - frame_number
        frame_number = int(info["frame_number"][0])
        skips.append(skip)
        if term[0] or trunc[0]:
            break
        seen = []
        for _ in range(skip):
            f, _, f_term, f_trunc, _ = frames.step(action)
            assert not (f_term[0] or f_trunc[0])
            seen.append(f[0, -1].copy())
        if skip >= 2:
            buf1 = seen[-2]
        buf0 = np.maximum(seen[-1], buf1)
        np.testing.assert_array_equal(obs[0, -1], area(buf0), f"step {len(skips)}, skip {skip}")
    assert {1, 2, 3} <= set(skips)
