"""``AtariVectorEnv``: the Gymnasium ``VectorEnv`` over the native engine.

The Python side checks arguments, builds the spaces and forwards each call once per batch;
everything per environment happens in C++ with the GIL released.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
from gymnasium.spaces import Box, Discrete
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from atari_vec import _core
from atari_vec._games import normalize_game, rom_path

_AUTORESET = {
    AutoresetMode.NEXT_STEP: _core.AutoresetMode.NEXT_STEP,
    AutoresetMode.SAME_STEP: _core.AutoresetMode.SAME_STEP,
    AutoresetMode.DISABLED: _core.AutoresetMode.DISABLED,
}

# ALE action ids for (horizontal, vertical, fire) of the continuous action space, each axis
# in {-1, 0, 1} (left/down, centre, right/up); indexed [h + 1, v + 1, fire].
_CONTINUOUS_TO_ALE = np.array(
    [
        [[9, 17], [4, 12], [7, 15]],  # left: down, centre, up
        [[5, 13], [0, 1], [2, 10]],  # centre
        [[8, 16], [3, 11], [6, 14]],  # right
    ],
    dtype=np.int64,
)


# Environments still open at interpreter exit are closed first, so no worker thread is
# left writing into arrays that the interpreter is tearing down.
_LIVE: weakref.WeakSet[AtariVectorEnv] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    for env in list(_LIVE):
        env._core.close()  # a no-op in a forked child, where the workers do not exist


def _parse_autoreset(mode: AutoresetMode | str) -> AutoresetMode:
    if isinstance(mode, AutoresetMode):
        return mode
    if isinstance(mode, str):
        key = mode.replace("_", "").replace("-", "").lower()
        for m in AutoresetMode:
            if m.value.lower() == key:
                return m
    raise ValueError(
        f"Unknown autoreset_mode {mode!r}; expected one of "
        f"{[m.value for m in AutoresetMode]} or a gymnasium.vector.AutoresetMode"
    )


# Every knob's default lives in cpp/config.hpp (EnvConfig, PoolConfig); the signature of
# AtariVectorEnv reads them from there, and registration.make_reference_env from the signature.
_ENV = _core.EnvConfig()
_POOL = _core.PoolConfig()

_OBS_TYPES = {
    "grayscale": _core.ObsType.GRAYSCALE,
    "rgb": _core.ObsType.RGB,
    "ram": _core.ObsType.RAM,
}
_SEEDING = {"gymnasium": _core.Seeding.GYMNASIUM, "ale_py": _core.Seeding.ALE_PY}
_SEEDING_NAME = {v: k for k, v in _SEEDING.items()}
_AUTORESET_NAME = {v: k for k, v in _AUTORESET.items()}


def _choice(name: str, value: Any, choices: dict[str, Any]) -> Any:
    if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}; expected one of {sorted(choices)}")
    return choices[value]


def _set_frameskip(cfg: Any, value: Any) -> None:
    """An int n is a fixed frameskip; a (low, high) pair draws each step's from [low, high).
    Their ranges are EnvConfig.validate()'s to check."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"a stochastic frameskip is a (low, high) pair, got {value!r}")
        cfg.stochastic_frameskip = True
        cfg.frameskip = _int("frameskip[0]", value[0])
        cfg.frameskip_max = _int("frameskip[1]", value[1])
    else:
        cfg.frameskip = _int("frameskip", value)


def _games(game: str | Sequence[str], num_envs: int) -> list[str]:
    """The ROM id of each env: one game, or a list whose length divides num_envs (env i plays
    game i * len(game) // num_envs, so each game gets a contiguous block of envs)."""
    if isinstance(game, str):
        return [normalize_game(game)] * num_envs
    games = list(game)
    if not games or not all(isinstance(g, str) for g in games):
        raise TypeError("game must be a str or a non-empty sequence of str")
    if num_envs % len(games):
        raise ValueError(
            f"{len(games)} games cannot be spread evenly over num_envs={num_envs}; "
            "pass num_envs as a multiple of the number of games"
        )
    return [normalize_game(games[i * len(games) // num_envs]) for i in range(num_envs)]


def _int(name: str, value: Any) -> int:
    """An int argument as the C++ config takes it (int32). Only the type is checked here: the
    allowed ranges have one home, EnvConfig/PoolConfig::validate() in cpp/config.cpp."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"{name} is out of range, got {value}")
    return int(value)


class PlanningResult:
    """What :meth:`AtariVectorEnv.step_states` returns for N walkers: ``states``
    ``(N, state_size)`` uint8 (None without states), ``observations`` ``(N, *obs_shape)``,
    ``rewards`` int32 (summed over the steps taken), ``terminated`` and ``truncated`` bool,
    and ``info`` with int32 arrays ``lives``, ``frame_number``, ``episode_frame_number`` and
    ``steps_taken``. Unpacks as ``states, obs, rewards, terminated, truncated, info``."""

    __slots__ = ("info", "observations", "rewards", "states", "terminated", "truncated")

    def __init__(self, states, observations, rewards, terminated, truncated, info):
        self.states = states
        self.observations = observations
        self.rewards = rewards
        self.terminated = terminated
        self.truncated = truncated
        self.info = info

    @property
    def n(self) -> int:
        return len(self.rewards)

    @classmethod
    def empty(cls, n: int, env: AtariVectorEnv, with_states: bool = True) -> PlanningResult:
        """Arrays for n walkers of `env`, to pass as ``out=`` again and again."""
        return cls(
            np.empty((n, env.state_size), np.uint8) if with_states else None,
            np.empty((n, *env.single_observation_space.shape), np.uint8),
            np.empty(n, np.int32),
            np.empty(n, bool),
            np.empty(n, bool),
            {k: np.empty(n, np.int32) for k in ("lives", "frame_number", "episode_frame_number", "steps_taken")},
        )

    def __iter__(self):
        return iter((self.states, self.observations, self.rewards, self.terminated, self.truncated, self.info))


class AtariVectorEnv(VectorEnv):
    """N Atari games stepped in parallel by a native thread pool.

    Equivalent, observation for observation, to Gymnasium's
    ``FrameStackObservation(AtariPreprocessing(gym.make(id, frameskip=1)), stack_num,
    padding_type="zero")`` in a ``SyncVectorEnv``, and to ``ale_py.vector_env.AtariVectorEnv``
    with the same keyword arguments.

    An *env id* is always an environment's index in the pool, ``0 .. num_envs - 1``: the
    ``info["env_id"]`` of each row, the positions of ``reset_mask``, ``render(env_ids)``.
    (A Gymnasium id such as ``"AtariVec/Pong-v5"`` is a *gym id*: ``registration.gym_id``.)

    Args:
        game: ROM id (``"breakout"``, ``"ms_pacman"``); ``"MsPacman"`` or ``"ALE/Pong-v5"`` work too.
            A list of games runs several in one pool: its length must divide ``num_envs``,
            env i plays ``game[i * len(game) // num_envs]``, ``info["game_id"]`` indexes
            ``self.games`` for each row, and the action space is ALE's 18 actions (an action a
            game does not use plays as NOOP) unless ``full_action_space=False`` is passed and
            the games' minimal sets agree.
        num_envs: number of environments.
        batch_size: results per ``recv``; 0 means ``num_envs`` (synchronous). Smaller values make
            ``recv`` return the first ``batch_size`` environments to finish, ids in ``info["env_id"]``.
        num_threads: worker threads; 0 picks ``min(num_envs, CPUs available)`` minus one (at
            least one), because the thread waiting in ``step``/``recv`` runs environment steps
            as well.
        thread_affinity_offset: pin worker i to the ``(offset + i)``-th CPU this process may use;
            -1 leaves threads unpinned. A failure to pin raises ``OSError``.
        autoreset_mode: ``NEXT_STEP``, ``SAME_STEP`` (``final_obs``/``final_info`` in ``info``) or
            ``DISABLED`` (reset finished envs with ``reset(options={"reset_mask": mask})``).
        mode, difficulty: the game mode and difficulty; None keeps the game's default.
        render_mode: ``"rgb_array"`` makes ``render()`` return full-colour screens;
            ``"human"`` also shows them, tiled, in a window (``pip install "atari-vec[human]"``,
            needs a display and ``batch_size == num_envs``).
        full_action_space: the game's full action set; None means False for one game, and
            for several games ALE's 18 actions.
        frameskip: frames per step, or ``(low, high)``: each step's count drawn from
            ``[low, high)`` on the env's own seeded generator, as ale-py's AtariEnv does.
        stack_num: frames per observation; 0 drops the stack axis (one frame).
        obs_type: ``"grayscale"``, ``"rgb"`` or ``"ram"`` (the 128 RAM bytes per frame, stacked
            like screens); takes precedence over ``grayscale`` when given.
        channels_last: observations ``(H, W, stack_num)`` (gray) or ``(H, W, 3 * stack_num)``
            (RGB, each frame's three channels in turn, oldest frame first).
        grayscale_newaxis: gray frames get a trailing axis of 1, as in ``AtariPreprocessing``.
        seeding: ``"gymnasium"`` (default): ``reset(seed=s)`` gives env i exactly the random
            streams of ale-py's ``AtariEnv`` reset with ``s + i`` (ALE's sticky actions, the
            no-op count, a stochastic frameskip), and truncation counts ALE's episode frames
            (the reset's fire and no-op frames included), as Gymnasium's stack does.
            ``"ale_py"``: as ale-py's ``AtariVectorEnv`` (ALE seeded with ``s + i``, no-ops from
            a ``std::mt19937``, frames counted from the end of the reset).
        episode_statistics: ``info["episode"]`` (``"r"``, ``"l"``) and ``info["_episode"]`` on
            the steps that end an episode, computed natively. Pass False to wrap the env in
            Gymnasium's ``RecordEpisodeStatistics``, which refuses an env that has them.
        raw: each env steps and resets exactly as ``gym.make(<ale-py id>)`` (the
            ``AtariVecRaw/*`` ids set it): every frame of a step emulated, no no-ops, fire,
            max-pool, clipping or life-loss rules (they must be off).
        stop_at_game_over: with ``raw``, a step stops repeating its action at game over, as
            OpenEnv's Atari server does (ale-py goes on; only sticky-action draws differ).

    The other arguments are those of ``ale_py.vector_env.AtariVectorEnv``.

    Returned arrays belong to the caller: a later ``recv`` writes into them only once nothing
    else references them.

    Example:
        >>> import numpy as np
        >>> from atari_vec import AtariVectorEnv
        >>> envs = AtariVectorEnv("pong", num_envs=4)
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape
        (4, 4, 84, 84)
        >>> obs, rew, term, trunc, info = envs.step(np.zeros(4, dtype=np.int64))
        >>> envs.close()
    """

    metadata: dict[str, Any] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": ["rgb_array", "human"],
        "render_fps": 30,
    }

    def __init__(
        self,
        game: str | Sequence[str],
        num_envs: int = _POOL.num_envs,
        *,
        batch_size: int = _POOL.batch_size,
        num_threads: int = _POOL.num_threads,
        thread_affinity_offset: int = _POOL.thread_affinity_offset,
        max_num_frames_per_episode: int = _ENV.max_num_frames_per_episode,
        repeat_action_probability: float = _ENV.repeat_action_probability,
        full_action_space: bool | None = None,
        continuous: bool = False,
        continuous_action_threshold: float = 0.5,
        autoreset_mode: AutoresetMode | str = _AUTORESET_NAME[_POOL.autoreset_mode],
        img_height: int = _ENV.img_height,
        img_width: int = _ENV.img_width,
        grayscale: bool = _ENV.obs_type == _core.ObsType.GRAYSCALE,
        stack_num: int = _ENV.stack_num,
        frameskip: int | tuple[int, int] = _ENV.frameskip,
        maxpool: bool = _ENV.maxpool,
        noop_max: int = _ENV.noop_max,
        episodic_life: bool = _ENV.episodic_life,
        life_loss_info: bool = _ENV.life_loss_info,
        reward_clipping: bool = _ENV.reward_clipping,
        use_fire_reset: bool = _ENV.use_fire_reset,
        mode: int | None = None,
        difficulty: int | None = None,
        render_mode: str | None = None,
        obs_type: str | None = None,
        channels_last: bool = _ENV.channels_last,
        grayscale_newaxis: bool = _ENV.grayscale_newaxis,
        seeding: str = _SEEDING_NAME[_ENV.seeding],
        raw: bool = _ENV.raw,
        stop_at_game_over: bool = _ENV.stop_at_game_over,
        episode_statistics: bool = True,
    ):
        self._core: Any = None
        self._human: Any = None
        self.closed = True
        if render_mode not in (None, "rgb_array", "human"):
            raise ValueError(
                f"render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}"
            )
        self.render_mode = render_mode
        # Types are checked here; every range is checked once, by PoolConfig/EnvConfig
        # validate() (cpp/config.cpp), whose std::invalid_argument arrives as ValueError.
        pool = _core.PoolConfig()
        pool.num_envs = _int("num_envs", num_envs)
        pool.batch_size = _int("batch_size", batch_size)
        pool.num_threads = _int("num_threads", num_threads)
        pool.thread_affinity_offset = _int("thread_affinity_offset", thread_affinity_offset)
        self.autoreset_mode = _parse_autoreset(autoreset_mode)
        pool.autoreset_mode = _AUTORESET[self.autoreset_mode]
        # Resets run ahead by idle workers would move an ended env's screen on before
        # render() could show it, so rendering envs reset only when stepped.
        pool.reset_ahead = render_mode is None
        pool.validate()
        self.num_envs = pool.num_envs
        self.batch_size = pool.batch_size or self.num_envs
        threshold = float(continuous_action_threshold)
        if not np.isfinite(threshold):
            raise ValueError("continuous_action_threshold must be finite")

        games = _games(game, self.num_envs)
        self.games = sorted(set(games), key=games.index)  # in env order
        if full_action_space is None:  # several games need one action set: the full one
            full_action_space = len(self.games) > 1
        if obs_type is None:
            obs_type = "grayscale" if grayscale else "rgb"

        cfg = _core.EnvConfig()
        cfg.rom_path = str(rom_path(games[0]))
        _set_frameskip(cfg, frameskip)
        cfg.obs_type = _choice("obs_type", obs_type, _OBS_TYPES)
        cfg.seeding = _choice("seeding", seeding, _SEEDING)
        cfg.channels_last = bool(channels_last)
        cfg.grayscale_newaxis = bool(grayscale_newaxis)
        cfg.raw = bool(raw)
        cfg.stop_at_game_over = bool(stop_at_game_over)
        cfg.img_height = _int("img_height", img_height)
        cfg.img_width = _int("img_width", img_width)
        cfg.stack_num = _int("stack_num", stack_num)
        cfg.noop_max = _int("noop_max", noop_max)
        cfg.max_num_frames_per_episode = _int("max_num_frames_per_episode", max_num_frames_per_episode)
        cfg.maxpool = bool(maxpool)
        cfg.use_fire_reset = bool(use_fire_reset)
        cfg.episodic_life = bool(episodic_life)
        cfg.life_loss_info = bool(life_loss_info)
        cfg.reward_clipping = bool(reward_clipping)
        cfg.repeat_action_probability = float(repeat_action_probability)
        cfg.full_action_space = bool(full_action_space or continuous)
        # Several games: ALE's 18 actions (the games' own full sets may differ, as Skiing's).
        cfg.all_actions = cfg.full_action_space and len(self.games) > 1
        cfg.mode = -1 if mode is None else _int("mode", mode)
        cfg.difficulty = -1 if difficulty is None else _int("difficulty", difficulty)
        cfg.validate()
        configs = []
        for g in games:
            c = _core.EnvConfig(cfg)
            c.rom_path = str(rom_path(g))
            configs.append(c)

        if render_mode == "human":
            if self.batch_size != self.num_envs:
                raise ValueError(
                    "render_mode='human' shows every env after each batch and needs "
                    "batch_size == num_envs"
                )
            from atari_vec.human_render import HumanRenderer

            self._human = HumanRenderer(self.num_envs, caption=f"atari_vec: {', '.join(self.games)}")
        self._all_ids = np.arange(self.num_envs, dtype=np.int32)
        try:
            self._core = _core.VectorEnv(configs, pool, episode_info=bool(episode_statistics))
        except BaseException:
            if self._human is not None:
                self._human.close()
            raise
        _LIVE.add(self)
        self.closed = False
        self._pid = os.getpid()
        self._lock = threading.Lock()

        self.game = self.games[0] if len(self.games) == 1 else list(self.games)
        # info["game_id"] (several games only): the index in self.games of each row's game.
        self._game_of_env = np.array([self.games.index(g) for g in games], dtype=np.int32)
        self.continuous = bool(continuous)
        self.continuous_action_threshold = threshold
        self.obs_type = obs_type
        self.grayscale = obs_type == "grayscale"
        self.raw = cfg.raw
        self.seeding = seeding
        self.action_set = list(self._core.action_set)
        self.single_observation_space = Box(0, 255, tuple(cfg.observation_shape), np.uint8)
        if self.continuous:
            self.single_action_space = Box(
                low=np.array([0.0, -np.pi, 0.0], dtype=np.float32),
                high=np.array([1.0, np.pi, 1.0], dtype=np.float32),
                dtype=np.float32,
            )
            index_of = {a: i for i, a in enumerate(self.action_set)}
            self._continuous_to_index = np.array(
                [index_of[a] for a in _CONTINUOUS_TO_ALE.ravel()], dtype=np.int32
            )
            n = self.num_envs
            self._cont_all = SimpleNamespace(
                a=np.empty((n, 3), np.float32), ok=np.empty((n, 3), bool),
                ok_high=np.empty((n, 3), bool), xy=np.empty(n, np.float32),
                flag=np.empty(n, bool), term=np.empty(n, np.intp), index=np.empty(n, np.intp),
                ids=np.empty(n, np.int32), strength=np.empty(n, np.float32),
            )
            self._cont = self._cont_rows(self.batch_size)
        else:
            self.single_action_space = Discrete(len(self.action_set))
        self.observation_space = batch_space(self.single_observation_space, self.batch_size)
        self.action_space = batch_space(self.single_action_space, self.batch_size)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}

    # -- guards ---------------------------------------------------------------------------

    def _enter(self, what: str) -> None:
        if self.closed:
            raise RuntimeError(f"{what}() called on a closed AtariVectorEnv")
        if os.getpid() != self._pid:
            raise RuntimeError(
                f"{what}() called in a forked child process: the worker threads live in the "
                "parent. Create the environment in the child instead."
            )
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(
                f"{what}() called while another thread is using this AtariVectorEnv; "
                "an environment must be used from one thread at a time"
            )

    # -- the VectorEnv API ----------------------------------------------------------------

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | np.ndarray | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all environments, or those selected by ``options["reset_mask"]``.

        ``seed=s`` seeds environment i with ``s + i``; a sequence gives one seed (or None) per
        environment being reset. Environments outside the mask keep their state and report
        their current observation and info.
        """
        ids = np.arange(self.num_envs, dtype=np.int32)
        if options is not None and "reset_mask" in options:
            mask = options["reset_mask"]
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
                raise TypeError(
                    "reset_mask must be a numpy array of dtype bool, got "
                    f"{type(mask).__name__} with dtype {getattr(mask, 'dtype', None)}"
                )
            if mask.shape != (self.num_envs,):
                raise ValueError(
                    f"reset_mask must have shape ({self.num_envs},), got {mask.shape}"
                )
            if not mask.any():
                raise ValueError("reset_mask selects no environment")
            ids = np.flatnonzero(mask).astype(np.int32)
        seeds = self._seeds(seed, ids)
        self._enter("reset")
        try:
            if seed is not None and not isinstance(seed, (Sequence, np.ndarray)):
                super().reset(seed=int(seed))
            return self._deliver(self._core.reset(ids, seeds))
        finally:
            self._lock.release()

    def _seeds(self, seed: Any, ids: np.ndarray) -> np.ndarray:
        if seed is None:
            return np.full(len(ids), -1, dtype=np.int64)
        # The engine takes -1 for "no seed", so negative seeds are refused here, before that
        # meaning could creep in; the upper bound (2**31 - 1) is checked once, by the bindings.
        def is_int(s: Any) -> bool:
            return isinstance(s, (int, np.integer)) and not isinstance(s, bool)

        if is_int(seed):
            if not 0 <= seed < 2**62:
                raise ValueError(f"seeds must be in [0, 2**31 - 1], got {seed}")
            return int(seed) + ids.astype(np.int64)
        if isinstance(seed, (Sequence, np.ndarray)) and not isinstance(seed, str):
            if len(seed) != len(ids):
                raise ValueError(
                    f"seed must have one entry per environment reset ({len(ids)}), got {len(seed)}"
                )
            if not all(s is None or is_int(s) for s in seed):
                raise TypeError("seed entries must be ints or None")
            if any(s is not None and not 0 <= s < 2**62 for s in seed):
                raise ValueError(f"seeds must be in [0, 2**31 - 1], got {list(seed)}")
            return np.array([-1 if s is None else int(s) for s in seed], dtype=np.int64)
        raise TypeError(f"seed must be an int, a sequence of ints or None, got {type(seed)}")

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step the environments of the last batch with ``actions``; return the next batch."""
        self.send(actions)
        return self.recv()

    def send(self, actions: Any, env_ids: Any = None, *, wake: bool = True) -> None:
        """Queue actions; returns at once.

        Without ``env_ids``: one action per environment of the last batch received. With
        ``env_ids`` (EnvPool's per-env stepping): one action per environment named, which may
        be any environments whose last result was received and that were sent nothing since;
        ``recv()`` then returns the next ``batch_size`` results, whichever finish first, with
        their ids in ``info["env_id"]``.

        ``wake=False`` wakes no sleeping worker thread for these steps: the next ``recv()``
        runs them on the calling thread (a worker still busy or spinning may take some). It
        is for a caller that calls ``recv()`` right away with little else in flight, such as
        a server answering one request at a time, which then saves a thread wake-up per
        step. Steps sent this way do not start before that ``recv()``.
        """
        ids = None if env_ids is None else self._env_ids(env_ids)
        self._enter("send")
        try:
            if self.continuous:
                a, strengths = self._map_continuous(actions, None if ids is None else len(ids))
                self._core.send(a, strengths, ids, bool(wake))
            else:
                a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
                if a.dtype.kind not in "iu":
                    raise TypeError(f"actions must be integers, got dtype {a.dtype}")
                self._core.send(a, None, ids, bool(wake))
        finally:
            self._lock.release()

    def send_reset(self, env_ids: Any, *, seed: int | Sequence[int | None] | None = None) -> None:
        """Queue resets of ``env_ids`` (ready environments, as for ``send(actions, env_ids)``).

        Each reset's first observation arrives through ``recv()`` like a step's result (reward
        0, not terminated), so one environment can start a new episode while others step.
        ``seed`` follows ``reset()``: an int seeds ``env_ids[i]`` with ``seed + env_ids[i]``, a
        sequence gives one seed (or None) per id.
        """
        ids = self._env_ids(env_ids)
        seeds = self._seeds(seed, ids)
        self._enter("send_reset")
        try:
            self._core.send_reset(ids, seeds)
        finally:
            self._lock.release()

    def recv(
        self, timeout: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Wait for the next batch. ``timeout`` (seconds) raises ``TimeoutError`` when exceeded."""
        self._enter("recv")
        try:
            return self._deliver(self._core.recv(-1.0 if timeout is None else float(timeout)))
        finally:
            self._lock.release()

    def poll(self) -> bool:
        """True if ``recv()`` would return at once: the next batch's results are all in.
        Never blocks (for event loops that receive only what is ready)."""
        return not self.closed and self._core.poll()

    def _deliver(self, result: tuple) -> tuple:
        """Per-batch additions to a result: the game of each row, the human window."""
        if len(self.games) > 1:
            info = result[-1]
            info["game_id"] = self._game_of_env[info["env_id"]]
        if self._human is not None:
            self._human.show(self._core.render(self._all_ids))
        return result

    def _map_continuous(self, actions: Any, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """ALE action indices and paddle strengths for (radius, theta, fire) rows, as ale-py's
        AtariEnv maps them. It stays in NumPy on purpose: the thresholds must see the float32
        cos/sin NumPy computes (its own SIMD kernels, not libm's), or a rare action near a
        threshold would differ from ale-py's. It writes into buffers made at construction
        (``rows`` of them: a per-env send may name fewer or more envs than a batch)."""
        a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if a.dtype.kind != "f":
            raise TypeError(f"continuous actions must be floats, got dtype {a.dtype}")
        n = self.batch_size if rows is None else rows
        if a.shape != (n, 3):
            raise ValueError(f"expected actions of shape ({n}, 3), got {a.shape}")
        c = self._cont if n == self.batch_size else self._cont_rows(n)
        np.copyto(c.a, a, casting="same_kind")  # float64 rounds to float32 as astype does
        low, high = self.single_action_space.low, self.single_action_space.high
        np.greater_equal(c.a, low, out=c.ok)
        np.less_equal(c.a, high, out=c.ok_high)
        np.logical_and(c.ok, c.ok_high, out=c.ok)
        if not c.ok.all():  # NaN fails both comparisons
            if not np.isfinite(c.a).all():
                raise ValueError("continuous actions must be finite (no NaN or inf)")
            raise ValueError(f"continuous actions must lie in [{low}, {high}]")
        radius, theta, fire = c.a[:, 0], c.a[:, 1], c.a[:, 2]
        t = self.continuous_action_threshold
        # Flat index into the (3, 3, 2) table: 6 * (h + 1) + 2 * (v + 1) + fire, where
        # h + 1 = (x >= -t) + (x > t) for x = radius * cos(theta), likewise v for y.
        c.index[:] = 0
        for trig, weight in ((np.cos, 6), (np.sin, 2)):
            trig(theta, out=c.xy)
            np.multiply(radius, c.xy, out=c.xy)
            for compare, bound in ((np.greater_equal, -t), (np.greater, t)):
                compare(c.xy, bound, out=c.flag)
                np.multiply(c.flag, weight, out=c.term)
                c.index += c.term
        np.greater(fire, t, out=c.flag)
        c.index += c.flag
        np.take(self._continuous_to_index, c.index, out=c.ids)
        np.copyto(c.strength, radius)
        return c.ids, c.strength

    def _cont_rows(self, n: int) -> SimpleNamespace:
        """Views of the first n rows of the continuous-action buffers (made num_envs long)."""
        return SimpleNamespace(**{k: v[:n] for k, v in vars(self._cont_all).items()})

    def render(
        self, env_ids: Sequence[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, ...] | None:
        """Full-colour screens of the chosen environments: a tuple of ``(210, 160, 3)`` arrays,
        as Gymnasium's vector envs return them (``np.stack`` makes one array of it; the
        elements are views of one freshly made array).

        All environments by default. An environment can be rendered once its last result has
        been received (always, in synchronous mode).
        """
        if self.render_mode is None:
            return None
        ids = self._env_ids(env_ids)
        self._enter("render")
        try:
            return tuple(self._core.render(ids))
        finally:
            self._lock.release()

    def get_ram(self, env_ids: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The emulator RAM of the chosen environments (all by default): ``(n, 128)`` uint8,
        a fresh array. Needs ``render_mode`` set (so that no reset runs ahead of a step and
        the RAM is the last result's), and envs whose last result was received."""
        if self.render_mode is None:
            raise ValueError("get_ram() needs an env made with render_mode='rgb_array' (or 'human')")
        ids = self._env_ids(env_ids)
        self._enter("get_ram")
        try:
            return self._core.ram(ids)
        finally:
            self._lock.release()

    # -- snapshots ------------------------------------------------------------------------

    @property
    def state_size(self) -> int:
        """Bytes in one state row of :meth:`clone_states` (fixed for the env's settings)."""
        return int(self._core.state_size)

    def clone_states(
        self, env_ids: Sequence[int] | np.ndarray | None = None, include_rng: bool = False
    ) -> np.ndarray:
        """The whole state of each chosen environment (all by default), one ``uint8`` row each:
        shape ``(len(env_ids), state_size)``, a fresh array the caller owns.

        A row holds the emulator, the last action (which sticky actions repeat), the frame
        stack and max-pool frames, lives and episode counters, and the no-op/frame-skip RNG;
        with ``include_rng`` also ALE's sticky-action RNG (without it, a restored env keeps
        its own, so continuations with sticky actions differ). Rows are plain bytes: compare
        them with ``==``, copy, pickle or store them anywhere. An environment can be cloned
        once its last result has been received (always, in synchronous mode).
        """
        ids = self._env_ids(env_ids)
        self._enter("clone_states")
        try:
            return self._core.clone_states(ids, bool(include_rng))
        finally:
            self._lock.release()

    def restore_states(
        self, states: np.ndarray, env_ids: Sequence[int] | np.ndarray | None = None
    ) -> None:
        """Put each chosen environment (all by default) into the state of its row of
        ``states`` (rows from :meth:`clone_states` of an env with the same game and settings,
        of any pool or process running this build). Its next step then returns exactly what
        the cloned env's next step returned, for the same action. Every row is checked before
        any env changes: a row of another game or setting, another build, a truncated or
        corrupt row raises ``ValueError`` and restores nothing.

        The observation, reward and info already returned are not rewritten: the next
        ``step`` is the first to show the restored states. ``render()`` shows the restored
        screen only after that step too.
        """
        ids = self._env_ids(env_ids)
        if not isinstance(states, np.ndarray) or states.dtype != np.uint8:
            raise TypeError(
                f"states must be a uint8 numpy array from clone_states, got "
                f"{type(states).__name__} with dtype {getattr(states, 'dtype', None)}"
            )
        if states.ndim == 1 and len(ids) == 1:
            states = states[None]
        if states.shape != (len(ids), self.state_size):
            raise ValueError(
                f"expected states of shape ({len(ids)}, {self.state_size}) for env ids "
                f"{ids.tolist()[:8]}{'...' if len(ids) > 8 else ''}, got {states.shape}"
            )
        self._enter("restore_states")
        try:
            self._core.restore_states(np.ascontiguousarray(states), ids)
        finally:
            self._lock.release()

    def step_states(
        self,
        states: np.ndarray,
        actions: Any,
        dt: int | Sequence[int] | np.ndarray = 1,
        *,
        include_rng: bool = False,
        return_states: bool = True,
        out: PlanningResult | None = None,
    ) -> PlanningResult:
        """Batched planning: from each of N saved states (N may be far larger than
        ``num_envs``), take its action for ``dt`` steps (an int, or one per state), on the
        worker threads with the GIL released, and return the new states, observations,
        summed rewards, flags and info of every walker as a :class:`PlanningResult`.

        A walker stops early at the end of its episode (``steps_taken < dt``) and is never
        reset: a walker whose episode is over stays as it is. Each result is exactly what the
        pool's own env would return after ``restore_states`` and those steps. The pool's envs
        only lend their emulators: their own episodes are left as they were. Every env must be
        idle (in async mode, after every result has been received), and the pool must hold
        one game with one setting.

        ``out`` (a previous result for the same N) is written into instead of new arrays;
        with ``return_states=False`` no states are written (``result.states`` is None).
        """
        if not isinstance(states, np.ndarray) or states.dtype != np.uint8:
            raise TypeError(
                "states must be a uint8 numpy array of state rows (clone_states), got "
                f"{type(states).__name__} with dtype {getattr(states, 'dtype', None)}"
            )
        if states.ndim != 2 or states.shape[1] != self.state_size:
            raise ValueError(f"expected states of shape (n, {self.state_size}), got {states.shape}")
        n = states.shape[0]
        if self.continuous:
            raise ValueError("step_states takes discrete actions; this env is continuous")
        a = np.asarray(actions)
        if a.dtype.kind not in "iu":
            raise TypeError(f"actions must be integers, got dtype {a.dtype}")
        if a.shape != (n,):
            raise ValueError(f"expected one action per state, shape ({n},), got {a.shape}")
        if ((a < 0) | (a >= self.single_action_space.n)).any():
            raise ValueError(f"actions must lie in [0, {self.single_action_space.n})")
        steps = np.asarray(dt)
        if steps.dtype.kind not in "iu" or steps.ndim > 1:
            raise TypeError("dt must be an int or a 1-D sequence of ints")
        if steps.ndim == 1 and steps.shape != (n,):
            raise ValueError(f"expected one dt per state, shape ({n},), got {steps.shape}")
        if (steps < 1).any() or (steps > 2**31 - 1).any():
            raise ValueError("dt must be >= 1")
        steps = np.ascontiguousarray(np.broadcast_to(steps, (n,)), dtype=np.int32)
        if out is None:
            out = PlanningResult.empty(n, self, return_states)
        elif out.n != n or (return_states and out.states is None):
            raise ValueError("out is a PlanningResult for another number of states (or without states)")
        self._enter("step_states")
        try:
            self._core.step_states(
                np.ascontiguousarray(states), a.astype(np.int32), None, steps, bool(include_rng),
                out.states if return_states else None, out.observations, out.rewards,
                out.terminated, out.truncated, out.info["lives"], out.info["frame_number"],
                out.info["episode_frame_number"], out.info["steps_taken"],
            )
        finally:
            self._lock.release()
        if not return_states:
            out.states = None
        return out

    def _env_ids(self, env_ids: Any) -> np.ndarray:
        """Env ids (pool indices) as int32, all envs for None."""
        if env_ids is None:
            return self._all_ids
        ids = np.asarray(env_ids)
        if ids.ndim == 0:
            ids = ids[None]
        if ids.dtype == np.int32 and ids.ndim == 1:
            return ids  # nothing to narrow: the engine checks the range
        if ids.dtype.kind not in "iu" or ids.ndim != 1:
            raise TypeError("env_ids must be an int or a 1-D sequence of ints")
        # Only what int32 can carry is checked here; the range [0, num_envs) is the engine's
        # to check (one home), and its error arrives as ValueError.
        if ids.size and (ids.min() < -(2**31) or ids.max() >= 2**31):
            raise ValueError(f"env id out of range: {ids.tolist()}")
        return ids.astype(np.int32)

    def close_extras(self, **kwargs: Any) -> None:
        """Stop and join the worker threads. A second ``close()`` does nothing.

        In a process forked after the env was created there are no workers to stop: the env
        is only marked closed there, and the parent's copy keeps working.
        """
        if self._core is not None:
            self._core.close()
        if self._human is not None:
            self._human.close()

    # -- introspection --------------------------------------------------------------------

    @property
    def num_threads(self) -> int:
        """Number of worker threads."""
        return self._core.num_threads

    @property
    def worker_cpus(self) -> list[int]:
        """The CPU each worker is pinned to; empty without thread affinity."""
        return list(self._core.worker_cpus)

    def get_action_meanings(self) -> list[str]:
        """Names of the actions, e.g. ``["NOOP", "FIRE", "RIGHT", "LEFT"]``."""
        from ale_py import Action

        return [Action(a).name for a in self.action_set]

    @property
    def available_modes(self) -> list[int]:
        return list(self._core.available_modes)

    @property
    def available_difficulties(self) -> list[int]:
        return list(self._core.available_difficulties)

    def __repr__(self) -> str:
        return f"AtariVectorEnv({self.game!r}, num_envs={self.num_envs}, batch_size={self.batch_size})"
