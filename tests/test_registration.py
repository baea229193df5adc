"""Gymnasium registration: gym.make_vec gives the native env, gym.make the reference stack."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation
from gymnasium.wrappers.vector import DictInfoToList

import atari_vec
from atari_vec.registration import gym_id


def test_one_id_per_game_with_ale_spelling():
    ids = {k for k in gym.registry if k.startswith("AtariVec/")} - {"AtariVec/Atari57-v5"}
    games = atari_vec.list_games()
    assert len(ids) == len(games)
    for game, name in [
        ("breakout", "Breakout"),
        ("ms_pacman", "MsPacman"),
        ("pong", "Pong"),
        ("video_pinball", "VideoPinball"),
        ("tic_tac_toe_3d", "TicTacToe3D"),
        ("up_n_down", "UpNDown"),
    ]:
        assert game in games
        assert gym_id(game) == f"AtariVec/{name}-v5"
        assert f"ALE/{name}-v5" in gym.registry  # the same name as ale-py's id
        assert gym.spec(gym_id(game)).kwargs == {"game": game}


def test_register_envs_is_idempotent():
    before = dict(gym.registry)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        atari_vec.register_envs()
        gym.register_envs(atari_vec)
    assert dict(gym.registry) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", [None, "vector_entry_point"])
def test_make_vec_returns_native_env_with_kwargs(mode, closing):
    envs = gym.make_vec(
        "AtariVec/Breakout-v5",
        num_envs=3,
        vectorization_mode=mode,
        stack_num=2,
        img_height=64,
        img_width=48,
        frameskip=3,
        autoreset_mode="SameStep",
        max_num_frames_per_episode=90,
        noop_max=0,  # ALE counts the reset's frames too: none here
        use_fire_reset=False,
    )
    closing(envs)
    assert type(envs) is atari_vec.AtariVectorEnv
    assert envs.game == "breakout" and envs.num_envs == 3
    assert envs.single_observation_space.shape == (2, 64, 48)
    assert envs.autoreset_mode == gym.vector.AutoresetMode.SAME_STEP
    assert envs.spec.id == "AtariVec/Breakout-v5"
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 2, 64, 48)
    # 90 frames at frameskip 3 is 30 steps: the frame limit reached the native env.
    for step in range(30):
        _, _, _term, trunc, info = envs.step(np.zeros(3, dtype=np.int64))
        assert trunc.all() == (step == 29), step
    assert "final_obs" in info


@pytest.mark.timeout(60)
def test_make_vec_sync_mode_builds_reference_stack(closing):
    envs = gym.make_vec("AtariVec/Pong-v5", num_envs=2, vectorization_mode="sync", noop_max=0)
    closing(envs)
    assert isinstance(envs, gym.vector.SyncVectorEnv)
    assert envs.single_observation_space.shape == (4, 84, 84)


def _wrappers(env: gym.Env) -> list[type]:
    kinds = []
    while isinstance(env, gym.Wrapper):
        kinds.append(type(env))
        env = env.env
    return kinds


@pytest.mark.timeout(60)
def test_make_builds_reference_stack(closing):
    env = gym.make("AtariVec/Breakout-v5")
    closing(env)
    kinds = _wrappers(env)
    assert FrameStackObservation in kinds and AtariPreprocessing in kinds
    pre = env.get_wrapper_attr("noop_max"), env.get_wrapper_attr("frame_skip")
    assert pre == (30, 4)
    ale = env.unwrapped
    assert ale._frameskip == 1 and ale.ale.getFloat("repeat_action_probability") == 0.0
    assert env.observation_space.shape == (4, 84, 84)


@pytest.mark.timeout(60)
def test_make_maps_kwargs(closing):
    env = gym.make(
        "AtariVec/Breakout-v5",
        img_height=64,
        img_width=48,
        grayscale=False,
        stack_num=2,
        frameskip=3,
        noop_max=5,
        episodic_life=True,
    )
    closing(env)
    ours = atari_vec.AtariVectorEnv(
        "breakout", 1, img_height=64, img_width=48, grayscale=False, stack_num=2
    )
    closing(ours)
    assert env.observation_space == ours.single_observation_space
    assert env.get_wrapper_attr("frame_skip") == 3
    assert env.get_wrapper_attr("noop_max") == 5
    assert env.get_wrapper_attr("terminal_on_life_loss") is True


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 2}, "gym.make_vec"),
        ({"num_threads": 2}, "gym.make_vec"),
        ({"seeding": "ale_py"}, "seeding='ale_py'"),
        ({"obs_type": "ram"}, "AtariVecRaw"),
        ({"maxpool": False}, "maxpool=False"),
        ({"life_loss_info": True}, "life_loss_info=True"),
        ({"not_an_option": 1}, "not_an_option"),
    ],
)
def test_make_rejects_kwargs_without_equivalent(kwargs, message):
    with pytest.raises(TypeError, match=message):
        gym.make("AtariVec/Breakout-v5", **kwargs)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("reward_clipping", [False, True])
def test_make_matches_make_vec_bit_for_bit(reward_clipping, closing):
    # Defaults otherwise: 30 no-ops, fire reset; the seed makes both draw alike.
    kwargs = {"reward_clipping": reward_clipping, "repeat_action_probability": 0.25}
    ref = gym.make("AtariVec/Breakout-v5", **kwargs)
    ours = gym.make_vec("AtariVec/Breakout-v5", num_envs=1, **kwargs)
    closing(ref)
    closing(ours)
    ref_obs, _ = ref.reset(seed=5)
    our_obs, _ = ours.reset(seed=5)
    np.testing.assert_array_equal(our_obs[0], ref_obs)
    # FIRE first so the ball is in play and frames (and rewards) actually change.
    actions = np.random.default_rng(0).integers(0, 4, size=60)
    actions[0] = 1
    changed = 0
    for step, a in enumerate(actions):
        ref_obs, ref_rew, ref_term, ref_trunc, _ = ref.step(int(a))
        previous = our_obs[0].copy()
        our_obs, our_rew, our_term, our_trunc, _ = ours.step(np.array([a]))
        np.testing.assert_array_equal(our_obs[0], ref_obs, f"obs, step {step}")
        assert our_rew[0] == ref_rew, step
        assert (our_term[0], our_trunc[0]) == (ref_term, ref_trunc), step
        changed += not np.array_equal(previous, our_obs[0])
    assert changed > 40


@pytest.mark.timeout(120)
def test_module_prefix_in_a_fresh_interpreter():
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'atari_vec' not in sys.modules\n"
        "env = gym.make_vec('atari_vec:AtariVec/Pong-v5', num_envs=2)\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(type(env).__name__, env.game, obs.shape)\n"
        "env.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=100, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "AtariVectorEnv pong (2, 4, 84, 84)" in out.stdout


@pytest.mark.timeout(60)
def test_dict_info_to_list_gives_per_env_infos(closing):
    """RLlib-style use: list-of-dicts infos through Gymnasium's DictInfoToList."""
    envs = DictInfoToList(
        gym.make_vec(
            "AtariVec/Breakout-v5",
            num_envs=3,
            autoreset_mode="SameStep",
            max_num_frames_per_episode=40,
            noop_max=0,  # ALE counts the reset's frames too: none here
            use_fire_reset=False,
        )
    )
    closing(envs)
    _, infos = envs.reset(seed=0)
    assert isinstance(infos, list) and len(infos) == 3
    assert [int(i["env_id"]) for i in infos] == [0, 1, 2]
    assert all(int(i["lives"]) == 5 for i in infos)
    ended = False
    for _ in range(10):
        _, _, term, trunc, infos = envs.step(np.zeros(3, dtype=np.int64))
        assert isinstance(infos, list) and len(infos) == 3
        for i, info in enumerate(infos):
            assert int(info["env_id"]) == i
            assert ("final_obs" in info) == bool(term[i] or trunc[i])
        ended |= bool((term | trunc).any())
    assert ended
    # The native episode statistics come through per environment.
    assert all(int(info["episode"]["l"]) == 10 for info in infos)
    assert all(info["final_obs"].shape == (4, 84, 84) for info in infos)


@pytest.mark.timeout(60)
def test_render_mode_reaches_both_entry_points(closing):
    kwargs = {"noop_max": 0, "use_fire_reset": False, "render_mode": "rgb_array"}
    ref = gym.make("AtariVec/Pong-v5", **kwargs)
    ours = gym.make_vec("AtariVec/Pong-v5", num_envs=2, **kwargs)
    closing(ref)
    closing(ours)
    ref.reset(seed=0)
    ours.reset(seed=0)
    for _ in range(30):
        ref.step(0)
        ours.step(np.zeros(2, dtype=np.int64))
    screen = ref.render()
    assert screen.shape == (210, 160, 3)
    np.testing.assert_array_equal(ours.render()[0], screen)


def test_make_and_make_vec_start_from_the_same_defaults():
    """gym.make (the reference stack) and gym.make_vec (the native env) of every AtariVec id
    take their defaults from one place: AtariVectorEnv's signature, itself read from the C++
    EnvConfig/PoolConfig."""
    import inspect

    from atari_vec import _core
    from atari_vec.registration import make_reference_env

    native = inspect.signature(atari_vec.AtariVectorEnv).parameters
    reference = inspect.signature(make_reference_env).parameters
    shared = set(native) & set(reference) - {"game"}
    assert len(shared) >= 20
    for name in shared:
        assert reference[name].default == native[name].default, name
    env, pool = _core.EnvConfig(), _core.PoolConfig()
    for name in ("frameskip", "img_height", "img_width", "stack_num", "noop_max", "maxpool",
                 "episodic_life", "life_loss_info", "reward_clipping", "use_fire_reset",
                 "max_num_frames_per_episode", "channels_last", "grayscale_newaxis", "raw"):
        assert native[name].default == getattr(env, name), name
    assert native["repeat_action_probability"].default == env.repeat_action_probability
    for name in ("batch_size", "num_threads", "thread_affinity_offset"):
        assert native[name].default == getattr(pool, name), name
    # Every registered id: its spec kwargs leave these defaults to the constructor.
    for spec in gym.registry.values():
        if spec.id.startswith("AtariVec/"):
            assert set(spec.kwargs) == {"game"}, spec.id
