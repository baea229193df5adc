"""Autoreset modes, noop reset, modes/difficulties and continuous actions, with exact values."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from ale_py import ALEInterface, LoggerMode, roms
from ale_py.vector_env import AtariVectorEnv as AlePyVectorEnv

import atari_vec
from atari_vec.registration import env_name
from conftest import lockstep

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


def test_disabled_async_resets_per_env_not_by_mask(closing):
    """DISABLED works with async batches: ended envs are reset per env (send_reset; see
    test_per_env_send.py), while reset_mask stays a synchronous-mode call."""
    env = atari_vec.AtariVectorEnv("breakout", 4, batch_size=2, autoreset_mode="Disabled")
    closing(env)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="batch_size == num_envs"):
        env.reset(options={"reset_mask": np.array([True, False, False, False])})


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


def ale_by_hand(game, seed, actions, frameskip, mode=None, difficulty=None):
    """ale-py's ALEInterface driven as ale-py's AtariEnv drives it (seed, load, mode and
    difficulty, reset, then each action for `frameskip` frames, sticky with probability
    0.25). Returns one (screen, RAM, reward, game over) per step, the reset first."""
    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.25)
    ale.loadROM(roms.get_rom_path(game))
    if mode is not None:
        ale.setMode(mode)
    if difficulty is not None:
        ale.setDifficulty(difficulty)
    ale.reset_game()
    action_set = ale.getMinimalActionSet()
    out = [(ale.getScreenRGB(), ale.getRAM().copy(), 0, False)]
    for a in actions:
        reward = sum(ale.act(action_set[a]) for _ in range(frameskip))
        out.append((ale.getScreenRGB(), ale.getRAM().copy(), reward, ale.game_over()))
    return out


@pytest.mark.parametrize(
    "game, mode, difficulty",
    [("breakout", 12, None), ("breakout", None, 1), ("space_invaders", 5, 1), ("pong", 1, 2)],
)
def test_mode_and_difficulty_take_effect_as_in_ale(game, mode, difficulty, closing):
    """The flavour chosen is the one ALE plays after setMode/setDifficulty: screens, RAM,
    rewards and game over match ale-py's ALEInterface step for step (same seed, same
    actions), and differ from the game's default flavour."""
    num_envs, steps, frameskip, seed = 2, 150, 4, 7
    env = gym.make_vec(f"AtariVecRaw/{env_name(game)}-v5", num_envs=num_envs, obs_type="ram",
                       render_mode="rgb_array", mode=mode, difficulty=difficulty,
                       seeding="ale_py")  # ALE seeded with seed + i, as by hand below
    closing(env)
    actions = np.random.default_rng(seed).integers(0, env.single_action_space.n,
                                                    (steps, num_envs))
    ram, _ = env.reset(seed=seed)
    ours = [[(screen, ram[i], 0, False)] for i, screen in enumerate(env.render())]
    for a in actions:
        ram, rew, term, trunc, _ = env.step(a)
        assert not trunc.any()
        for i, screen in enumerate(env.render()):
            ours[i].append((screen, ram[i], int(rew[i]), bool(term[i])))
    for i in range(num_envs):
        ref = ale_by_hand(game, seed + i, actions[:, i], frameskip, mode, difficulty)
        default = ale_by_hand(game, seed + i, actions[:, i], frameskip)
        differs_from_default = False
        for t, (mine, theirs, plain) in enumerate(zip(ours[i], ref, default)):
            np.testing.assert_array_equal(mine[0], theirs[0], f"env {i} screen, step {t}")
            np.testing.assert_array_equal(mine[1], theirs[1], f"env {i} RAM, step {t}")
            assert mine[2:] == theirs[2:], f"env {i} reward, game over at step {t}"
            differs_from_default |= not (np.array_equal(theirs[0], plain[0])
                                         and np.array_equal(theirs[1], plain[1]))
            if mine[3]:
                break  # the next step autoresets
        assert differs_from_default, f"env {i}: the flavour changed nothing, so tested nothing"


def random_continuous_actions(space, steps, num_envs, seed):
    """Uniform float32 actions (radius, theta, fire) over the whole Box."""
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, (steps, num_envs, 3)).astype(np.float32)


@pytest.mark.parametrize("game", ["Breakout", "Seaquest"])
def test_continuous_raw_matches_gym_make(game, closing):
    """Continuous actions against SyncVectorEnv of gym.make("ALE/<game>-v5", continuous=True),
    bit for bit, across an episode boundary: ale-py's polar mapping onto the 18 actions (all
    eight directions matter in Seaquest, a joystick game) and the radius as paddle strength
    (Breakout has paddles, moved by strength x the paddle step)."""
    num_envs, steps, seed = 2, 300, 5
    kwargs = dict(continuous=True, max_num_frames_per_episode=600)
    ours = gym.make_vec(f"AtariVecRaw/{game}-v5", num_envs=num_envs, **kwargs)
    ref = gym.vector.SyncVectorEnv([lambda: gym.make(f"ALE/{game}-v5", **kwargs)] * num_envs)
    closing(ours)
    closing(ref)
    actions = random_continuous_actions(ours.single_action_space, steps, num_envs, 0)
    ended, rewarded = lockstep(ours, ref, actions, seed=seed)
    assert ended > 0 and rewarded > 0, (ended, rewarded)


def test_continuous_matches_ale_py_vector_env(closing):
    """The preprocessed env with continuous actions against ale-py's AtariVectorEnv
    (continuous=True), bit for bit, across episode boundaries."""
    num_envs, steps, seed = 3, 300, 3
    kwargs = dict(continuous=True, noop_max=0, max_num_frames_per_episode=800)
    ours = atari_vec.AtariVectorEnv("breakout", num_envs, seeding="ale_py", **kwargs)
    theirs = AlePyVectorEnv("breakout", num_envs, **kwargs)
    closing(ours)
    closing(theirs)
    actions = random_continuous_actions(ours.single_action_space, steps, num_envs, 1)
    ended, rewarded = lockstep(ours, theirs, actions, seed=seed,
                               info_keys=("env_id", "lives", "episode_frame_number", "frame_number"))
    assert ended > 0 and rewarded > 0, (ended, rewarded)


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
