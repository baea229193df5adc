"""Per-env stepping (EnvPool's ``send(actions, env_ids)``) and per-env resets (``send_reset``):
any set of ready envs is stepped or reset while others run, and each env's trajectory is the
one it has alone, bit for bit."""

from __future__ import annotations

import time

import numpy as np
import pytest

import atari_vec
from atari_vec.registration import make_raw_vec


def _schedule_run(env, seed, rounds, rng, reset_prob=0.0, seeded_resets=False, wake=True):
    """Drive `env` with random subsets of its ready envs; return per-env logs of
    (kind, action or seed, obs, reward, terminated, truncated) in the order each env saw them."""
    n = env.num_envs
    logs = {e: [] for e in range(n)}
    obs, info = env.reset(seed=seed)
    ready = []

    def take(obs, rew, term, trunc, info, kinds):
        for k, e in enumerate(info["env_id"]):
            e = int(e)
            kind, arg = kinds.pop(e)
            logs[e].append((kind, arg, obs[k].copy(), float(rew[k]), bool(term[k]), bool(trunc[k])))
            ready.append(e)

    kinds = {e: ("reset", seed + e) for e in range(n)}
    take(obs, np.zeros(env.batch_size), np.zeros(env.batch_size, bool),
         np.zeros(env.batch_size, bool), info, kinds)
    in_flight = n - env.batch_size
    while in_flight >= env.batch_size:  # the other envs' reset results
        take(*env.recv(), kinds)
        in_flight -= env.batch_size
    for _ in range(rounds):
        rng.shuffle(ready)
        k = int(rng.integers(1, len(ready) + 1))
        chosen, ready[:] = ready[:k], ready[k:]
        last = {e: logs[e][-1] for e in chosen}
        resets = [e for e in chosen if last[e][4] or last[e][5] or rng.random() < reset_prob]
        steps = [e for e in chosen if e not in resets]
        if steps:
            actions = rng.integers(0, env.single_action_space.n, size=len(steps))
            for e, a in zip(steps, actions):
                kinds[e] = ("step", int(a))
            env.send(actions, np.array(steps), wake=wake)
        if resets:
            seeds = [int(rng.integers(0, 1000)) if seeded_resets and rng.random() < 0.5 else None
                     for _ in resets]
            for e, s in zip(resets, seeds):
                kinds[e] = ("reset", s)
            env.send_reset(np.array(resets), seed=seeds)
        in_flight += len(chosen)
        while in_flight >= env.batch_size:
            take(*env.recv(), kinds)
            in_flight -= env.batch_size
    # What remains in flight is left there; the logs hold everything received.
    return logs


def _replay(make_one, log, seed):
    """The same env's log, replayed on a one-env pool: reset, then each step or reset."""
    one = make_one()
    try:
        for t, (kind, arg, obs, rew, term, trunc) in enumerate(log):
            if kind == "reset":
                o, _ = one.reset(seed=seed if t == 0 else arg)
                r, te, tr = 0.0, False, False
            else:
                o, rs, tes, trs, _ = one.step(np.array([arg]))
                r, te, tr = float(rs[0]), bool(tes[0]), bool(trs[0])
            np.testing.assert_array_equal(o[0], obs, f"observation at event {t} ({kind})")
            assert (r, te, tr) == (rew, term, trunc), f"outcome at event {t} ({kind})"
    finally:
        one.close()


@pytest.mark.parametrize("batch_size, wake", [(1, True), (3, True), (1, False), (3, False)])
def test_raw_disabled_sessions_match_single_envs(batch_size, wake, closing):
    """The server's use: raw screens, no autoreset, envs stepped and reset (seeded or not) at
    random moments; each env equals a one-env pool given the same seeds and actions. With
    send(..., wake=False) (the server's lone steps) the recv() that waits runs them."""
    kw = dict(frameskip=4, repeat_action_probability=0.25, autoreset_mode="DISABLED")
    env = make_raw_vec("pong", 6, batch_size=batch_size, obs_type="ram", **kw)
    closing(env)
    logs = _schedule_run(env, 7, 300, np.random.default_rng(1), reset_prob=0.05,
                         seeded_resets=True, wake=wake)
    assert sum(kind == "reset" for log in logs.values() for kind, *_ in log) > 6 + 5
    for e, log in logs.items():
        assert len(log) > 20
        _replay(lambda: make_raw_vec("pong", 1, obs_type="ram", **kw), log, 7 + e)


def test_preprocessed_next_step_with_resets_ahead_matches_single_envs(closing):
    """Default pool (NEXT_STEP, resets run ahead by idle workers): per-env sends and resets
    still give each env its own trajectory, across many episode ends."""
    kw = dict(episodic_life=True, noop_max=30)
    env = atari_vec.AtariVectorEnv("breakout", 5, batch_size=2, **kw)
    closing(env)
    logs = _schedule_run(env, 3, 500, np.random.default_rng(2), reset_prob=0.02)
    assert sum(term for log in logs.values() for *_, term, _ in log) >= 3
    for e, log in logs.items():
        one = lambda: atari_vec.AtariVectorEnv("breakout", 1, **kw)
        # A NEXT_STEP env's step after an episode end is its reset; the schedule resets such
        # envs with send_reset instead, which must give the same first observation.
        _replay(one, log, 3 + e)


@pytest.mark.parametrize("wake", [True, False])
def test_wake_false_leaves_the_step_to_the_next_recv(wake, closing):
    """A step sent with wake=False does not start while every worker sleeps: the recv() that
    waits for it runs it. With wake=True a worker runs it meanwhile."""
    env = make_raw_vec("pong", 2, obs_type="ram", frameskip=2000, repeat_action_probability=0.0,
                       batch_size=1, num_threads=1, autoreset_mode="DISABLED")
    closing(env)
    env.reset(seed=0)
    env.recv()  # the second env's reset result
    time.sleep(0.2)  # the worker's idle spin (100 us) is long over: it sleeps
    env.send(np.array([0]), np.array([1]), wake=wake)
    if wake:  # a worker runs it: its result comes in (a 2,000-frame step, some 70 ms)
        deadline = time.monotonic() + 30
        while not env.poll() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert env.poll()
    else:  # nobody runs it until recv()
        time.sleep(0.3)
        assert not env.poll()
    obs, rew, term, trunc, info = env.recv(timeout=30)
    assert info["env_id"].tolist() == [1] and info["episode_frame_number"][0] == 2000


def test_send_refuses_envs_that_are_not_ready_and_loses_nothing(closing):
    env = atari_vec.AtariVectorEnv("pong", 4, batch_size=2)
    closing(env)
    env.reset(seed=0)  # envs 0 and 1 (or whichever finished first) are ready
    _, _, _, _, info = env.recv()  # the other two
    ids = sorted(int(e) for e in info["env_id"])
    env.send(np.array([0]), np.array([ids[0]]))
    with pytest.raises(ValueError, match="not waiting for an action"):
        env.send(np.array([0]), np.array([ids[0]]))
    with pytest.raises(ValueError, match="appears twice"):
        env.send(np.array([0, 0]), np.array([ids[1], ids[1]]))
    with pytest.raises(ValueError, match="out of range"):
        env.send(np.array([0]), np.array([4]))
    with pytest.raises(ValueError, match="out of range"):
        env.send(np.array([9]), np.array([ids[1]]))  # action out of range
    with pytest.raises(ValueError, match="shape"):
        env.send(np.array([0, 1]), np.array([ids[1]]))
    with pytest.raises(TypeError, match="env_ids"):
        env.send(np.array([0]), np.array([0.5]))
    with pytest.raises(RuntimeError, match="in flight"):
        env.recv()  # one result in flight, batch_size 2
    with pytest.raises(ValueError, match="not waiting"):
        env.send_reset([ids[0]])
    env.send(np.array([1]), np.array([ids[1]]))  # the refused calls queued nothing
    _, _, _, _, info = env.recv(timeout=30)
    assert sorted(int(e) for e in info["env_id"]) == ids[:2]
    env.send(np.zeros(2, np.int64))  # the last batch's envs, as before
    with pytest.raises(RuntimeError, match="twice without recv"):
        env.send(np.zeros(2, np.int64))


def test_disabled_async_refuses_an_ended_env_until_it_is_reset(closing):
    env = make_raw_vec("pong", 2, batch_size=1, obs_type="ram", autoreset_mode="DISABLED",
                       repeat_action_probability=0.0, max_num_frames_per_episode=40)
    closing(env)
    env.reset(seed=0)
    env.recv()
    trunc = False
    while not trunc:
        _, _, _, tr, info = env.step(np.array([0]))  # env of the last batch, one at a time
        trunc = bool(tr[0])
    ended = int(info["env_id"][0])
    with pytest.raises(ValueError, match="DISABLED"):
        env.send(np.array([0]), np.array([ended]))
    env.send_reset([ended], seed=[5])
    obs, rew, term, tr, info = env.recv(timeout=30)
    assert int(info["env_id"][0]) == ended and not tr[0] and info["episode_frame_number"][0] == 0
