"""Our ALE build (with the speed patches of cmake/patches/speed) emulates exactly as stock ALE
0.12.1 (ale-py's own wheel): every frame's screen and RAM, rewards and episode ends, over long
random runs with sticky actions, game overs and resets, seeded alike.

CI runs a sample of games whose frames exercise different parts of the TIA and the cartridge
types; every game, and longer runs, with

    ATARI_VEC_EXACT_GAMES=all ATARI_VEC_EXACT_FRAMES=20000 python -m pytest tests/test_emulator_exact.py
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest

import atari_vec
from atari_vec.registration import env_name

SAMPLE = ["breakout", "pong", "ms_pacman", "seaquest", "space_invaders", "enduro", "qbert",
          "pitfall", "montezuma_revenge", "asteroids", "boxing", "freeway", "video_pinball",
          "private_eye", "yars_revenge", "tennis", "berzerk", "skiing", "pitfall2", "solaris"]
GAMES = (atari_vec.list_games() if os.environ.get("ATARI_VEC_EXACT_GAMES") == "all"
         else [g for g in SAMPLE if g in atari_vec.list_games()])
FRAMES = int(os.environ.get("ATARI_VEC_EXACT_FRAMES", "2500"))
KW = dict(frameskip=1, repeat_action_probability=0.25, full_action_space=True,
          max_num_frames_per_episode=2000)


def test_the_sample_is_there():
    assert len(GAMES) >= 18


@pytest.mark.parametrize("game", GAMES)
def test_every_frame_equals_stock_ale(game, closing):
    name = env_name(game)
    screens = gym.make_vec(f"AtariVecRaw/{name}-v5", num_envs=1, obs_type="rgb", **KW)
    ram = gym.make_vec(f"AtariVecRaw/{name}-v5", num_envs=1, obs_type="ram", **KW)
    ref = gym.vector.SyncVectorEnv([lambda: gym.make(f"ALE/{name}-v5", obs_type="rgb", **KW)])
    for env in (screens, ram, ref):
        closing(env)
    stock = ref.envs[0].unwrapped.ale
    seed = sum(map(ord, game))
    o_screen, _ = screens.reset(seed=seed)
    o_ram, _ = ram.reset(seed=seed)
    o_ref, _ = ref.reset(seed=seed)
    np.testing.assert_array_equal(o_screen, o_ref, "screen after reset")
    np.testing.assert_array_equal(o_ram[0], stock.getRAM(), "RAM after reset")
    actions = np.random.default_rng(seed).integers(0, ref.single_action_space.n, (FRAMES, 1))
    ended = 0
    for t, a in enumerate(actions):
        r_screen, r_ram, r_ref = screens.step(a), ram.step(a), ref.step(a)
        np.testing.assert_array_equal(r_screen[0], r_ref[0], f"screen at frame {t}")
        np.testing.assert_array_equal(r_ram[0][0], stock.getRAM(), f"RAM at frame {t}")
        for k, what in ((1, "reward"), (2, "terminated"), (3, "truncated")):
            np.testing.assert_array_equal(r_screen[k], r_ref[k], f"{what} at frame {t}")
            np.testing.assert_array_equal(r_ram[k], r_ref[k], f"{what} (RAM env) at frame {t}")
        ended += int(r_ref[2][0] or r_ref[3][0])
    assert ended > 0, "the run must cross an episode end, so resets are compared too"
