"""State snapshots: clone_states / restore_states.

The backbone: on every game, a state cloned mid-episode and restored into another pool (other
envs, other worker threads, a different seed) continues bit for bit like the original for
hundreds of random steps: observations, full screens, rewards, flags, lives, frame counters.
Then the round trip in every autoreset mode and in async mode, and bad rows.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

import atari_vec
from atari_vec import _core

ALL_GAMES = atari_vec.list_games()
STEPS_AFTER = 250

# Preprocessed screens (frame stack and max-pool frames in the state), sticky actions and
# ALE's RNG in the state; and RAM observations with no sticky actions and no RNG, with
# resets that end right after ALE's own (no no-ops, no FIRE), so that an env fresh from its
# reset is in the state ALE leaves it in: mid-frame for some games (Qbert, Tetris).
SCREENS = dict(repeat_action_probability=0.25, render_mode="rgb_array", max_num_frames_per_episode=5000)
RAM = dict(obs_type="ram", stack_num=2, noop_max=0, use_fire_reset=False, max_num_frames_per_episode=5000)


def continue_alike(game: str, kwargs: dict, include_rng: bool, seed: int, steps_a: int = 60,
                   steps_b: int = 0) -> int:
    """Clone both envs of pool `a` after `steps_a` random steps, restore them crosswise into
    pool `b` (after `steps_b` steps of its own), step both with the same random actions and
    assert every result equal. Returns the number of episodes that ended after the restore
    (autoresets compared too)."""
    a = atari_vec.AtariVectorEnv(game, 2, **kwargs)
    b = atari_vec.AtariVectorEnv(game, 2, **kwargs)
    try:
        a.reset(seed=seed)
        b.reset(seed=seed + 1000)  # other emulators, other RNG streams
        n = a.single_action_space.n
        rng = np.random.default_rng(seed)
        for _ in range(steps_a):
            a.step(rng.integers(0, n, 2))
        for _ in range(steps_b):
            b.step(rng.integers(0, n, 2))
        states = a.clone_states(include_rng=include_rng)
        assert states.shape == (2, a.state_size) and states.dtype == np.uint8
        b.restore_states(states, env_ids=[1, 0])  # a's env 0 into b's env 1 and back
        ended = 0
        for t in range(STEPS_AFTER):
            act = rng.integers(0, n, 2)
            ra, rb = a.step(act), b.step(act[::-1].copy())
            for k, name in enumerate(("observation", "reward", "terminated", "truncated")):
                np.testing.assert_array_equal(ra[k], rb[k][::-1], f"{game}: {name} at step {t}")
            for key in ("lives", "frame_number", "episode_frame_number", "reward"):
                np.testing.assert_array_equal(ra[4][key], rb[4][key][::-1], f"{game}: info[{key!r}] at step {t}")
            if "render_mode" in kwargs:
                sa, sb = a.render(), b.render()
                np.testing.assert_array_equal(sa[0], sb[1], f"{game}: screen of env 0 at step {t}")
                np.testing.assert_array_equal(sa[1], sb[0], f"{game}: screen of env 1 at step {t}")
            ended += int((ra[2] | ra[3]).sum())
        return ended
    finally:
        a.close()
        b.close()


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("game", ALL_GAMES)
def test_restore_continues_bit_for_bit_on_every_game(game):
    continue_alike(game, SCREENS, include_rng=True, seed=3)
    # A played state into an env fresh from its reset, and a fresh state into a played env.
    continue_alike(game, RAM, include_rng=False, seed=4)
    continue_alike(game, RAM, include_rng=False, seed=5, steps_a=0, steps_b=40)


def test_every_game_is_covered():
    assert len(ALL_GAMES) >= 100 and {"qbert", "tetris", "pitfall2", "miniature_golf"} <= set(ALL_GAMES)


def test_build_has_the_ale_patch():
    # The exactness above needs our ALE patch (stock ALE 0.12.1 diverges on Qbert and Tetris).
    assert _core.ALE_PATCHED


def test_rows_are_plain_bytes(closing):
    env = atari_vec.AtariVectorEnv("pong", 2, obs_type="ram")
    closing(env)
    env.reset(seed=0)
    s1 = env.clone_states()
    s2 = env.clone_states()
    assert (s1 == s2).all(), "cloning twice without stepping gives the same bytes"
    assert pickle.loads(pickle.dumps(s1)).tobytes() == s1.tobytes()
    rows = np.empty(2, dtype=object)
    rows[0], rows[1] = s1[0].copy(), s1[1].copy()
    env.step(np.zeros(2, dtype=np.int64))
    env.restore_states(np.stack(list(rows)))
    assert (env.clone_states() == s1).all()
    one = env.clone_states(1)
    assert one.shape == (1, env.state_size)
    env.restore_states(one[0], env_ids=1)  # a single row for a single env


def run_from(env, states, env_ids, actions):
    env.restore_states(states, env_ids=env_ids)
    return [tuple(np.array(x) for x in env.step(a)[:4]) for a in actions]


@pytest.mark.parametrize("mode", ["next_step", "same_step", "disabled"])
def test_round_trip_in_every_autoreset_mode(mode, closing):
    """Clone at every step of a run that ends episodes (the terminal step and the one after
    it included) and check that the restored env's next steps match the original's."""
    kwargs = dict(autoreset_mode=mode, max_num_frames_per_episode=400, noop_max=5)
    a = atari_vec.AtariVectorEnv("breakout", 2, **kwargs)
    b = atari_vec.AtariVectorEnv("breakout", 2, **kwargs)
    closing(a)
    closing(b)
    a.reset(seed=1)
    b.reset(seed=2)
    rng = np.random.default_rng(1)
    checked_at_end = 0
    for t in range(260):
        states = a.clone_states(include_rng=True)
        acts = rng.integers(0, 4, (3, 2))
        if mode == "disabled":
            over = np.zeros(2, dtype=bool)
        ref = []
        for act in acts:
            r = a.step(act)
            ref.append(tuple(np.array(x) for x in r[:4]))
            if mode == "disabled" and (r[2] | r[3]).any():
                break
        got = run_from(b, states, [0, 1], acts[: len(ref)])
        for k, (x, y) in enumerate(zip(ref, got)):
            for f in range(4):
                np.testing.assert_array_equal(x[f], y[f], f"{mode}: field {f}, step {t}+{k}")
        if mode == "disabled":
            over = ref[-1][2] | ref[-1][3]
            if over.any():
                checked_at_end += 1
                a.reset(options={"reset_mask": over})
                b.reset(options={"reset_mask": over})
        else:
            checked_at_end += int((ref[0][2] | ref[0][3]).any())
        # Continue `a` from where the comparison left it: b is in the same state now.
    assert checked_at_end > 0, "no clone was taken at an episode's end"


def test_round_trip_when_the_reset_ran_ahead(closing):
    """NEXT_STEP: after a terminal step an idle worker resets the env ahead of its next step.
    A state cloned then must make the restored env report that reset on its next step."""
    kwargs = dict(max_num_frames_per_episode=200, noop_max=0)
    a = atari_vec.AtariVectorEnv("pong", 1, **kwargs)
    b = atari_vec.AtariVectorEnv("pong", 1, **kwargs)
    closing(a)
    closing(b)
    a.reset(seed=0)
    b.reset(seed=5)
    seen_ready = 0
    for episode in range(3):
        before = a._core.resets_ahead
        while True:
            obs, rew, term, trunc, info = a.step(np.array([1]))
            if term[0] or trunc[0]:
                break
        deadline = time.monotonic() + 5.0
        while a._core.resets_ahead == before and time.monotonic() < deadline:
            time.sleep(0.001)
        seen_ready += a._core.resets_ahead > before
        states = a.clone_states(include_rng=True)
        ref = [a.step(np.array([2]))[:4] for _ in range(3)]
        b.restore_states(states)
        got = [b.step(np.array([2]))[:4] for _ in range(3)]
        for x, y in zip(ref, got):
            for f in range(4):
                np.testing.assert_array_equal(x[f], y[f])
        assert ref[0][0].any() and (ref[0][0][0, :3] == 0).all(), "the first step shows the new episode"
    assert seen_ready > 0, "the reset never ran ahead, so this path was not tested"


def test_round_trip_in_async_mode(closing):
    """Async pool: clone the envs of a received batch, run them on; a sync pool restored from
    the same states and given each env's actions must produce each env's results."""
    a = atari_vec.AtariVectorEnv("breakout", 4, batch_size=2, max_num_frames_per_episode=600)
    closing(a)
    obs, info = a.reset(seed=3)
    rng = np.random.default_rng(3)
    ids = info["env_id"]
    for _ in range(40):
        a.send(rng.integers(0, 4, 2))
        obs, rew, term, trunc, info = a.recv()
        ids = info["env_id"]
    cloned_ids = ids.copy()
    states = a.clone_states(cloned_ids, include_rng=True)
    with pytest.raises(ValueError, match="being stepped"):
        a.clone_states([int(e) for e in range(4) if e not in cloned_ids])
    history = {int(e): [] for e in cloned_ids}
    for _ in range(120):
        acts = rng.integers(0, 4, 2)
        a.send(acts)
        for e, act in zip(ids, acts):
            if int(e) in history:
                history[int(e)].append([int(act)])
        obs, rew, term, trunc, info = a.recv()
        for i, e in enumerate(info["env_id"]):
            if int(e) in history and len(history[int(e)][-1]) == 1:
                history[int(e)][-1].append((obs[i].copy(), rew[i], term[i], trunc[i]))
        ids = info["env_id"]
    b = atari_vec.AtariVectorEnv("breakout", 2, max_num_frames_per_episode=600)
    closing(b)
    b.reset(seed=99)
    b.restore_states(states)
    e0, e1 = (int(e) for e in cloned_ids)
    done = [h for h in (history[e0], history[e1])]
    length = min(sum(len(x) == 2 for x in h) for h in done)
    assert length > 20
    for t in range(length):
        r = b.step(np.array([done[0][t][0], done[1][t][0]]))
        for j in range(2):
            want = done[j][t][1]
            np.testing.assert_array_equal(r[0][j], want[0], f"obs of env {j}, step {t}")
            assert (r[1][j], r[2][j], r[3][j]) == want[1:], f"env {j}, step {t}"


# -- bad input ------------------------------------------------------------------------------


@pytest.fixture
def pong(closing):
    env = atari_vec.AtariVectorEnv("pong", 2, obs_type="ram")
    closing(env)
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.ones(2, dtype=np.int64))
    return env


def refused(env, states, match, error=ValueError, env_ids=None):
    before = env.clone_states(include_rng=True)
    with pytest.raises(error, match=match):
        env.restore_states(states, env_ids=env_ids)
    assert (env.clone_states(include_rng=True) == before).all(), "a refused restore changed nothing"
    env.step(np.zeros(2, dtype=np.int64))  # and the env still works


def test_wrong_rows_are_refused_and_change_nothing(pong, closing):
    good = pong.clone_states()
    refused(pong, good[:, :-1], "shape")
    refused(pong, good.astype(np.int16), "uint8", TypeError)
    refused(pong, list(good), "uint8", TypeError)
    refused(pong, good[:1], "shape")
    refused(pong, good, "out of range|lie in", env_ids=[0, 5])
    refused(pong, good, "appears twice", env_ids=[1, 1])
    rng = np.random.default_rng(0)
    refused(pong, rng.integers(0, 256, good.shape, dtype=np.uint8), "not an atari_vec state")
    bad = good.copy()
    bad[1, -len(bad[1]) // 2] ^= 0xFF  # inside the payload
    refused(pong, bad, "state 1 .*corrupt")
    bad = good.copy()
    bad[0, 24:32] ^= 0x01  # the build hash (header: magic, version, sizes, row width, build)
    refused(pong, bad, "another build")
    bad = good.copy()
    bad[0, 8] += 1  # the format version
    refused(pong, bad, "format version")

    other_game = atari_vec.AtariVectorEnv("breakout", 2, obs_type="ram")
    closing(other_game)
    other_game.reset(seed=0)
    s = other_game.clone_states()
    refused(pong, s, "another game \\(breakout\\)") if s.shape == good.shape else refused(pong, s, "shape")
    # Same game, other settings (same width: only the fingerprint differs).
    other = atari_vec.AtariVectorEnv("pong", 2, obs_type="ram", frameskip=3)
    closing(other)
    other.reset(seed=0)
    s = other.clone_states()
    assert s.shape == good.shape
    refused(pong, s, "other settings")


def test_random_rows_never_crash(pong):
    """Fuzz: random bytes, random bytes behind a valid header, and valid rows with random
    bytes flipped: every one is refused with ValueError."""
    good = pong.clone_states()
    rng = np.random.default_rng(1)
    header = 96
    for i in range(300):
        kind = i % 3
        rows = good.copy()
        if kind == 0:
            rows[:] = rng.integers(0, 256, rows.shape, dtype=np.uint8)
        elif kind == 1:
            rows[:, header:] = rng.integers(0, 256, (2, rows.shape[1] - header), dtype=np.uint8)
        else:
            for _ in range(rng.integers(1, 5)):
                rows[rng.integers(0, 2), rng.integers(header, rows.shape[1])] ^= rng.integers(1, 256)
            if (rows == good).all():
                continue
        with pytest.raises(ValueError):
            pong.restore_states(rows)
    pong.restore_states(good)
    assert (pong.clone_states() == good).all()


def test_only_idle_envs_and_open_pools(closing):
    env = atari_vec.AtariVectorEnv("pong", 2, obs_type="ram")
    closing(env)
    with pytest.raises(RuntimeError, match="before reset"):
        env.clone_states()
    env.reset(seed=0)
    s = env.clone_states()
    env.send(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="being stepped"):
        env.restore_states(s)
    env.recv()
    env.restore_states(s)
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.clone_states()
