"""The pool: determinism across thread counts and affinity, async accounting and ordering,
and output arrays that are never overwritten while the caller holds them."""

from __future__ import annotations

import hashlib
import weakref

import numpy as np
import pytest

import atari_vec

pytestmark = pytest.mark.timeout(300)

KW = dict(noop_max=10, repeat_action_probability=0.25, max_num_frames_per_episode=400)


def digest(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def sync_run(num_threads, affinity, steps=150, num_envs=6, game="breakout"):
    env = atari_vec.AtariVectorEnv(game, num_envs, num_threads=num_threads,
                                   thread_affinity_offset=affinity, **KW)
    try:
        assert env.num_threads == num_threads
        actions = np.random.default_rng(0).integers(0, 4, size=(steps, num_envs))
        obs, info = env.reset(seed=100)
        trace = [digest(obs, info["lives"], info["episode_frame_number"])]
        for a in actions:
            obs, rew, term, trunc, info = env.step(a)
            trace.append(digest(obs, rew, term, trunc, info["episode_frame_number"]))
        return trace
    finally:
        env.close()


def test_same_trajectory_for_any_thread_count_and_affinity():
    runs = {(t, aff): sync_run(t, aff) for t in (1, 2, 4) for aff in (-1, 0)}
    first = next(iter(runs.values()))
    for key, trace in runs.items():
        assert trace == first, f"num_threads, affinity = {key} diverged"


def test_affinity_pins_within_allowed_cpus(closing):
    import os

    allowed = sorted(os.sched_getaffinity(0))
    env = atari_vec.AtariVectorEnv("pong", 4, num_threads=3, thread_affinity_offset=1)
    closing(env)
    assert env.worker_cpus == [allowed[(1 + i) % len(allowed)] for i in range(3)]


def per_env_trajectories(env, actions, per_env):
    """Drive env with per-env action sequences (actions[k, e] is env e's k-th action) until
    every env has `per_env` results; return each env's list of (obs digest, reward, term,
    trunc) in its own order. (Seeded resets reload the ROM, which takes far longer than a
    step, so in async mode the first envs to finish run ahead for a while.)"""
    n = env.num_envs
    taken = np.zeros(n, dtype=np.int64)
    traj = {e: [] for e in range(n)}
    obs, info = env.reset(seed=100)
    ids = info["env_id"]
    for row, e in enumerate(ids):
        traj[e].append((digest(obs[row]), 0, False, False))
    while min(len(t) for t in traj.values()) < per_env:
        env.send(actions[taken[ids], ids])
        taken[ids] += 1
        obs, rew, term, trunc, info = env.recv()
        ids = info["env_id"]
        assert len(set(ids.tolist())) == len(ids) == env.batch_size  # distinct ids, full batch
        for row, e in enumerate(ids):
            traj[e].append((digest(obs[row]), int(rew[row]), bool(term[row]), bool(trunc[row])))
    return traj


@pytest.mark.parametrize("num_envs, batch_size, threads", [(8, 3, 2), (7, 2, 4), (5, 1, 2), (6, 6, 3)])
def test_async_matches_sync_per_env(num_envs, batch_size, threads, closing):
    actions = np.random.default_rng(1).integers(0, 4, size=(5000, num_envs))
    sync = atari_vec.AtariVectorEnv("breakout", num_envs, **KW)
    asyn = atari_vec.AtariVectorEnv("breakout", num_envs, batch_size=batch_size,
                                    num_threads=threads, **KW)
    closing(sync)
    closing(asyn)
    a = per_env_trajectories(asyn, actions, per_env=60)  # every env keeps being served
    s = per_env_trajectories(sync, actions, per_env=max(len(t) for t in a.values()))
    for e in range(num_envs):
        assert a[e] == s[e][: len(a[e])], f"env {e} diverged"


def test_async_accounting(closing):
    num_envs, batch = 10, 4
    env = atari_vec.AtariVectorEnv("pong", num_envs, batch_size=batch, num_threads=2, frameskip=1)
    closing(env)
    obs, info = env.reset()  # unseeded: no ROM reload, so all envs start together
    sent = np.zeros(num_envs, dtype=np.int64)
    got = np.zeros(num_envs, dtype=np.int64)
    np.add.at(got, info["env_id"], 1)
    ids = info["env_id"]
    for _ in range(2000):
        env.send(np.zeros(batch, dtype=np.int64))
        np.add.at(sent, ids, 1)
        obs, rew, term, trunc, info = env.recv()
        ids = info["env_id"]
        assert len(np.unique(ids)) == batch
        np.add.at(got, ids, 1)
    # Every result is one reset or one step: none lost, none duplicated. The envs whose
    # results are still in flight are exactly num_envs - batch.
    in_flight = (sent + 1) - got
    assert set(in_flight.tolist()) <= {0, 1}
    assert in_flight.sum() == num_envs - batch
    assert got.min() > 0.5 * got.mean()


def test_returned_arrays_are_not_overwritten_while_held(closing):
    env = atari_vec.AtariVectorEnv("breakout", 3, noop_max=0)
    closing(env)
    env.reset(seed=0)
    kept = []
    for t in range(12):
        obs, rew, term, trunc, info = env.step(np.full(3, t % 4, dtype=np.int64))
        kept.append((obs, obs.copy(), info["episode_frame_number"], info["episode_frame_number"].copy()))
    for held, copy, efn, efn_copy in kept:
        np.testing.assert_array_equal(held, copy)
        np.testing.assert_array_equal(efn, efn_copy)


def test_arrays_are_recycled_when_dropped(closing):
    """No allocation in steady state: once the caller drops a batch, its arrays (the very
    NumPy objects) come back in a later batch. Identity, not data addresses, is checked:
    the allocator hands a freed chunk straight back, so a fresh array per step would often
    land at an address seen before; it could never be an object seen before, since weak
    references to a dropped fresh array die with it."""
    env = atari_vec.AtariVectorEnv("breakout", 2, noop_max=0)
    closing(env)
    env.reset(seed=0)
    seen: list[weakref.ref] = []  # every array returned so far, without keeping it alive
    fresh_per_step = []
    for _ in range(30):
        obs, rew, term, trunc, info = env.step(np.zeros(2, dtype=np.int64))
        arrays = [obs, rew, term, trunc, *(v for v in info.values() if isinstance(v, np.ndarray))]
        assert len(arrays) >= 10  # obs, reward, flags and the info arrays
        fresh = [a for a in arrays if not any(ref() is a for ref in seen)]
        fresh_per_step.append(len(fresh))
        seen.extend(weakref.ref(a) for a in fresh)
        del obs, rew, term, trunc, info, arrays, fresh
    # The first batches bring the ring's arrays; after that every array is one of them.
    warm_up = 4
    assert sum(fresh_per_step[warm_up:]) == 0, fresh_per_step
    assert sum(ref() is not None for ref in seen) == sum(fresh_per_step[:warm_up])
