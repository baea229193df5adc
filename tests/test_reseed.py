"""A seeded reset puts the console back as it was built instead of loading the ROM again
(our ALE patch, ALEInterface::reloadROM). It must be bit for bit a fresh ROM load with that
seed: here each of our envs first plays with another seed (RAM, cartridge RAM, TIA and RNGs
all moved on), then is reset with the seed and run step for step against a fresh ale-py env
(whose reset(seed=...) loads the ROM): screens or RAM, rewards, flags, lives and frame
counters, with sticky actions (the RNG that loadROM reseeds) and the full action space.

Every playable game, two seeds each (one compared on screens, one on RAM)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import atari_vec
from atari_vec.registration import env_name
from conftest import lockstep

GAMES = atari_vec.list_games()
STEPS = 300
KW = dict(frameskip=1, repeat_action_probability=0.25, full_action_space=True,
          max_num_frames_per_episode=3000)


def test_every_game_is_covered():
    assert len(GAMES) > 100


@pytest.mark.parametrize("game", GAMES)
def test_seeded_reset_equals_fresh_rom_load(game, closing):
    rng = np.random.default_rng(abs(hash(game)) % 2**32)
    for obs_type, seed in (("rgb", 1000 + len(game)), ("ram", 7)):
        ours = gym.make_vec(f"AtariVecRaw/{env_name(game)}-v5", num_envs=1, obs_type=obs_type, **KW)
        closing(ours)
        ref = gym.vector.SyncVectorEnv(
            [lambda: gym.make(f"ALE/{env_name(game)}-v5", obs_type=obs_type, **KW)])
        closing(ref)
        # Move everything a reset leaves alone away from the fresh console's state first.
        ours.reset(seed=seed + 1)
        n = ours.single_action_space.n
        for a in rng.integers(0, n, size=(150, 1)):
            ours.step(a)
        actions = rng.integers(0, n, size=(STEPS, 1))
        lockstep(ours, ref, actions, seed=seed)
