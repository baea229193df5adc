"""Bit-exact equivalence of the AtariVecRaw/* ids with the reference they name:
gym.make_vec("AtariVecRaw/<id>", N, **kw) against SyncVectorEnv([gym.make(<ale-py id>, **kw)] * N),
seeded alike, step for step: observations (shape included), rewards, terminations,
truncations and the info keys lives, episode_frame_number and frame_number."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import atari_vec  # noqa: F401  (registers the ids)
from conftest import lockstep

INFO_KEYS = ("lives", "episode_frame_number", "frame_number")

# (raw id, ale-py id, keyword arguments for both): every family, every obs_type, sticky
# actions (v0 and v5 defaults), stochastic frameskip (v0/v4 defaults and an explicit (2, 5)),
# the full action space, a non-default mode and difficulty. max_num_frames_per_episode is
# shortened where random play would not end an episode within the run.
CASES = [
    ("Breakout-v5", "ALE/Breakout-v5", {}),
    ("Pong-v5", "ALE/Pong-v5", dict(obs_type="grayscale", max_num_frames_per_episode=800)),
    ("MsPacman-v5", "ALE/MsPacman-v5", dict(obs_type="ram", frameskip=(2, 5))),
    ("Seaquest-v5", "ALE/Seaquest-v5", dict(full_action_space=True)),
    ("SpaceInvaders-v5", "ALE/SpaceInvaders-v5",
     dict(mode=1, difficulty=1, max_num_frames_per_episode=1000)),
    ("Qbert-v0", "Qbert-v0", {}),
    ("Boxing-v4", "Boxing-v4", dict(obs_type="ram", max_num_frames_per_episode=600)),
    ("BreakoutNoFrameskip-v4", "BreakoutNoFrameskip-v4", dict(obs_type="grayscale")),
    ("AsterixNoFrameskip-v0", "AsterixNoFrameskip-v0",
     dict(repeat_action_probability=0.25, max_num_frames_per_episode=400)),
    ("Freeway-v0", "Freeway-v0", dict(frameskip=(2, 5), max_num_frames_per_episode=700)),
    # A screen 250 lines tall (as 11 other games'): raw observations keep the game's size.
    ("Pacman-v5", "ALE/Pacman-v5", dict(max_num_frames_per_episode=700)),
]

# The Gymnasium page's extra spellings, which ale-py 0.12 does not register: compared with
# the ale-py id plus the keyword arguments the spelling stands for.
SPELLINGS = [
    ("Breakout-ram-v5", "ALE/Breakout-v5", dict(obs_type="ram")),
    ("Pong-ramNoFrameskip-v4", "PongNoFrameskip-v4", dict(obs_type="ram")),
    ("BreakoutDeterministic-v4", "Breakout-v4", dict(frameskip=4)),
    ("SpaceInvaders-ramDeterministic-v0", "SpaceInvaders-v0", dict(obs_type="ram", frameskip=3)),
    ("Qbert-ram-v0", "Qbert-v0", dict(obs_type="ram")),
]


def compare(raw_id: str, ref_env, kwargs: dict, num_envs: int, steps: int, seed: int,
            closing) -> int:
    """Run both seeded alike with the same random actions; return the episodes ended."""
    ours = gym.make_vec(f"AtariVecRaw/{raw_id}", num_envs=num_envs, **kwargs)
    closing(ours)
    closing(ref_env)
    actions = np.random.default_rng(seed).integers(0, ours.single_action_space.n, (steps, num_envs))
    ended, _ = lockstep(ours, ref_env, actions, seed=seed, info_keys=INFO_KEYS)
    return ended


@pytest.mark.parametrize(("raw_id", "ale_id", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_raw_id_matches_gym_make(raw_id, ale_id, kwargs, closing):
    num_envs = 2
    ref = gym.vector.SyncVectorEnv([lambda: gym.make(ale_id, **kwargs)] * num_envs)
    ended = compare(raw_id, ref, kwargs, num_envs, steps=900, seed=11, closing=closing)
    assert ended > 0, "the run must cross an episode boundary, so autoreset is compared too"


@pytest.mark.parametrize(("raw_id", "ale_id", "kwargs"), SPELLINGS, ids=[c[0] for c in SPELLINGS])
def test_extra_spellings_match(raw_id, ale_id, kwargs, closing):
    # The spelling's own defaults are the kwargs; nothing extra is passed to our id.
    spec = gym.spec(f"AtariVecRaw/{raw_id}")
    for key, value in kwargs.items():
        assert spec.kwargs[key] == value, key
    ours_kwargs = dict(max_num_frames_per_episode=500)
    ref = gym.vector.SyncVectorEnv(
        [lambda: gym.make(ale_id, **kwargs, **ours_kwargs)] * 2)
    ended = compare(raw_id, ref, ours_kwargs, num_envs=2, steps=500, seed=5, closing=closing)
    assert ended > 0


def test_every_ale_py_id_has_a_raw_id():
    import ale_py

    gym.register_envs(ale_py)
    ale_ids = [s.id for s in gym.registry.values()
               if s.entry_point == "ale_py.env:AtariEnv" and s.namespace in (None, "ALE")]
    assert len(ale_ids) >= 104 + 62 * 4
    for ale_id in ale_ids:
        spec = gym.spec("AtariVecRaw/" + ale_id.removeprefix("ALE/"))
        assert spec.kwargs == gym.spec(ale_id).kwargs, ale_id
        assert spec.vector_entry_point == "atari_vec.registration:make_raw_vec"


def test_gym_make_of_a_raw_id_is_the_ale_py_env():
    env = gym.make("AtariVecRaw/Pong-v5")
    try:
        assert type(env.unwrapped).__module__ == "ale_py.env"
        assert env.unwrapped._frameskip == 4
    finally:
        env.close()


@pytest.mark.parametrize("obs_type, shape", [("rgb", (210, 160, 3)), ("grayscale", (210, 160)),
                                             ("ram", (128,))])
def test_raw_observation_shapes(obs_type, shape, closing):
    env = gym.make_vec("AtariVecRaw/Breakout-v5", num_envs=3, obs_type=obs_type)
    closing(env)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, *shape) and obs.dtype == np.uint8


def test_unknown_raw_id_is_refused():
    with pytest.raises(gym.error.Error, match="NotAGame"):
        gym.make_vec("AtariVecRaw/NotAGame-v5", num_envs=2)


def test_raw_env_refuses_preprocessing_options():
    with pytest.raises(TypeError, match="noop_max"):
        gym.make_vec("AtariVecRaw/Pong-v5", num_envs=2, noop_max=30)
    with pytest.raises(ValueError, match="maxpool"):
        atari_vec.AtariVectorEnv("pong", 2, raw=True)


def test_seeded_masked_reset_seeds_env_i_with_s_plus_i(closing):
    """reset(seed=s, options={"reset_mask": m}) gives env i the seed s + i, as Gymnasium's
    SyncVectorEnv does (ale-py's vector env gives the masked envs s, s + 1, ... instead)."""
    kwargs = dict(obs_type="ram", repeat_action_probability=0.25)
    ours = gym.make_vec("AtariVecRaw/Breakout-v5", num_envs=3, autoreset_mode="Disabled",
                        **kwargs)
    ref = gym.vector.SyncVectorEnv([lambda: gym.make("ALE/Breakout-v5", **kwargs)] * 3,
                                   autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    closing(ours)
    closing(ref)
    actions = np.random.default_rng(3).integers(0, 4, (60, 3))
    for env in (ours, ref):
        env.reset(seed=5)
    for a in actions[:30]:
        np.testing.assert_array_equal(ours.step(a)[0], ref.step(a)[0])
    mask = np.array([False, True, True])
    o1, _ = ours.reset(seed=9, options={"reset_mask": mask})
    o2, _ = ref.reset(seed=9, options={"reset_mask": mask})
    np.testing.assert_array_equal(o1, o2)
    for a in actions[30:]:
        np.testing.assert_array_equal(ours.step(a)[0], ref.step(a)[0])
