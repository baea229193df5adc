"""Every misuse gets a clear exception, promptly, and leaves the environment usable."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import atari_vec
from atari_vec import _core

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def env(closing):
    e = atari_vec.AtariVectorEnv("breakout", 4, noop_max=0)
    closing(e)
    e.reset(seed=0)
    return e


@pytest.fixture
def workers_only(monkeypatch):
    """Pools built while this is active leave every queued step to their workers
    (PoolConfig.caller_runs_tasks = False, which AtariVectorEnv does not expose): a thread in
    recv() then only waits, whoever wins the race to the queue. By default the waiting thread
    runs queued steps itself and finishes any it starts before it looks at its timeout or at
    Ctrl-C, by design."""
    build = _core.VectorEnv

    def build_workers_only(configs, pool, *args, **kwargs):
        pool.caller_runs_tasks = False
        return build(configs, pool, *args, **kwargs)

    monkeypatch.setattr(_core, "VectorEnv", build_workers_only)


@contextlib.contextmanager
def gil_changes_hands_only_when_blocked():
    """Within this block a thread keeps the GIL until it blocks (forced switches come only
    after 60 s). A thread that sets an Event and then calls recv() blocks nowhere before
    recv() waits for its batch, so a thread waiting on that Event runs again only once the
    caller is blocked in recv(): an event and the GIL order them, no sleep."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def still_works(env) -> None:
    obs, rew, term, trunc, info = env.step(np.zeros(env.batch_size, dtype=np.int64))
    assert obs.shape == (env.batch_size, 4, 84, 84)


@pytest.mark.parametrize(
    "actions, error, match",
    [
        (np.zeros(3, dtype=np.int64), ValueError, r"shape \(4,\)"),
        (np.zeros(5, dtype=np.int64), ValueError, r"shape \(4,\)"),
        (np.zeros((4, 1), dtype=np.int64), ValueError, r"shape \(4,\)"),
        (np.zeros(4, dtype=np.float32), TypeError, "integers"),
        (np.array([0, 1, np.nan, 2]), TypeError, "integers"),
        (np.array([0, 1, 2, 4]), ValueError, "out of range"),
        (np.array([0, -1, 2, 3]), ValueError, "out of range"),
        (np.array([0, 1, 2, 2**40]), ValueError, "out of range"),
        (np.array([0, 1, 2, 3], dtype=np.uint64) + np.uint64(2**63), ValueError, "out of range"),
        (["a", "b", "c", "d"], TypeError, "integers"),
    ],
)
def test_bad_actions(env, actions, error, match):
    with pytest.raises(error, match=match):
        env.step(actions)
    still_works(env)


def test_list_and_small_int_actions(env):
    env.step([0, 1, 2, 3])
    env.step(np.array([3, 2, 1, 0], dtype=np.uint8))


def test_send_twice(env):
    env.send(np.zeros(4, dtype=np.int64))
    with pytest.raises(RuntimeError, match="send\\(\\) called twice"):
        env.send(np.zeros(4, dtype=np.int64))
    env.recv()
    still_works(env)


def test_recv_without_send(env):
    with pytest.raises(RuntimeError, match="without a matching send"):
        env.recv()
    still_works(env)


def test_before_reset(closing):
    e = atari_vec.AtariVectorEnv("breakout", 2)
    closing(e)
    with pytest.raises(RuntimeError, match="before reset"):
        e.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(RuntimeError, match="before reset"):
        e.send(np.zeros(2, dtype=np.int64))
    with pytest.raises(RuntimeError, match="before reset"):
        e.recv()
    e.reset()
    still_works(e)


def test_after_close():
    e = atari_vec.AtariVectorEnv("breakout", 2)
    e.reset()
    e.close()
    for call in (lambda: e.reset(), lambda: e.step(np.zeros(2, dtype=np.int64)),
                 lambda: e.send(np.zeros(2, dtype=np.int64)), lambda: e.recv()):
        with pytest.raises(RuntimeError, match="closed"):
            call()
    e.close()  # a second close is a no-op
    assert e.closed


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(num_envs=0), ValueError, "num_envs"),
        (dict(num_envs=-3), ValueError, "num_envs"),
        (dict(num_envs=2.5), TypeError, "num_envs"),
        (dict(num_envs=2**40), ValueError, "num_envs"),
        (dict(img_width=-84), ValueError, "img_width"),
        (dict(mode=-2), ValueError, "mode"),
        (dict(num_envs=4, batch_size=5), ValueError, "batch_size"),
        (dict(batch_size=-1), ValueError, "batch_size"),
        (dict(frameskip=0), ValueError, "frameskip"),
        (dict(frameskip=-2), ValueError, "frameskip"),
        (dict(frameskip=True), TypeError, "frameskip"),
        (dict(game="pacmann"), ValueError, "Unknown game"),
        (dict(autoreset_mode="sometimes"), ValueError, "autoreset_mode"),
        (dict(stack_num=-1), ValueError, "stack_num"),
        (dict(img_height=0), ValueError, "img_height"),
        (dict(noop_max=-1), ValueError, "noop_max"),
        (dict(repeat_action_probability=1.5), ValueError, "repeat_action_probability"),
        (dict(max_num_frames_per_episode=-1), ValueError, "max_num_frames_per_episode"),
        (dict(num_threads=-1), ValueError, "num_threads"),
        (dict(thread_affinity_offset=-2), ValueError, "thread_affinity_offset"),
        (dict(difficulty=99), ValueError, "difficulty"),
    ],
)
def test_bad_constructor_values(kwargs, error, match):
    kwargs = {"game": "breakout", "num_envs": 2, **kwargs}
    with pytest.raises(error, match=match):
        atari_vec.AtariVectorEnv(kwargs.pop("game"), kwargs.pop("num_envs"), **kwargs)


@pytest.mark.parametrize(
    "mask, error",
    [
        ([True, False, True, False], TypeError),
        (np.array([1, 0, 1, 0]), TypeError),
        (np.array([True, False]), ValueError),
        (np.zeros((4, 1), dtype=bool), ValueError),
        (np.zeros(4, dtype=bool), ValueError),
    ],
)
def test_bad_reset_mask(env, mask, error):
    with pytest.raises(error, match="reset_mask"):
        env.reset(options={"reset_mask": mask})
    still_works(env)


@pytest.mark.parametrize("seed, error", [(-5, ValueError), (2**40, ValueError), ("x", TypeError),
                                         ([1, 2], ValueError), (1.5, TypeError),
                                         # -1 is the engine's "no seed": never a user's seed
                                         (-1, ValueError), ([None, 3, -1, 4], ValueError),
                                         (2**70, ValueError), ([0, 1, 2, 2**31], ValueError)])
def test_bad_seed(env, seed, error):
    with pytest.raises(error):
        env.reset(seed=seed)
    still_works(env)


def test_partial_reset_needs_full_reset_first(closing):
    e = atari_vec.AtariVectorEnv("breakout", 2)
    closing(e)
    with pytest.raises(ValueError, match="first reset"):
        e.reset(options={"reset_mask": np.array([True, False])})


def test_partial_reset_needs_sync(closing):
    e = atari_vec.AtariVectorEnv("breakout", 4, batch_size=2)
    closing(e)
    e.reset()
    with pytest.raises(ValueError, match="batch_size == num_envs"):
        e.reset(options={"reset_mask": np.array([True, False, False, False])})
    e.step(np.zeros(2, dtype=np.int64))


def test_reset_while_steps_in_flight(env):
    env.send(np.zeros(4, dtype=np.int64))
    obs, info = env.reset(seed=1)  # drains the pending step, then resets
    assert (obs[:, :3] == 0).all()
    still_works(env)


def test_worker_exception_reaches_recv():
    cfg = _core.EnvConfig()
    cfg.rom_path = str(atari_vec._games.rom_path("breakout"))
    cfg.fault_after_steps = 3
    pool = _core.PoolConfig()
    pool.num_envs = 1
    core = _core.VectorEnv([cfg, cfg], pool)
    try:
        core.reset(np.arange(2, dtype=np.int32), np.full(2, -1, dtype=np.int64))
        for _ in range(3):
            core.send(np.zeros(2, dtype=np.int64))
            core.recv()
        core.send(np.zeros(2, dtype=np.int64))
        with pytest.raises(RuntimeError, match="injected fault"):
            core.recv()
        # The pool survived: resetting and stepping (without the fault) still works.
        obs, info = core.reset(np.arange(2, dtype=np.int32), np.full(2, -1, dtype=np.int64))
        assert info["env_id"].tolist() == [0, 1]
    finally:
        core.close()


def test_recv_timeout(closing, workers_only):
    e = atari_vec.AtariVectorEnv("breakout", 1, frameskip=30000)  # a step of seconds
    closing(e)
    assert not e._core.caller_runs_tasks
    e.reset()
    e.send(np.zeros(1, dtype=np.int64))
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        e.recv(timeout=0.05)
    assert time.monotonic() - start < 5.0  # generous: recv() looks at the clock every 50 ms
    obs, *_ = e.recv()  # the result was not lost
    assert obs.shape == (1, 4, 84, 84)


def test_wake_false_is_ignored_without_a_caller_that_runs_steps(closing, workers_only):
    """Only a worker runs steps in such a pool: send(..., wake=False) must still wake one,
    or recv() would wait forever."""
    e = atari_vec.AtariVectorEnv("pong", 2, batch_size=1)
    closing(e)
    assert not e._core.caller_runs_tasks
    e.reset(seed=0)
    e.recv()
    time.sleep(0.2)  # the worker sleeps
    e.send(np.array([0]), np.array([1]), wake=False)
    obs, *_, info = e.recv(timeout=10)
    assert info["env_id"].tolist() == [1]


def test_ctrl_c_interrupts_recv(closing, workers_only):
    e = atari_vec.AtariVectorEnv("breakout", 1, frameskip=60000)  # a step of seconds
    closing(e)
    assert not e._core.caller_runs_tasks
    e.reset()
    e.send(np.zeros(1, dtype=np.int64))
    entering = threading.Event()
    sent_at = []

    def interrupt():
        entering.wait()  # returns once the main thread is blocked in recv()
        sent_at.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    with gil_changes_hands_only_when_blocked():
        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            entering.set()
            e.recv()
    assert time.monotonic() - sent_at[0] < 5.0  # generous: signals are checked every 50 ms
    # Still usable, and the pending result arrives: had the interrupt only been raised once
    # the step was done, there would be nothing left to receive.
    obs, *_ = e.recv()
    assert obs.shape == (1, 4, 84, 84)


def test_two_threads_rejected(closing):
    e = atari_vec.AtariVectorEnv("breakout", 1, frameskip=10000)
    closing(e)
    e.reset()
    e.send(np.zeros(1, dtype=np.int64))
    entering = threading.Event()
    errors = []

    def receive():
        entering.set()
        e.recv()

    t = threading.Thread(target=receive)
    with gil_changes_hands_only_when_blocked():
        t.start()
        entering.wait()  # returns once the thread is blocked in recv(), holding the env
        try:
            e.step(np.zeros(1, dtype=np.int64))
        except RuntimeError as exc:
            errors.append(str(exc))
    t.join(timeout=30)
    assert not t.is_alive()
    assert errors and "another thread" in errors[0], errors
    still_works(e)
