"""Sessions on one native pool: a slot (pool env) per session, and a pump on the event loop
that batches every session's requests into per-env pool calls.

Requests (any number of sessions) are collected in a list. The pump, a callback on the event
loop, sends all that are waiting, steps in one ``send(actions, env_ids)`` and resets in one
``send_reset(env_ids, seed)``, then receives one result (``batch_size=1``) and calls its
session's callback with it, and schedules itself again while results are out (callbacks, not
futures: the WebSocket protocol in fastws.py replies from the callback, with no task switch).
Between two pumps the loop reads and writes sockets, so sessions that step at different moments
share the pool without waiting for each other. ``recv`` blocks the loop for at most about one
step: the pool's caller runs queued tasks itself (the emulation of a lone session happens right
there, with no thread hand-off), while the worker threads take the others in parallel. No
Python thread exists per session, and none besides the loop touches the pool.

Slots: a slot given back is reset (unseeded) before it is handed out again, so a new session
never sees the previous one's game. The pool has one slot more than the session limit: the
stateless HTTP routes use that one, one call at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable
from typing import Any, Union

import numpy as np

from ..registration import make_raw_vec
from .config import ServerConfig
from .protocol import AtariState, ErrorCode, ObservationEncoder, ProtocolError


log = logging.getLogger("atari_vec.server")


@dataclasses.dataclass
class Result:
    """One env's result, copied out of the pool's batch arrays."""

    screen: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    lives: int
    episode_frame_number: int
    frame_number: int


Outcome = Union[Result, Exception]
Reply = Callable[[Union[dict, Exception]], None]


@dataclasses.dataclass
class _Request:
    slot: int
    kind: str  # "step" or "reset"
    arg: int  # the action, or the seed (-1: none)
    done: Callable[[Outcome], None] | None  # None: a slot's own reset before it is reused


class NativeSessions:
    """The pool, its slots and the pump. Event loop thread only (the pool included)."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.max_sessions = config.max_concurrent_envs
        self.http_slot = self.max_sessions
        self.env = make_raw_vec(
            config.game,
            self.max_sessions + 1,
            obs_type=config.obs_type,
            frameskip=config.frameskip,
            repeat_action_probability=config.repeat_action_probability,
            full_action_space=config.full_action_space,
            mode=config.mode,
            difficulty=config.difficulty,
            stop_at_game_over=True,
            batch_size=1,
            num_threads=config.num_threads,
            autoreset_mode="DISABLED",
        )
        meanings = [f"Action.{m}" for m in self.env.get_action_meanings()]
        self.num_actions = len(meanings)
        screen_shape = tuple(self.env.single_observation_space.shape)
        self.encoder = ObservationEncoder(
            screen_shape, self.num_actions, {"game_name": config.game, "action_meanings": meanings}
        )
        # Every slot starts reset; the results of that first reset are the slots' own.
        self.env.reset()
        for _ in range(self.env.num_envs - 1):
            self.env.recv(timeout=120)
        self._free = list(range(self.max_sessions - 1, -1, -1))
        self._sessions: dict[str, Session] = {}
        self._pending: list[_Request] = []  # not yet sent to the pool
        self._waiting: dict[int, _Request] = {}  # slot -> request in the pool
        self._pump_scheduled = False
        self._failed: Exception | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The stateless HTTP routes' session: never listed, one call at a time.
        self.http_session = Session(self, self.http_slot)
        self.http_lock = asyncio.Lock()

    # -- sessions (event loop) --------------------------------------------------------------

    @property
    def active(self) -> int:
        return len(self._sessions)

    def open(self) -> Session | None:
        """A new session on a free slot, or None at capacity."""
        if not self._free:
            return None
        session = Session(self, self._free.pop())
        self._sessions[session.id] = session
        return session

    def lone(self) -> bool:
        """One session open and nothing of anyone's in the pool or waiting for it."""
        return len(self._sessions) == 1 and not self._pending and not self._waiting

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def release(self, session: Session) -> None:
        """Ends a session: its slot is reset, then becomes free. Idempotent."""
        if self._sessions.pop(session.id, None) is None:
            return
        if session.in_flight:
            # Its request is still in the pool; the slot is recycled when that result lands.
            session.release_after_result = True
            return
        self.recycle(session.slot)

    def recycle(self, slot: int) -> None:
        self._queue_request(_Request(slot, "reset", -1, None))

    def submit(self, slot: int, kind: str, arg: int, done: Callable[[Outcome], None]) -> None:
        """Queue a step or reset of `slot`; `done` is called (on the loop) with its Result or
        the error, exactly once."""
        if self._failed is not None:
            raise ProtocolError(ErrorCode.EXECUTION_ERROR, f"the environment pool failed: {self._failed}")
        self._queue_request(_Request(slot, kind, arg, done))

    def _queue_request(self, request: _Request) -> None:
        self._pending.append(request)
        if not self._pump_scheduled:
            self._pump_scheduled = True
            (self._loop or asyncio.get_running_loop()).call_soon(self._pump)

    def close(self) -> None:
        """Fails what is still out, and closes the pool. Requests made from those failures'
        callbacks fail at once (submit raises)."""
        self._failed = RuntimeError("the server is shutting down")
        self._fail_all(list(self._waiting.values()) + self._pending, self._failed)
        self._waiting.clear()
        self._pending.clear()
        self.env.close()

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that runs the pump (the server's)."""
        self._loop = loop

    # -- the pump (event loop) ----------------------------------------------------------------

    def _pump(self) -> None:
        """Sends what is waiting, then hands out the results that are in. It blocks on the
        pool only when it has nothing else to do (no request arrived since the last pump and
        no result is in): then the loop is idle anyway, and the pool's caller runs the step
        itself, which for a lone session saves every thread hand-off."""
        self._pump_scheduled = False
        if self._failed is not None:
            return
        try:
            arrived = bool(self._pending)
            if arrived:
                batch, self._pending = self._pending, []
                self._send(batch)
            delivered = 0
            # A lone request is received at once: the caller runs it, and _send woke no
            # worker for it (a lone session's fastest path).
            while self._waiting and (self.env.poll() or len(self._waiting) == 1
                                     or not (arrived or delivered)):
                self._deliver(self.env.recv(timeout=60))
                delivered += 1
        except Exception as e:  # noqa: BLE001 - a pool error must reach every waiter
            self._failed = e
            self._fail_all(list(self._waiting.values()) + self._pending, e)
            self._waiting.clear()
            self._pending.clear()
            return
        if (self._waiting or self._pending) and not self._pump_scheduled:
            self._pump_scheduled = True
            (self._loop or asyncio.get_running_loop()).call_soon(self._pump)

    def _deliver(self, received: tuple) -> None:
        obs, rew, term, trunc, info = received
        request = self._waiting.pop(int(info["env_id"][0]))
        result = Result(obs[0].copy(), float(rew[0]), bool(term[0]), bool(trunc[0]),
                        int(info["lives"][0]), int(info["episode_frame_number"][0]),
                        int(info["frame_number"][0]))
        if request.done is None:  # a recycled slot is fresh again
            self._free.append(request.slot)
        else:
            _call(request.done, result)

    def _send(self, batch: list[_Request]) -> None:
        """Queues the batch's steps and resets. A call the pool refuses queues nothing, so
        only its own requests fail (the session layer checks first; this is a safety net)."""
        groups = [[r for r in batch if r.kind == kind] for kind in ("step", "reset")]
        # A lone step is received at once (the pump's fastest path): the loop thread runs it,
        # so no worker is woken for it (measured: +5-10% steps/s for one session).
        wake = len(batch) > 1 or bool(self._waiting)
        for i, group in enumerate(groups):
            if not group:
                continue
            slots = np.array([r.slot for r in group], dtype=np.int32)
            try:
                if group[0].kind == "step":
                    self.env.send(np.array([r.arg for r in group], dtype=np.int32), slots,
                                  wake=wake)
                else:
                    self.env.send_reset(slots, seed=[None if r.arg < 0 else r.arg for r in group])
            except (ValueError, TypeError) as e:
                self._fail_all(group, e)
                continue
            except Exception as e:
                # The pool itself failed: this group and the ones not sent yet fail with it
                # here (they are in neither list the pump fails).
                for rest in groups[i:]:
                    self._fail_all(rest, e)
                raise
            for r in group:
                self._waiting[r.slot] = r

    @staticmethod
    def _fail_all(requests: list[_Request], error: Exception) -> None:
        for request in requests:
            if request.done is not None:
                _call(request.done, error)


def _call(done: Callable[[Outcome], None], outcome: Outcome) -> None:
    """A request's callback. What it raises is its session's problem, logged here: it must
    not reach the pump, which would take it for the pool failing every session."""
    try:
        done(outcome)
    except Exception:  # noqa: BLE001
        log.exception("a session's result callback failed")


class Session:
    """One client's env: its slot, episode and last observation. Event loop thread only."""

    def __init__(self, pool: NativeSessions, slot: int):
        self.pool = pool
        self.slot = slot
        self.id = uuid.uuid4().hex
        self.episode_id: str | None = None
        self.step_count = 0
        self.last: Result | None = None
        self.in_flight = False
        self.release_after_result = False

    def state(self) -> AtariState:
        c = self.pool.config
        return AtariState(
            episode_id=self.episode_id, step_count=self.step_count, game_name=c.game,
            obs_type=c.obs_type, full_action_space=c.full_action_space, mode=c.mode,
            difficulty=c.difficulty, repeat_action_probability=c.repeat_action_probability,
            frameskip=c.frameskip,
        )

    # Each request calls `done` exactly once, from the event loop, with the reply's data (an
    # observation payload) or a ProtocolError. What is wrong at once raises instead.

    def reset(self, seed: int | None, episode_id: str | None, done: Reply) -> None:
        def landed(outcome: Outcome) -> None:
            if isinstance(outcome, Exception):
                return done(outcome)
            self.episode_id = episode_id or str(uuid.uuid4())
            self.step_count = 0
            done(self._payload(outcome, 0.0))

        self._run("reset", -1 if seed is None else seed, landed)

    def step(self, action_id: int, done: Reply) -> None:
        if not 0 <= action_id < self.pool.num_actions:
            raise ProtocolError(
                ErrorCode.EXECUTION_ERROR,
                f"Invalid action_id: {action_id}. Valid range: [0, {self.pool.num_actions - 1}]",
                client_fault=True,
            )
        if self.last is not None and self.last.terminated:
            # As the reference: after game over the emulator does not move; the step is
            # counted and reports the final screen, no reward, still done.
            self.step_count += 1
            return done(self._payload(self.last, 0.0))

        def landed(outcome: Outcome) -> None:
            if isinstance(outcome, Exception):
                return done(outcome)
            self.step_count += 1
            done(self._payload(outcome, outcome.reward))

        self._run("step", action_id, landed)

    async def areset(self, seed: int | None = None, episode_id: str | None = None) -> dict[str, Any]:
        """`reset` for coroutines."""
        return await awaited(lambda done: self.reset(seed, episode_id, done))

    async def astep(self, action_id: int) -> dict[str, Any]:
        """`step` for coroutines."""
        return await awaited(lambda done: self.step(action_id, done))

    def _run(self, kind: str, arg: int, landed: Callable[[Outcome], None]) -> None:
        if self.in_flight:
            raise ProtocolError(ErrorCode.EXECUTION_ERROR, "a request of this session is running")

        def back(outcome: Outcome) -> None:
            # Called even when the client went away meanwhile: only then is the slot recycled.
            self.in_flight = False
            if isinstance(outcome, Exception):
                outcome = ProtocolError(ErrorCode.EXECUTION_ERROR, str(outcome))
            else:
                self.last = outcome
            if self.release_after_result:
                self.release_after_result = False
                self.pool.recycle(self.slot)
            landed(outcome)

        self.pool.submit(self.slot, kind, arg, back)
        self.in_flight = True

    def _payload(self, result: Result, reward: float) -> dict[str, Any]:
        return self.pool.encoder.payload(
            result.screen, reward, result.terminated or result.truncated, result.lives,
            result.episode_frame_number, result.frame_number,
        )


def awaited(start: Callable[[Callable[[Any], None]], None]) -> asyncio.Future:
    """A future of what `start` hands its callback (an Exception is raised by the await). If the awaiting task is cancelled, the
    request still completes (the session stays consistent) and its reply is dropped."""
    future = asyncio.get_running_loop().create_future()

    def settle(outcome: dict | Exception) -> None:
        if future.done():
            return
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    start(settle)
    return future
