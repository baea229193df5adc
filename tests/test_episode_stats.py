"""Native episode statistics (info["episode"]) and rendering."""

from __future__ import annotations

import numpy as np
import pytest

import atari_vec


def collect(env, steps, seed=0, rng_seed=0):
    """Step with random actions; return per-env lists of (return, length) from info and the
    same figures accumulated here from the rewards the env returned."""
    rng = np.random.default_rng(rng_seed)
    obs, info = env.reset(seed=seed)
    ids = info["env_id"]
    seen = set(ids.tolist())  # in async mode the other envs' reset results come later
    reported = {e: [] for e in range(env.num_envs)}
    running = {e: [0, 0] for e in range(env.num_envs)}
    for _ in range(steps):
        env.send(rng.integers(0, env.single_action_space.n, size=env.batch_size))
        obs, rew, term, trunc, info = env.recv()
        ids = info["env_id"]
        for row, e in enumerate(ids):
            if e not in seen:
                seen.add(e)
                continue
            running[e][0] += int(rew[row])
            running[e][1] += 1
            if "episode" in info and info["_episode"][row]:
                reported[e].append((float(info["episode"]["r"][row]),
                                    int(info["episode"]["l"][row]), tuple(running[e])))
                running[e] = [0, 0]
            elif "episode" in info:
                assert info["episode"]["r"][row] == 0 and info["episode"]["l"][row] == 0
        if env.autoreset_mode.value == "NextStep":
            # The step after an end is the reset step: not part of any episode.
            for row, e in enumerate(ids):
                if term[row] or trunc[row]:
                    running[e] = [0, -1]
    return reported


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
@pytest.mark.parametrize("batch_size", [0, 2])
def test_returns_and_lengths_match_the_rewards(mode, batch_size, closing):
    # Unclipped rewards so the running sum is the return; short episodes via the frame limit.
    env = atari_vec.AtariVectorEnv("breakout", 4, batch_size=batch_size, autoreset_mode=mode,
                                   reward_clipping=False, max_num_frames_per_episode=600)
    closing(env)
    # 600 batches: ~300 steps per env even in async mode, where a preempted worker holds an
    # env back (episodes end by step 150, at the frame limit).
    reported = collect(env, 600)
    assert sum(len(v) for v in reported.values()) >= 4
    for e, episodes in reported.items():
        for r, length, (run_r, run_l) in episodes:
            assert (r, length) == (run_r, run_l), f"env {e}"


def test_return_is_unclipped_with_reward_clipping(closing):
    # Space invaders scores 5..30 per alien: clipped rewards are 1, the return is not.
    env = atari_vec.AtariVectorEnv("space_invaders", 2, reward_clipping=True,
                                   max_num_frames_per_episode=2000)
    closing(env)
    reported = collect(env, 600)
    episodes = [ep for eps in reported.values() for ep in eps]
    assert episodes
    assert any(r > run_r for r, _, (run_r, _) in episodes)  # return exceeds the clipped sum
    assert all(length == run_l for _, length, (_, run_l) in episodes)


def test_life_loss_info_reports_the_whole_game(closing):
    """With life_loss_info every life lost terminates, but the episode statistics cover the
    whole game: they are reported only when the game as played is over (info["terminated"],
    lives 0), with the return of every unclipped reward since the reset (info["reward"])."""
    # Q*bert: four lives that a random policy loses quickly, and 25 points a cube (clipped to
    # 1 in the rewards returned, not in the return).
    env = atari_vec.AtariVectorEnv("qbert", 2, life_loss_info=True, noop_max=0)
    closing(env)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    running = {e: [0, 0] for e in range(2)}  # per env: unclipped return, steps since reset
    life_losses = reports = clipped_away = 0
    for _ in range(1500):
        _, rew, term, _, info = env.step(rng.integers(0, env.single_action_space.n, size=2))
        ended = info["_episode"] if "episode" in info else np.zeros(2, dtype=bool)
        for row, e in enumerate(info["env_id"]):
            running[e][0] += int(info["reward"][row])
            running[e][1] += 1
            clipped_away += int(info["reward"][row] != rew[row])
            assert ended[row] == info["terminated"][row], f"env {e}: report != end of game"
            if not ended[row]:
                life_losses += int(term[row])
                continue
            reports += 1
            assert term[row] and info["lives"][row] == 0, f"env {e} reported with lives left"
            assert info["episode"]["r"][row] == running[e][0], f"env {e}: not the game's return"
            assert info["episode"]["l"][row] == running[e][1], f"env {e}: not the game's length"
            running[e] = [0, -1]  # the next step (NEXT_STEP) is the reset, in no episode
    assert reports >= 2, "the run should end games"
    assert life_losses >= reports, "lives lost before the end should not be reports"
    assert clipped_away > 0, "some reward should exceed 1, so clipping shows"


def test_render(closing):
    env = atari_vec.AtariVectorEnv("pong", 3, render_mode="rgb_array", noop_max=0)
    closing(env)
    env.reset(seed=0)
    frames = env.render()
    assert isinstance(frames, tuple)  # as Gymnasium's vector envs return them
    frames = np.stack(frames)
    assert frames.shape == (3, 210, 160, 3) and frames.dtype == np.uint8
    import ale_py

    ale = ale_py.ALEInterface()
    ale.loadROM(ale_py.roms.get_rom_path("pong"))
    ale.reset_game()
    ale.act(ale_py.Action.FIRE)  # fire reset, as the env did
    np.testing.assert_array_equal(frames[0], ale.getScreenRGB())
    assert np.stack(env.render([2])).shape == (1, 210, 160, 3)
    with pytest.raises(ValueError):
        env.render([5])
    assert atari_vec.AtariVectorEnv("pong", 1).render() is None


def test_render_refuses_envs_in_flight(closing):
    env = atari_vec.AtariVectorEnv("pong", 4, batch_size=2, render_mode="rgb_array",
                                   frameskip=20000)
    closing(env)
    obs, info = env.reset()
    env.render(info["env_id"])  # just received: fine
    env.send(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="being stepped"):
        env.render(info["env_id"])


def test_gif_recorder(tmp_path):
    pytest.importorskip("PIL")
    from atari_vec.recording import GifRecorder

    path = tmp_path / "clip.gif"
    env = GifRecorder(atari_vec.AtariVectorEnv("pong", 2, render_mode="rgb_array"), path, fps=25)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        env.step(rng.integers(0, 6, size=2))
    env.close()
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        assert im.size == (160, 210) and im.n_frames > 1
        # Pillow merges identical consecutive frames, adding up their durations.
        total = sum(frame.info["duration"] for frame in ImageSequence.Iterator(im))
    assert total == 61 * 40  # GIF stores centiseconds: 25 fps is exactly 40 ms
