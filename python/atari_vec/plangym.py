"""plangym's Atari API (plangym 0.1.32) over atari_vec's native pool: change the import,
keep the code.

    from atari_vec import plangym          # instead of: import plangym
    env = plangym.make("ALE/MsPacman-v5", obs_type="ram", n_workers=2)
    state, obs, info = env.reset()
    states, obs, rewards, terminals, truncateds, infos = env.step_batch(actions, [state] * 512)

Every walker of ``step_batch`` runs in native code on the pool's worker threads
(``AtariVectorEnv.step_states``), with the GIL released: no Python per walker, no pickled
states through pipes. ``n_workers`` and ``ray`` choose how many threads, not processes.

A state is a 1-D ``uint8`` row (``AtariVectorEnv.clone_states``): it works with ``.copy()``,
``==``, pickle and object arrays, as plangym's object-array states do. Results, types and
``info`` keys are plangym's: rewards are Python floats, flags Python bools, batches lists.

plangym's own quirks are kept by default, so that switching the import changes no result:
its frameskip is applied twice (``dt * frameskip ** 2`` emulator frames per step: plangym
repeats a gym step of ``frameskip`` frames ``dt * frameskip`` times), and ``episodic_life``
has no effect (plangym reads a key ale-py no longer sets). ``exact_plangym=False`` turns on
the sensible behaviour: ``dt * frameskip`` frames per step, and a lost life ends the step
with ``terminal=True`` when ``episodic_life`` is set.

Any game atari_vec knows works, under any spelling of its id ("ALE/MsPacman-v5",
"MsPacmanNoFrameskip-v4", "ms_pacman"), not only plangym's list of 63.
"""

from __future__ import annotations

import os
import re
from typing import Any, Sequence

import numpy as np
from gymnasium import spaces

from atari_vec._games import normalize_game, screen_size
from atari_vec.vector_env import AtariVectorEnv

__all__ = ["AtariEnv", "ParallelEnv", "RayEnv", "make"]


def _game_of(name: str) -> str:
    base = name.split("/")[-1]
    base = re.sub(r"(-ram)?(NoFrameskip|Deterministic)?-v\d+$", "", base)
    return normalize_game(base)


def _default_obs_type(name: str, obs_type: str) -> str:
    # plangym's rule, substring match included ("NoFrameskip" contains "ram").
    if "ram" in name or obs_type == "ram":
        return "ram"
    return "grayscale" if obs_type == "grayscale" else "rgb"


class AtariEnv:
    """plangym's ``AtariEnv``: one emulator you step, save and restore, plus ``step_batch``
    over many states at once. Constructor arguments and defaults are plangym 0.1.32's."""

    STATE_IS_ARRAY = True
    OBS_IS_ARRAY = True
    SINGLETON = False
    AVAILABLE_OBS_TYPES = {"rgb", "grayscale", "ram"}
    DEFAULT_OBS_TYPE = "rgb"
    AVAILABLE_RENDER_MODES = {"human", "rgb_array"}

    def __init__(
        self,
        name: str,
        frameskip: int = 5,
        episodic_life: bool = False,
        autoreset: bool = True,
        delay_setup: bool = False,
        remove_time_limit: bool = True,
        obs_type: str = "rgb",
        mode: int = 0,
        difficulty: int = 0,
        repeat_action_probability: float = 0.0,
        full_action_space: bool = False,
        render_mode: str | None = "rgb_array",
        possible_to_win: bool = False,
        wrappers: Any = None,
        array_state: bool = True,
        clone_seeds: bool = False,
        *,
        n_workers: int | None = None,
        exact_plangym: bool = True,
        return_image: bool = False,
        **kwargs: Any,
    ):
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if render_mode is not None and render_mode not in self.AVAILABLE_RENDER_MODES:
            raise ValueError(f"render_mode must be one of {sorted(self.AVAILABLE_RENDER_MODES)} or None, got {render_mode!r}")
        if return_image and render_mode is None:
            raise ValueError("return_image=True needs a render_mode")
        if obs_type not in self.AVAILABLE_OBS_TYPES:
            raise ValueError(f"obs_type must be one of {sorted(self.AVAILABLE_OBS_TYPES)}, got {obs_type!r}")
        if wrappers:
            raise ValueError("atari_vec.plangym runs the emulator natively: gymnasium wrappers cannot be applied")
        if isinstance(frameskip, bool) or not isinstance(frameskip, (int, np.integer)) or frameskip < 1:
            raise ValueError(f"frameskip must be a positive int, got {frameskip!r}")
        self._name = name
        self.game = _game_of(name)
        self.frameskip = int(frameskip)
        self.episodic_life = bool(episodic_life)
        self.autoreset = bool(autoreset)
        self.delay_setup = bool(delay_setup)
        self._remove_time_limit = bool(remove_time_limit)
        self._render_mode = render_mode
        self._mode = mode
        self._difficulty = difficulty
        self._repeat_action_probability = float(repeat_action_probability)
        self._full_action_space = bool(full_action_space)
        self.possible_to_win = possible_to_win
        self._wrappers = wrappers
        self.STATE_IS_ARRAY = bool(array_state)
        self.clone_seeds = clone_seeds
        self.DEFAULT_OBS_TYPE = _default_obs_type(name, obs_type)
        self._obs_type = self.DEFAULT_OBS_TYPE
        self._return_image = bool(return_image)
        self.n_workers = n_workers
        self.exact_plangym = bool(exact_plangym)
        self._gym_env_kwargs = dict(kwargs)
        self._gym_env: AtariVectorEnv | None = None
        if not self.delay_setup:
            self.setup()

    # -- setup ----------------------------------------------------------------------------

    def _pool(self, num_envs: int, render: bool) -> AtariVectorEnv:
        kw = dict(self._gym_env_kwargs)
        max_frames = kw.pop("max_num_frames_per_episode", 108000)
        if kw:
            raise TypeError(f"unexpected keyword arguments: {sorted(kw)}")
        return AtariVectorEnv(
            self.game, num_envs, raw=True, obs_type=self._obs_type, stack_num=0,
            img_height=screen_size(self.game)[0], img_width=screen_size(self.game)[1],
            frameskip=self.frameskip, maxpool=False, noop_max=0, use_fire_reset=False,
            reward_clipping=False, repeat_action_probability=self._repeat_action_probability,
            full_action_space=self._full_action_space, mode=self._mode, difficulty=self._difficulty,
            max_num_frames_per_episode=max_frames,
            episodic_life=self.episodic_life and not self.exact_plangym,
            render_mode="rgb_array" if render else None, num_threads=min(num_envs, _cpus()),
        )

    def setup(self) -> None:
        """Build the emulator (``delay_setup=True`` postpones this to the first use); after
        ``close()``, build it again (as plangym's setup() does)."""
        if self._gym_env is not None and not self._gym_env.closed:
            return
        self.close()
        # The env you step, save and restore: one emulator, stepped natively frame group by
        # frame group so its screen and RAM are always current.
        self._gym_env = self._pool(1, render=True)
        self._gym_env.reset()
        self._action_space = spaces.Discrete(self._gym_env.single_action_space.n)
        self._observation_space = self._gym_env.single_observation_space
        self._batch_env: AtariVectorEnv | None = None  # for step_batch, made on first use

    @property
    def gym_env(self) -> AtariVectorEnv:
        """The native one-env pool (built on first use with ``delay_setup``, and again on use
        after ``close()``: plangym's envs stay usable after close, so ours do too)."""
        if self._gym_env is None or self._gym_env.closed:
            self.setup()
        return self._gym_env

    # -- properties plangym has ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def unwrapped(self) -> AtariEnv:
        return self

    @property
    def return_image(self) -> bool:
        return self._return_image

    @property
    def obs_type(self) -> str:
        return self._obs_type

    @property
    def render_mode(self) -> str | None:
        return self._render_mode

    @property
    def remove_time_limit(self) -> bool:
        return self._remove_time_limit

    @property
    def mode(self) -> int:
        return self._mode

    @property
    def difficulty(self) -> int:
        return self._difficulty

    @property
    def repeat_action_probability(self) -> float:
        return self._repeat_action_probability

    @property
    def full_action_space(self) -> bool:
        return self._full_action_space

    @property
    def observation_space(self) -> spaces.Space:
        self.gym_env
        return self._observation_space

    @property
    def action_space(self) -> spaces.Space:
        self.gym_env
        return self._action_space

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.observation_space.shape)

    @property
    def action_shape(self) -> tuple[int, ...]:
        return tuple(self.action_space.shape)

    @property
    def n_actions(self) -> np.int64:
        return np.int64(self.action_space.n)

    @property
    def img_shape(self) -> tuple[int, ...]:
        return (210, 160, 3)

    @property
    def reward_range(self) -> None:
        return None

    @property
    def metadata(self) -> dict[str, Any]:
        return {"render_modes": ["human", "rgb_array"], "render_fps": 30}

    def __repr__(self) -> str:
        return (
            f"{self.__class__} {self.name} with parameters:\n"
            f"obs_type={self.obs_type}, render_mode={self.render_mode}\n"
            f"frameskip={self.frameskip}, obs_shape={self.obs_shape},\n"
            f"action_shape={self.action_shape}"
        )

    __str__ = __repr__

    # -- one emulator ---------------------------------------------------------------------

    def _sub_steps(self, dt: Any) -> np.ndarray:
        """Native steps (gym steps of `frameskip` frames) per plangym step."""
        d = np.asarray(dt, dtype=np.int64)
        return d * self.frameskip if self.exact_plangym else d

    def reset(self, return_state: bool = True) -> tuple:
        """Start a new game: ``(state, obs, info)``, or ``(obs, info)``."""
        obs, info = self.gym_env.reset()
        info = {k: int(info[k][0]) for k in ("lives", "episode_frame_number", "frame_number")}
        if self._return_image:
            info["rgb"] = self.get_image()
        obs = obs[0].copy()
        return (self.get_state(), obs, info) if return_state else (obs, info)

    def get_state(self) -> np.ndarray:
        """The emulator's state: a 1-D uint8 row (restore it with ``set_state``)."""
        return self.gym_env.clone_states(0)[0]

    def set_state(self, state: np.ndarray) -> None:
        self.gym_env.restore_states(_row(state), 0)

    def get_image(self) -> np.ndarray:
        """The current RGB screen, (210, 160, 3)."""
        return self.gym_env.render(0)[0]

    def get_ram(self) -> np.ndarray:
        """The emulator's RAM now, (128,) uint8."""
        return self.gym_env.get_ram(0)[0]

    def sample_action(self) -> np.int64:
        return self.action_space.sample()

    def seed(self, seed: int | None = None) -> None:
        """As plangym's: does nothing (ale-py envs have no seed() method)."""
        return None

    def step(self, action: Any, state: np.ndarray | None = None, dt: int = 1,
             return_state: bool | None = None) -> tuple:
        """From `state` (or the current one) take `action` for `dt` steps. Returns
        ``(obs, reward, terminal, truncated, info)``, with the new state in front when
        `return_state` is true, or when it is None and a state was passed."""
        if state is not None:
            self.set_state(state)
        out = self._step_here(action, dt)
        out[4]["dt"] = dt
        want_state = return_state or (state is not None and return_state is None)
        result = ((self.get_state(),) if want_state else ()) + out
        if (out[2] or out[3]) and self.autoreset:
            self.reset(return_state=False)
        return result

    def step_with_dt(self, action: Any, dt: int = 1) -> tuple:
        """plangym's inner loop: ``(obs, reward, terminal, truncated, info)``, no ``info["dt"]``,
        no autoreset."""
        return self._step_here(action, dt)

    def _step_here(self, action: Any, dt: Any) -> tuple:
        """dt plangym steps on the env itself, stopping at the end of the episode."""
        a = np.asarray(action, dtype=np.int64).reshape(1)
        sub_steps = int(self._sub_steps(dt))
        if sub_steps < 1:
            raise ValueError(f"dt must be >= 1, got {dt!r}")
        env = self.gym_env
        reward = 0.0
        for n_step in range(1, sub_steps + 1):
            obs, rew, term, trunc, info = env.step(a)
            reward += float(rew[0])
            if term[0] or trunc[0]:
                break
        info = {"lives": int(info["lives"][0]), "episode_frame_number": int(info["episode_frame_number"][0]),
                "frame_number": int(info["frame_number"][0]), "lifes": -1, "lost_life": None,
                "n_step": n_step}
        if self._return_image:
            info["rgb"] = self.get_image()
        return obs[0].copy(), reward, bool(term[0]), bool(trunc[0]), info

    def step_batch(self, actions: Sequence[Any] | np.ndarray, states: Any = None, dt: Any = 1,
                   return_state: bool | None = True) -> tuple[list, ...]:
        """Many walkers at once: a tuple of lists, ``(states, observs, rewards, terminals,
        truncateds, infos)`` (states only when `return_state` is true, or when it is None and
        states were passed). With states, every walker runs natively in parallel; without,
        the walkers form one chain on this env, as in plangym."""
        n = len(actions)
        dt_is_array = isinstance(dt, (np.ndarray, list, tuple))
        dts = list(dt) if isinstance(dt, (list, tuple)) else (dt if dt_is_array else np.full(n, dt, np.int64))
        no_states = states is None or states[0] is None
        if no_states:
            data = [self.step(a, None, d, return_state) for a, d in zip(actions, dts)]
            return tuple(list(x) for x in zip(*data))
        if len(states) != n:
            raise ValueError(f"{len(states)} states for {n} actions")
        rows = np.stack([_row(s) for s in states])
        acts = np.asarray(actions)
        if acts.shape != (n,):
            acts = acts.reshape(n)
        res = self._plan(rows, acts, self._sub_steps(np.asarray(dts)).reshape(n))
        want_state = return_state or return_state is None
        infos_dt = [d if isinstance(dt, (list, tuple)) else np.int64(d) for d in dts]
        obs = list(res.observations)
        rewards = res.rewards.astype(float).tolist()
        terminals = res.terminated.tolist()
        truncateds = res.truncated.tolist()
        infos = self._infos(res, infos_dt)
        out = (obs, rewards, terminals, truncateds, infos)
        return ((list(res.states),) + out) if want_state else out

    def clone(self, **kwargs: Any) -> AtariEnv:
        params = dict(
            name=self.name, frameskip=self.frameskip, autoreset=self.autoreset,
            delay_setup=self.delay_setup, remove_time_limit=self._remove_time_limit,
            render_mode=self._render_mode, mode=self._mode, difficulty=self._difficulty,
            repeat_action_probability=self._repeat_action_probability,
            full_action_space=self._full_action_space, obs_type=self._obs_type,
            n_workers=self.n_workers, exact_plangym=self.exact_plangym,
        )
        params.update(kwargs)
        params.update(self._gym_env_kwargs)
        return self.__class__(**params)

    def close(self) -> None:
        if self._gym_env is not None:
            self._gym_env.close()
        if getattr(self, "_batch_env", None) is not None:
            self._batch_env.close()
            self._batch_env = None

    def render(self, mode: str | None = None) -> np.ndarray:
        return self.get_image()

    # -- internals --------------------------------------------------------------------------

    def _plan(self, rows: np.ndarray, actions: np.ndarray, steps: np.ndarray):
        if (steps < 1).any():
            raise ValueError("dt must be >= 1")
        if self._batch_env is None:
            self.gym_env
            # One env per thread: step_batch spreads the walkers over all of them.
            self._batch_env = self._pool(max(1, int(self.n_workers or _cpus())), render=False)
            self._batch_env.reset()
        return self._batch_env.step_states(rows, actions, steps)

    def _infos(self, res, dts) -> list[dict]:
        lives = res.info["lives"].tolist()
        efn = res.info["episode_frame_number"].tolist()
        fn = res.info["frame_number"].tolist()
        n_step = res.info["steps_taken"].tolist()
        infos = []
        for i, d in enumerate(dts):
            info = {"lives": lives[i], "episode_frame_number": efn[i], "frame_number": fn[i],
                    "lifes": -1, "lost_life": None, "n_step": n_step[i], "dt": d}
            if self._return_image:
                info["rgb"] = self.get_image()
            infos.append(info)
        return infos


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _row(state: Any) -> np.ndarray:
    if isinstance(state, np.ndarray) and state.dtype == np.uint8 and state.ndim == 1:
        return state
    raise TypeError(
        "a state is a 1-D uint8 row from get_state()/step(); got "
        f"{type(state).__name__} {getattr(state, 'dtype', '')} {getattr(state, 'shape', '')}".rstrip()
    )


class ParallelEnv(AtariEnv):
    """plangym's ``ParallelEnv(env_class, name, frameskip=1, ..., n_workers=8)``: here
    ``n_workers`` native threads, not processes. ``step_batch`` returns states only when
    states were passed (``return_state=None``), as plangym's vectorized envs do."""

    def __init__(self, env_class: Any = None, name: str = "", frameskip: int = 1,
                 autoreset: bool = True, delay_setup: bool = False, n_workers: int = 8,
                 blocking: bool = False, **kwargs: Any):
        self.env_class = env_class
        self.blocking = blocking
        super().__init__(name, frameskip=frameskip, autoreset=autoreset, delay_setup=delay_setup,
                         n_workers=n_workers, **kwargs)

    def step_batch(self, actions, states=None, dt=1, return_state=None):
        return super().step_batch(actions, states, dt, return_state)

    def clone(self, **kwargs: Any) -> ParallelEnv:
        params = dict(env_class=self.env_class, name=self.name, frameskip=self.frameskip,
                      autoreset=self.autoreset, delay_setup=self.delay_setup,
                      n_workers=self.n_workers, blocking=self.blocking,
                      obs_type=self._obs_type, exact_plangym=self.exact_plangym)
        params.update(kwargs)
        params.update(self._gym_env_kwargs)
        return self.__class__(**params)


class RayEnv(ParallelEnv):
    """plangym's ``RayEnv``: the same native threads as ``ParallelEnv`` (no Ray needed)."""

    def __init__(self, env_class: Any = None, name: str = "", frameskip: int = 1,
                 autoreset: bool = True, delay_setup: bool = False, n_workers: int = 8,
                 **kwargs: Any):
        super().__init__(env_class, name, frameskip=frameskip, autoreset=autoreset,
                         delay_setup=delay_setup, n_workers=n_workers, **kwargs)


def make(name: str | None = None, n_workers: int | None = None, ray: bool = False,
         domain_name: str | None = None, state: str | None = None, **kwargs: Any) -> AtariEnv:
    """plangym's ``make``: ``RayEnv`` with ``ray=True``, ``ParallelEnv`` with ``n_workers``,
    else ``AtariEnv``. Any Atari id atari_vec knows works."""
    if name is None:
        raise ValueError("make() needs the name of an Atari game")
    if domain_name is not None or state is not None:
        raise ValueError("domain_name and state belong to non-Atari plangym envs")
    if ray:
        return RayEnv(AtariEnv, name, n_workers=n_workers or 8, **kwargs)
    if n_workers is not None:
        return ParallelEnv(AtariEnv, name, n_workers=n_workers, **kwargs)
    return AtariEnv(name, **kwargs)


def _register_with_plangym() -> None:
    """With plangym installed, our classes count as its PlanEnv (its ABC), so code and tests
    that check ``isinstance(env, plangym.core.PlanEnv)`` accept them."""
    try:
        from plangym.core import PlanEnv
    except Exception:  # plangym is optional
        return
    PlanEnv.register(AtariEnv)


_register_with_plangym()
