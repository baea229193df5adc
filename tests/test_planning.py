"""Batched planning: AtariVectorEnv.step_states.

Every walker's result must be what the pool's own env returns after restore_states and the
same steps (the reference: a one-env pool, one walker at a time), whatever worker ran it;
the pool's own episodes must be untouched; bad input must be refused with nothing changed.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import atari_vec

RAW_RAM = dict(obs_type="ram", stack_num=0, raw=True, noop_max=0, use_fire_reset=False,
               maxpool=False, reward_clipping=False, max_num_frames_per_episode=3000)
DEFAULT = dict(max_num_frames_per_episode=3000)


def walkers(env, n, rng, steps=40):
    """n states from random play of env's envs (some near or past an episode's end)."""
    rows = []
    k = env.num_envs
    while len(rows) < n:
        for _ in range(int(rng.integers(1, steps))):
            env.step(rng.integers(0, env.single_action_space.n, k))
        rows.append(env.clone_states())
    return np.concatenate(rows)[:n]


def reference(game, kwargs, state, action, dt):
    """restore_states + dt steps (stopping at the episode's end) on a fresh one-env pool."""
    ref = atari_vec.AtariVectorEnv(game, 1, **kwargs)
    try:
        ref.reset(seed=123)
        ref.restore_states(state[None])
        total, taken = 0, 0
        obs, rew, term, trunc, info = ref.step(np.array([action]))
        total, taken = int(rew[0]), 1
        while taken < dt and not (term[0] or trunc[0]):
            obs, rew, term, trunc, info = ref.step(np.array([action]))
            total += int(rew[0])
            taken += 1
        return obs[0], total, bool(term[0]), bool(trunc[0]), int(info["lives"][0]), taken, ref.clone_states()[0]
    finally:
        ref.close()


@pytest.mark.parametrize(("game", "kwargs"), [("ms_pacman", RAW_RAM), ("breakout", DEFAULT)],
                         ids=["ms_pacman-raw-ram", "breakout-default"])
def test_each_walker_matches_restore_and_step(game, kwargs, closing):
    env = atari_vec.AtariVectorEnv(game, 3, **kwargs)
    closing(env)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    states = walkers(env, 40, rng)
    own = env.clone_states(include_rng=True)
    actions = rng.integers(0, env.single_action_space.n, len(states))
    dt = rng.integers(1, 30, len(states))
    res = env.step_states(states, actions, dt)
    assert (env.clone_states(include_rng=True) == own).all(), "the pool's own states are untouched"
    assert res.states.shape == states.shape and res.observations.shape == (40, *env.single_observation_space.shape)
    stopped_early = 0
    for k in range(0, 40, 3):
        obs, total, term, trunc, lives, taken, state = reference(game, kwargs, states[k], actions[k], dt[k])
        np.testing.assert_array_equal(res.observations[k], obs, f"walker {k}")
        assert (res.rewards[k], res.terminated[k], res.truncated[k]) == (total, term, trunc), k
        assert (res.info["lives"][k], res.info["steps_taken"][k]) == (lives, taken), k
        assert (res.states[k] == state).all(), f"walker {k}: new state"
        stopped_early += taken < dt[k]
    # Chaining: stepping the new states again continues the same trajectories.
    again = env.step_states(res.states.copy(), actions, 1)
    ref = env.step_states(np.ascontiguousarray(res.states), actions, 1)
    assert (again.states == ref.states).all()


def test_the_pool_plays_on_as_if_nothing_happened(closing):
    """Two identical pools; one plans in between its steps: both keep producing the same
    results (the reset run ahead of a step included)."""
    a = atari_vec.AtariVectorEnv("pong", 2, max_num_frames_per_episode=300)
    b = atari_vec.AtariVectorEnv("pong", 2, max_num_frames_per_episode=300)
    closing(a)
    closing(b)
    a.reset(seed=4)
    b.reset(seed=4)
    rng = np.random.default_rng(4)
    states = a.clone_states()
    ended = 0
    for t in range(200):
        act = rng.integers(0, 6, 2)
        ra, rb = a.step(act), b.step(act)
        for f in range(4):
            np.testing.assert_array_equal(ra[f], rb[f], f"field {f} at step {t}")
        ended += int((ra[2] | ra[3]).sum())
        if t % 7 == 0 or (ra[2] | ra[3]).any():
            a.step_states(np.repeat(states, 5, axis=0), rng.integers(0, 6, 10), 3)
    assert ended > 0


def test_out_is_reused_and_states_optional(closing):
    env = atari_vec.AtariVectorEnv("pong", 2, **RAW_RAM)
    closing(env)
    env.reset(seed=0)
    states = np.repeat(env.clone_states(), 8, axis=0)
    acts = np.zeros(16, dtype=np.int64)
    out = atari_vec.PlanningResult.empty(16, env)
    res = env.step_states(states, acts, 2, out=out)
    assert res is out
    s, obs, rew, term, trunc, info = res
    assert s is out.states and info["steps_taken"].tolist() == [2] * 16
    res2 = env.step_states(states, acts, 2, return_states=False)
    assert res2.states is None
    np.testing.assert_array_equal(res2.observations, out.observations)
    with pytest.raises(ValueError, match="another number"):
        env.step_states(states[:4], acts[:4], 2, out=out)


def test_bad_input_is_refused_and_changes_nothing(closing):
    env = atari_vec.AtariVectorEnv("pong", 2, **RAW_RAM)
    closing(env)
    env.reset(seed=0)
    good = np.repeat(env.clone_states(), 3, axis=0)
    own = env.clone_states(include_rng=True)
    acts = np.zeros(6, dtype=np.int64)
    cases = [
        ((good[:, :-1], acts), ValueError, "shape"),
        ((good.astype(np.int32), acts), TypeError, "uint8"),
        ((good, acts[:5]), ValueError, "one action per state"),
        ((good, acts + 6), ValueError, "actions must lie"),
        ((good, acts.astype(float)), TypeError, "integers"),
    ]
    for args, error, match in cases:
        with pytest.raises(error, match=match):
            env.step_states(*args)
    with pytest.raises(ValueError, match="dt must be >= 1"):
        env.step_states(good, acts, 0)
    with pytest.raises(ValueError, match="one dt per state"):
        env.step_states(good, acts, np.ones(5, dtype=np.int64))
    bad = good.copy()
    bad[4, 200] ^= 1
    with pytest.raises(ValueError, match="walker 4: .*corrupt"):
        env.step_states(bad, acts, 1)
    breakout = atari_vec.AtariVectorEnv("breakout", 2, **RAW_RAM)
    closing(breakout)
    breakout.reset(seed=0)
    other = np.repeat(breakout.clone_states(), 3, axis=0)
    if other.shape == good.shape:
        with pytest.raises(ValueError, match="another game"):
            env.step_states(other, acts, 1)
    assert (env.clone_states(include_rng=True) == own).all()
    env.step(np.zeros(2, dtype=np.int64))


def test_needs_idle_envs_and_one_game(closing):
    env = atari_vec.AtariVectorEnv("pong", 4, batch_size=2, **RAW_RAM)
    closing(env)
    _, info = env.reset(seed=0)
    states = env.clone_states(info["env_id"])
    env.send(np.zeros(2, dtype=np.int64))
    env.recv()
    # Two envs are still being stepped in async mode.
    with pytest.raises(ValueError, match="idle"):
        env.step_states(states, np.zeros(2, dtype=np.int64))
    mixed = atari_vec.AtariVectorEnv(["pong", "breakout"], 2, **RAW_RAM)
    closing(mixed)
    mixed.reset(seed=0)
    s = mixed.clone_states()
    with pytest.raises(ValueError, match="one game"):
        mixed.step_states(s, np.zeros(2, dtype=np.int64))


def test_a_terminal_walker_stays_as_it_is(closing):
    # DISABLED: the env stays at its episode's end (NEXT_STEP may reset it ahead, and a
    # state cloned then is the reset's).
    env = atari_vec.AtariVectorEnv("pong", 1, autoreset_mode="disabled",
                                   **{**RAW_RAM, "max_num_frames_per_episode": 40})
    closing(env)
    env.reset(seed=0)
    while True:
        *_, term, trunc, _ = env.step(np.array([0]))
        if term[0] or trunc[0]:
            break
    s = env.clone_states()
    res = env.step_states(s, np.array([1]), 5)
    assert res.info["steps_taken"][0] == 0 and res.truncated[0] and res.rewards[0] == 0
    assert (res.states == s).all()


@pytest.mark.timeout(120)
def test_close_and_ctrl_c_during_a_long_call(closing):
    env = atari_vec.AtariVectorEnv("pong", 2, **RAW_RAM)
    closing(env)
    env.reset(seed=0)
    own = env.clone_states(include_rng=True)
    many = np.repeat(env.clone_states(), 20000, axis=0)  # tens of seconds of work
    acts = np.zeros(len(many), dtype=np.int64)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        env.step_states(many, acts, 50)
    assert time.monotonic() - start < 20
    assert (env.clone_states(include_rng=True) == own).all(), "interrupted: envs put back"
    env.step(np.zeros(2, dtype=np.int64))

    def close_soon():
        time.sleep(0.3)
        env.close()

    closer = threading.Thread(target=close_soon)
    closer.start()
    with pytest.raises(RuntimeError, match="closed"):
        env.step_states(many, acts, 50)
    closer.join(10)
    assert not closer.is_alive()
