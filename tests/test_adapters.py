"""The Stable-Baselines3 and TorchRL adapters, run against the real libraries."""

from __future__ import annotations

import numpy as np
import pytest

import atari_vec


def _native_trajectory(game: str, actions: np.ndarray, **kwargs):
    """Per step of a SAME_STEP AtariVectorEnv driven by `actions` (steps x envs): the
    observation, the rewards, the done flags, the final observations (None if no env ended)
    and the unclipped rewards; the reset comes first."""
    num_envs = actions.shape[1]
    env = atari_vec.AtariVectorEnv(game, num_envs, autoreset_mode="SameStep", **kwargs)
    try:
        obs, _ = env.reset(seed=3)
        out = [(obs.copy(), None, None, None, None)]
        for a in actions:
            obs, rew, term, trunc, info = env.step(a)
            final = info["final_obs"].copy() if "final_obs" in info else None
            out.append((obs.copy(), rew.copy(), term | trunc, final, info["reward"].copy()))
        return out
    finally:
        env.close()


# -- Stable-Baselines3 ----------------------------------------------------------------------


@pytest.fixture
def sb3():
    return pytest.importorskip("stable_baselines3")


@pytest.mark.timeout(60)
def test_sb3_vec_env_contract(sb3):
    from stable_baselines3.common.preprocessing import (
        is_image_space,
        is_image_space_channels_first,
    )
    from stable_baselines3.common.vec_env import VecEnv

    from atari_vec.adapters.sb3 import AtariSB3VecEnv, make_sb3_vec_env

    venv = make_sb3_vec_env("breakout", 3, max_num_frames_per_episode=200)
    try:
        assert isinstance(venv, VecEnv) and isinstance(venv, AtariSB3VecEnv)
        assert venv.num_envs == 3
        assert venv.observation_space.shape == (4, 84, 84)
        assert is_image_space(venv.observation_space)
        assert is_image_space_channels_first(venv.observation_space)
        assert venv.action_space.n == 4
        assert venv.render_mode is None
        assert venv.get_attr("game") == ["breakout"] * 3
        assert venv.get_attr("game", indices=1) == ["breakout"]
        assert venv.has_attr("game") and not venv.has_attr("no_such_attribute")
        assert venv.env_method("get_action_meanings", indices=[0])[0][:2] == ["NOOP", "FIRE"]
        assert venv.env_is_wrapped(sb3.common.monitor.Monitor) == [False] * 3
        with pytest.raises(NotImplementedError, match="subset"):
            venv.set_attr("game", "pong", indices=[0])
        with pytest.raises(NotImplementedError, match="subset"):
            venv.env_method("reset", indices=[1])

        assert venv.seed(7) == [7, 8, 9]
        obs = venv.reset()
        assert isinstance(obs, np.ndarray) and obs.shape == (3, 4, 84, 84)
        assert obs.dtype == np.uint8
        assert [int(i["env_id"]) for i in venv.reset_infos] == [0, 1, 2]
        obs, rewards, dones, infos = venv.step(np.zeros(3, dtype=np.int64))
        assert obs.shape == (3, 4, 84, 84)
        assert rewards.dtype == np.float32 and rewards.shape == (3,)
        assert dones.dtype == np.bool_ and not dones.any()
        assert isinstance(infos, list) and len(infos) == 3
        assert all(i["TimeLimit.truncated"] is False for i in infos)
        assert all("terminal_observation" not in i for i in infos)
    finally:
        venv.close()


@pytest.mark.timeout(60)
def test_sb3_seed_reproduces_reset(sb3):
    from atari_vec.adapters.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("breakout", 2)
    try:
        venv.seed(11)
        first = venv.reset().copy()
        venv.seed(11)
        again = venv.reset()
        np.testing.assert_array_equal(first, again)
        # Unseeded resets draw fresh noop counts, so some env ends up elsewhere.
        differs = False
        for _ in range(5):
            differs |= not np.array_equal(venv.reset(), first)
        assert differs
    finally:
        venv.close()


@pytest.mark.timeout(120)
def test_sb3_terminal_observation_and_episode_info(sb3):
    from atari_vec.adapters.sb3 import make_sb3_vec_env

    # Random actions on Space Invaders: aliens shot within the episode score 5 to 30 (1 once
    # clipped), so rewards and returns are compared where they are not zero.
    steps, n = 60, 2
    # ale-py's frame count (from the end of the reset) makes every episode exactly 50 steps.
    kwargs = dict(max_num_frames_per_episode=200, seeding="ale_py")
    actions = np.random.default_rng(0).integers(0, 6, size=(steps, n))
    native = _native_trajectory("space_invaders", actions, **kwargs)
    venv = make_sb3_vec_env("space_invaders", n, **kwargs)
    try:
        venv.seed(3)
        obs = venv.reset()
        np.testing.assert_array_equal(obs, native[0][0])
        ends = 0
        returns = np.zeros(n)  # unclipped, since each env's reset
        episode_returns = []
        for t in range(1, steps + 1):
            obs, rewards, dones, infos = venv.step(actions[t - 1])
            nat_obs, nat_rew, nat_done, nat_final, nat_unclipped = native[t]
            np.testing.assert_array_equal(obs, nat_obs)
            np.testing.assert_array_equal(rewards, nat_rew)
            np.testing.assert_array_equal(dones, nat_done)
            returns += nat_unclipped
            for i in range(n):
                if not dones[i]:
                    assert "terminal_observation" not in infos[i] and "episode" not in infos[i]
                    continue
                ends += 1
                # The returned obs starts the next episode; the last one is in the info.
                np.testing.assert_array_equal(infos[i]["terminal_observation"], nat_final[i])
                assert not np.array_equal(infos[i]["terminal_observation"], obs[i])
                assert infos[i]["TimeLimit.truncated"] is True  # 200 frames = 50 steps
                assert infos[i]["episode"]["l"] == 50
                assert infos[i]["episode"]["r"] == returns[i]  # unclipped
                episode_returns.append(returns[i])
                returns[i] = 0
        assert ends == n
        assert min(episode_returns) > 0
        rewards_seen = np.array([native[t][1] for t in range(1, steps + 1)])
        unclipped = np.array([native[t][4] for t in range(1, steps + 1)])
        assert (rewards_seen != 0).sum() >= 2, "the rewards compared should not all be zero"
        assert (unclipped > rewards_seen).any(), "some reward should have been clipped"
    finally:
        venv.close()


@pytest.mark.timeout(120)
def test_sb3_rgb_observations_become_channels(sb3):
    from atari_vec.adapters.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("pong", 2, grayscale=False, stack_num=2, img_height=50, img_width=40)
    try:
        assert venv.observation_space.shape == (6, 50, 40)
        obs = venv.reset()
        assert obs.shape == (2, 6, 50, 40)
        raw = venv.vector_env.reset(seed=0)[0]
        venv.seed(0)
        obs = venv.reset()
        # Channel 3 * s + c is colour c of stacked frame s.
        for s in range(2):
            for c in range(3):
                np.testing.assert_array_equal(obs[:, 3 * s + c], raw[:, s, :, :, c])
    finally:
        venv.close()


@pytest.mark.timeout(60)
def test_sb3_render(sb3):
    from atari_vec.adapters.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("pong", 2, render_mode="rgb_array")
    try:
        assert venv.render_mode == "rgb_array"
        venv.reset()
        venv.step(np.zeros(2, dtype=np.int64))
        images = venv.get_images()
        assert len(images) == 2 and all(i.shape == (210, 160, 3) for i in images)
        np.testing.assert_array_equal(venv.env_method("render", indices=[1])[0], images[1])
        tiled = venv.render()
        assert tiled.ndim == 3 and tiled.shape[2] == 3
        assert tiled.size == 2 * images[0].size  # two screens side by side
    finally:
        venv.close()
    plain = make_sb3_vec_env("pong", 1)
    try:
        assert plain.get_images() == [None]
    finally:
        plain.close()


def test_sb3_rejects_other_modes(sb3):
    from atari_vec.adapters.sb3 import AtariSB3VecEnv, make_sb3_vec_env

    with pytest.raises(ValueError, match="SAME_STEP"):
        make_sb3_vec_env("pong", 2, autoreset_mode="NextStep")
    env = atari_vec.AtariVectorEnv("pong", 2, batch_size=1, autoreset_mode="SameStep")
    try:
        with pytest.raises(ValueError, match="batch_size"):
            AtariSB3VecEnv(env)
    finally:
        env.close()


@pytest.mark.timeout(300)
def test_sb3_ppo_cnn_policy_learns_without_error(sb3, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))  # SB3 makes a log folder even when quiet
    from stable_baselines3 import PPO

    from atari_vec.adapters.sb3 import make_sb3_vec_env

    torch.set_num_threads(1)
    venv = make_sb3_vec_env("breakout", 4, max_num_frames_per_episode=200, seeding="ale_py")
    try:
        model = PPO(
            "CnnPolicy",
            venv,
            n_steps=32,
            batch_size=64,
            n_epochs=1,
            seed=0,
            device="cpu",
            verbose=0,
        )
        assert model.get_env() is venv  # channel-first already: no VecTransposeImage
        model.learn(total_timesteps=256)
        assert model.num_timesteps == 256
        # 64 steps per env with 50-step episodes: one episode per env reached the logger.
        assert len(model.ep_info_buffer) == 4
        assert all(info["l"] == 50 for info in model.ep_info_buffer)
        action, _ = model.predict(venv.reset(), deterministic=True)
        assert action.shape == (4,)
    finally:
        venv.close()


# -- TorchRL --------------------------------------------------------------------------------


@pytest.fixture
def torchrl():
    return pytest.importorskip("torchrl")


def _scripted_policy(actions: np.ndarray):
    """A TorchRL policy playing actions[t] (one per env) at its t-th call."""
    import torch

    calls = iter(actions)

    def policy(td):
        td.set("action", torch.as_tensor(next(calls), dtype=torch.long))
        return td

    return policy


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["Disabled", "SameStep"])
def test_torchrl_rollout_matches_native(torchrl, mode):
    import torch

    from atari_vec.adapters.torchrl import make_torchrl_env

    # Random actions on Boxing: punches landed and taken score +-1 or +-2 (+-1 once
    # clipped), so rewards are compared where they are not zero, of both signs.
    steps, n = 60, 2
    # ale-py's frame count (from the end of the reset) makes every episode exactly 50 steps.
    kwargs = dict(max_num_frames_per_episode=200, seeding="ale_py")
    actions = np.random.default_rng(0).integers(0, 18, size=(steps, n))
    native = _native_trajectory("boxing", actions, **kwargs)
    env = make_torchrl_env("boxing", n, autoreset_mode=mode, **kwargs)
    try:
        assert tuple(env.batch_size) == (n,)
        assert env.observation_spec["observation"].shape == (n, 4, 84, 84)
        td = env.reset(seed=3)
        td = env.rollout(
            steps,
            policy=_scripted_policy(actions),
            tensordict=td,
            auto_reset=False,
            break_when_any_done=False,
        )
        assert td.batch_size == (n, steps)
        obs = td["observation"]
        assert obs.shape == (n, steps, 4, 84, 84) and obs.dtype == torch.uint8
        done = td["next", "done"].squeeze(-1)
        truncated = td["next", "truncated"].squeeze(-1)
        expected = torch.stack([torch.as_tensor(native[t][2]) for t in range(1, steps + 1)], 1)
        assert torch.equal(done, expected)
        assert torch.equal(truncated, expected)  # time-limit ends only
        assert done.sum() == n  # episode length 50
        rewards = td["next", "reward"].squeeze(-1).numpy()
        native_rewards = np.stack([native[t][1] for t in range(1, steps + 1)], 1)
        # TorchRL resets finished envs itself in DISABLED mode, so the whole rollout equals
        # the native SAME_STEP one. In SAME_STEP mode, when every env ends at once, TorchRL
        # discards the autoreset and calls a plain reset() (its VecGymEnvTransform does so on
        # purpose), which draws new noop counts: only the steps up to the end can match.
        last = steps if mode == "Disabled" else 50
        np.testing.assert_array_equal(rewards[:, :last], native_rewards[:, :last])
        assert (native_rewards[:, :last] > 0).any() and (native_rewards[:, :last] < 0).any()
        unclipped = np.stack([native[t][4] for t in range(1, steps + 1)], 1)
        assert (unclipped[:, :last] != native_rewards[:, :last]).any(), "no reward was clipped"
        for t in range(last):
            # "observation" at t is what the agent saw; "next" holds the true next one, which
            # is the terminal observation when the episode ended at t.
            np.testing.assert_array_equal(obs[:, t].numpy(), native[t][0], f"step {t}")
            nxt = td["next", "observation"][:, t].numpy()
            for i in range(n):
                want = native[t + 1][3][i] if expected[i, t] else native[t + 1][0][i]
                np.testing.assert_array_equal(nxt[i], want, f"next, step {t} env {i}")
        # Either way the step after the end starts a new episode: one frame, zero padding.
        assert obs[:, 50, :3].eq(0).all() and obs[:, 50, 3].ne(0).any()
        assert obs[:, 49, :3].ne(0).any()
    finally:
        env.close()


def test_torchrl_rejects_next_step(torchrl):
    from atari_vec.adapters.torchrl import make_torchrl_env

    with pytest.raises(ValueError, match="autoreset modes"):
        make_torchrl_env("pong", 2, autoreset_mode="NextStep")
