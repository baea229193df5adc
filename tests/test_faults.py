"""Misuse in random orders: a Hypothesis state machine drives reset (full and masked), send,
recv, step, bad actions and close against an exact model of every environment's counters
and of which call must raise which exception, and checks that the environment stays usable
after every refused call.

The configuration makes the counters exact: frameskip=1, noop_max=0 and no FIRE on reset, so
each step adds exactly one frame to ``info["episode_frame_number"]`` and ``frame_number``;
a four-frame episode limit makes truncation, autoreset and DISABLED refusals frequent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import atari_vec

MAX_FRAMES = 4
KW = {
    "frameskip": 1,
    "noop_max": 0,
    "use_fire_reset": False,
    "stack_num": 1,
    "img_height": 16,
    "img_width": 16,
    "max_num_frames_per_episode": MAX_FRAMES,
    "repeat_action_probability": 0.0,
}
MODES = ["next_step", "same_step", "disabled"]


@dataclass
class EnvModel:
    """What one environment's counters must be, and the task queued for it, if any."""

    frame: int = 0  # episode_frame_number
    total: int = 0  # frame_number: frames since the ROM was (re)loaded
    ended: bool = False  # the last step truncated the episode and no reset followed
    pending: str | None = None  # "step", "reset" or "report": a result still to come
    seeded: bool = False  # the pending reset carries a seed (ALE reloads the ROM)


@dataclass
class Row:
    frame: int
    total: int
    truncated: bool
    final_frame: int | None = None  # SAME_STEP: the ended episode's last frame


class PoolMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.env = None

    @initialize(
        num_envs=st.integers(1, 3),
        asynchronous=st.booleans(),
        batch=st.integers(1, 2),
        threads=st.integers(0, 3),
        mode=st.sampled_from(MODES),
    )
    def create(self, num_envs, asynchronous, batch, threads, mode):
        # DISABLED is synchronous only; async needs a batch smaller than num_envs.
        if mode == "disabled" or not asynchronous or num_envs == 1:
            batch = 0
        else:
            batch = min(batch, num_envs - 1)
        self.env = atari_vec.AtariVectorEnv(
            "pong", num_envs, batch_size=batch, num_threads=threads, autoreset_mode=mode, **KW
        )
        self.mode = mode
        self.n = num_envs
        self.b = self.env.batch_size
        self.models = [EnvModel() for _ in range(num_envs)]
        self.started = False
        self.closed = False
        self.awaiting_send = False
        self.last_ids: list[int] = []

    def teardown(self):
        if self.env is not None:
            self.env.close()

    # -- the model ------------------------------------------------------------------------

    def outstanding(self) -> int:
        return sum(m.pending is not None for m in self.models)

    def run_pending(self, m: EnvModel) -> Row:
        """Applies m's queued task as the worker does; returns the row it produces."""
        kind, m.pending = m.pending, None
        if kind == "reset":
            m.frame, m.ended = 0, False
            if m.seeded:
                m.total = 0
            return Row(m.frame, m.total, False)
        if kind == "report":
            return Row(m.frame, m.total, m.ended)
        assert kind == "step"
        if self.mode == "next_step" and m.ended:  # the step is the autoreset
            m.frame, m.ended = 0, False
            return Row(0, m.total, False)
        m.frame += 1
        m.total += 1
        truncated = m.frame >= MAX_FRAMES
        if self.mode == "same_step" and truncated:
            final = m.frame
            m.frame, m.ended = 0, False
            return Row(0, m.total, True, final_frame=final)
        m.ended = truncated
        return Row(m.frame, m.total, truncated)

    def drop_in_flight(self):
        """A reset lets queued tasks run and drops their results."""
        for m in self.models:
            if m.pending is not None:
                self.run_pending(m)

    def check_batch(self, obs, info, term=None, trunc=None):
        """Checks a received batch row by row against the model (reset() returns no flags)."""
        ids = info["env_id"].tolist()
        assert len(ids) == self.b == len(set(ids)), f"batch ids {ids}"
        assert obs.shape == (self.b, 1, 16, 16)
        if term is not None:
            assert not term.any()  # pong does not end within a few frames
        if self.b == self.n:
            assert ids == list(range(self.n)), "a synchronous batch is every env in order"
        for row, e in enumerate(ids):
            m = self.models[e]
            assert m.pending is not None, f"env {e} returned a result it owed nobody"
            want = self.run_pending(m)
            got = (int(info["episode_frame_number"][row]), int(info["frame_number"][row]))
            assert got == (want.frame, want.total), f"env {e}: (frame, total) {got}, want {want}"
            if trunc is not None:
                assert bool(trunc[row]) == want.truncated, f"env {e}: truncated, want {want}"
            if self.mode == "same_step":
                has_final = "final_info" in info and bool(info["_final_info"][row])
                assert has_final == (want.final_frame is not None), f"env {e} final_info"
                if has_final:
                    fin = info["final_info"]["episode_frame_number"][row]
                    assert fin == want.final_frame
        self.awaiting_send = True
        self.last_ids = ids

    def expect(self, error, call):
        """Runs call(); it must raise `error` (a type) or, when error is None, succeed."""
        if error is None:
            return call()
        with pytest.raises(error):
            call()
        return None

    # -- the rules ------------------------------------------------------------------------

    @rule(seed=st.sampled_from([None, None, None, 3]))
    def reset(self, seed):
        error = RuntimeError if self.closed else None
        result = self.expect(error, lambda: self.env.reset(seed=seed))
        if result is None:
            return
        self.drop_in_flight()
        for m in self.models:
            m.pending, m.seeded = "reset", seed is not None
        self.check_batch(*result)
        self.started = True

    @rule(mask=st.lists(st.booleans(), min_size=3, max_size=3))
    def reset_masked(self, mask):
        mask = np.array(mask[: self.n])
        partial = not mask.all()
        # Argument checks come first, then the closed check, then the pool's own rules.
        if not mask.any():
            error = ValueError
        elif self.closed:
            error = RuntimeError
        elif partial and (not self.started or self.b != self.n):
            error = ValueError
        else:
            error = None
        result = self.expect(error, lambda: self.env.reset(options={"reset_mask": mask}))
        if result is None:
            return
        self.drop_in_flight()
        for e, m in enumerate(self.models):
            m.pending, m.seeded = ("reset" if mask[e] else "report"), False
        self.check_batch(*result)
        self.started = True

    def send_error(self):
        if self.closed or not self.started or not self.awaiting_send:
            return RuntimeError
        if self.mode == "disabled" and any(m.ended for m in self.models):
            return ValueError
        return None

    def after_send(self):
        for e in self.last_ids:
            self.models[e].pending = "step"
        self.awaiting_send = False

    @rule(action=st.integers(0, 5))
    def send(self, action):
        error = self.send_error()
        self.expect(error, lambda: self.env.send(np.full(self.b, action, dtype=np.int64)))
        if error is None:
            self.after_send()

    @rule()
    def recv(self):
        error = None
        if self.closed or not self.started or self.outstanding() < self.b:
            error = RuntimeError
        result = self.expect(error, lambda: self.env.recv(timeout=60))
        if result is not None:
            obs, _, term, trunc, info = result
            self.check_batch(obs, info, term, trunc)

    @rule(action=st.integers(0, 5), repeat=st.integers(1, 5))
    def step(self, action, repeat):
        # Several steps in one rule, so episodes reach their end before the next reset/close.
        for _ in range(repeat):
            error = self.send_error()
            result = self.expect(
                error, lambda: self.env.step(np.full(self.b, action, dtype=np.int64))
            )
            if error is not None:
                return
            self.after_send()
            obs, _, term, trunc, info = result
            self.check_batch(obs, info, term, trunc)

    @rule(bad=st.sampled_from([-1, 6, 2**40]))
    def step_bad_action(self, bad):
        error = self.send_error()
        if error is None or error is ValueError:
            error = ValueError  # out of range; nothing is queued either way
        self.expect(error, lambda: self.env.step(np.full(self.b, bad, dtype=np.int64)))

    @rule(dice=st.integers(0, 7))
    def close(self, dice):
        # Rarely: everything after a close is refused, so an early close ends the interesting
        # part of a run.
        if dice == 0:
            self.env.close()  # a second close is a no-op
            self.closed = True

    @invariant()
    def closed_flag_agrees(self):
        if self.env is not None:
            assert self.env.closed == self.closed


PoolMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPoolStateMachine = pytest.mark.timeout(600)(PoolMachine.TestCase)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("num_envs, batch_size, allowed", [(3, 1, True), (3, 2, False), (4, 2, True)])
def test_recv_without_send_in_async_mode(num_envs, batch_size, allowed, closing):
    """recv() without send() is legal exactly when batch_size results are still owed: after a
    reset, num_envs - batch_size envs have not reported yet."""
    env = atari_vec.AtariVectorEnv("pong", num_envs, batch_size=batch_size, **KW)
    closing(env)
    _, info = env.reset()
    first = set(info["env_id"].tolist())
    if allowed:
        *_, info = env.recv(timeout=60)
        second = set(info["env_id"].tolist())
        assert len(second) == batch_size and not first & second  # the other envs' resets
        assert (info["episode_frame_number"] == 0).all()
    else:
        with pytest.raises(RuntimeError, match="without a matching send"):
            env.recv(timeout=60)
    env.step(np.zeros(batch_size, dtype=np.int64))  # usable either way
