"""Stable-Baselines3 ``VecEnv`` over an ``AtariVectorEnv`` in SAME_STEP autoreset mode.

Example::

    from stable_baselines3 import PPO
    from atari_vec.adapters.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("breakout", num_envs=8)
    model = PPO("CnnPolicy", venv, n_steps=128).learn(10_000)
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from atari_vec.vector_env import AtariVectorEnv

# Keys of a SAME_STEP step's info that this adapter turns into SB3's own entries.
_CONSUMED_KEYS = frozenset(
    {"final_obs", "_final_obs", "final_info", "_final_info", "episode", "_episode"}
)

# Methods that only read state, so calling them for a subset of environments is harmless.
_READ_ONLY_METHODS = frozenset({"get_action_meanings"})


def make_sb3_vec_env(game: str, num_envs: int = 1, **kwargs: Any) -> AtariSB3VecEnv:
    """Create ``AtariVectorEnv(game, num_envs, autoreset_mode=SAME_STEP, **kwargs)`` for SB3.

    Args:
        game: ROM id, e.g. ``"breakout"``.
        num_envs: number of environments.
        **kwargs: other ``AtariVectorEnv`` arguments. ``autoreset_mode`` may only be SAME_STEP
            and ``batch_size`` only ``num_envs`` (or 0): SB3 steps every env each time.

    Returns:
        The SB3 vectorized environment.
    """
    mode = kwargs.pop("autoreset_mode", AutoresetMode.SAME_STEP)
    env = AtariVectorEnv(game, num_envs, autoreset_mode=mode, **kwargs)
    try:
        return AtariSB3VecEnv(env)
    except Exception:
        env.close()
        raise


def _channel_first_space(space: Box) -> Box:
    """Observation space as SB3's CNN policies want it: ``(channels, height, width)``."""
    if len(space.shape) == 3:
        return space
    stack, height, width, colours = space.shape
    return Box(0, 255, (stack * colours, height, width), np.uint8)


def _split_info(info: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Turn a Gymnasium vector info dict (arrays plus ``_key`` masks) into per-env dicts.

    Unmasked arrays are split column-wise (one ``tolist()`` per key, one ``dict`` per env);
    only masked keys, which hold values for a few envs, are visited env by env.
    """
    plain = [k for k, v in info.items()
             if not k.startswith("_") and f"_{k}" not in info and not isinstance(v, dict)]
    columns = [info[k].tolist() if isinstance(info[k], np.ndarray) else list(info[k])
               for k in plain]
    out = [dict(zip(plain, row)) for row in zip(*columns)] if plain else [
        {} for _ in range(num_envs)
    ]
    for key, value in info.items():
        if key.startswith("_") or key in plain:
            continue
        mask = info.get(f"_{key}")
        values = _split_info(value, num_envs) if isinstance(value, dict) else value
        for i in range(num_envs) if mask is None else np.flatnonzero(mask):
            out[i][key] = values[i]
    return out


class AtariSB3VecEnv(VecEnv):
    """SB3 view of one ``AtariVectorEnv``: ``reset`` returns observations only, ``step``
    returns ``(obs, rewards, dones, infos)`` with ``infos`` a list of dicts.

    When an episode ends, the returned observation already starts the next episode and
    ``infos[i]["terminal_observation"]`` holds the last one; ``infos[i]["TimeLimit.truncated"]``
    is ``truncated and not terminated``; ``infos[i]["episode"]`` carries the native episode
    statistics (``"r"`` unclipped return, ``"l"`` length in steps, ``"t"`` seconds since this
    adapter was created) in the format SB3's logger reads for ``ep_rew_mean``. The info of
    the reset that started the new episode is in ``reset_infos[i]``.

    Grayscale observations ``(stack, H, W)`` are passed as they are (channel-first images);
    RGB ones ``(stack, H, W, 3)`` become ``(stack * 3, H, W)``.

    Args:
        env: a synchronous (``batch_size == num_envs``) ``AtariVectorEnv`` created with
            ``autoreset_mode=SAME_STEP``. The adapter owns it and closes it in ``close()``.
    """

    def __init__(self, env: AtariVectorEnv):
        if not isinstance(env, AtariVectorEnv):
            raise TypeError(f"expected an AtariVectorEnv, got {type(env).__name__}")
        if env.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                "SB3 expects the observation of the next episode together with the terminal "
                f"one: create the AtariVectorEnv with autoreset_mode=SAME_STEP, "
                f"not {env.autoreset_mode}"
            )
        if env.batch_size != env.num_envs:
            raise ValueError(
                f"SB3 steps all environments at once: batch_size ({env.batch_size}) must equal "
                f"num_envs ({env.num_envs})"
            )
        self.vector_env = env
        self._waiting = False
        self._start = time.perf_counter()
        self._rgb = len(env.single_observation_space.shape) == 4
        super().__init__(
            env.num_envs,
            _channel_first_space(env.single_observation_space),
            env.single_action_space,
        )

    # -- observations ---------------------------------------------------------------------

    def _to_channel_first(self, obs: np.ndarray) -> np.ndarray:
        """Reshape a batch ``(n, stack, H, W, 3)`` to ``(n, stack * 3, H, W)``."""
        if not self._rgb:
            return obs
        n, stack, height, width, colours = obs.shape
        return np.ascontiguousarray(obs.transpose(0, 1, 4, 2, 3)).reshape(
            n, stack * colours, height, width
        )

    # -- the VecEnv API -------------------------------------------------------------------

    def reset(self) -> VecEnvObs:
        """Reset every environment with the seeds given to ``seed()`` (if any)."""
        if any(self._options):
            raise NotImplementedError("AtariVectorEnv takes no per-environment reset options")
        self._drain()
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, info = self.vector_env.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = _split_info(info, self.num_envs)
        return self._to_channel_first(obs)

    def step_async(self, actions: np.ndarray) -> None:
        """Send one action per environment; the native workers start at once."""
        self.vector_env.send(np.asarray(actions))
        self._waiting = True

    def step_wait(self) -> VecEnvStepReturn:
        """Wait for the step sent by ``step_async``."""
        if not self._waiting:
            raise RuntimeError("step_wait() called without a pending step_async()")
        obs, rewards, terminated, truncated, info = self.vector_env.recv()
        self._waiting = False
        dones = terminated | truncated
        infos = _split_info(
            {k: v for k, v in info.items() if k not in _CONSUMED_KEYS}, self.num_envs
        )
        if "_final_obs" in info:
            final_infos = _split_info(info["final_info"], self.num_envs)
            final_obs = self._to_channel_first(info["final_obs"])
            for i in np.flatnonzero(info["_final_obs"]):
                self.reset_infos[i] = infos[i]
                infos[i] = final_infos[i]
                infos[i]["terminal_observation"] = final_obs[i]
        if "_episode" in info:
            elapsed = round(time.perf_counter() - self._start, 6)
            for i in np.flatnonzero(info["_episode"]):
                infos[i]["episode"] = {
                    "r": float(info["episode"]["r"][i]),
                    "l": int(info["episode"]["l"][i]),
                    "t": elapsed,
                }
        for i in range(self.num_envs):
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return self._to_channel_first(obs), rewards.astype(np.float32), dones, infos

    def _drain(self) -> None:
        """Collect a step still in flight, so the env can be reset or closed."""
        if self._waiting:
            self.vector_env.recv()
            self._waiting = False

    def close(self) -> None:
        """Close the native environment (joins its worker threads)."""
        self._waiting = False
        self.vector_env.close()

    def get_images(self) -> list[np.ndarray | None]:
        """Full-colour screens of all environments (needs ``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        self._drain()
        return list(self.vector_env.render())

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        chosen = list(self._get_indices(indices))
        bad = [i for i in chosen if not 0 <= i < self.num_envs]
        if bad:
            raise IndexError(f"environment indices {bad} out of range [0, {self.num_envs})")
        return chosen

    def _require_all(self, indices: VecEnvIndices, what: str) -> list[int]:
        chosen = self._indices(indices)
        if sorted(set(chosen)) != list(range(self.num_envs)):
            raise NotImplementedError(
                f"{what} acts on the one native env shared by all {self.num_envs} environments, "
                "so it cannot target a subset of them"
            )
        return chosen

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the shared ``AtariVectorEnv``, once per requested index."""
        value = getattr(self.vector_env, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the shared ``AtariVectorEnv``; indices must cover every env."""
        self._require_all(indices, "set_attr")
        setattr(self.vector_env, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the shared ``AtariVectorEnv`` once; its result is repeated per index.

        ``"render"`` renders the requested environments. Other methods need all indices,
        except read-only ones such as ``get_action_meanings``.
        """
        if method_name == "render":
            chosen = self._indices(indices)
            if self.render_mode != "rgb_array":
                return [None] * len(chosen)
            self._drain()
            return list(self.vector_env.render(np.asarray(chosen, dtype=np.int64)))  # a tuple
        if method_name in _READ_ONLY_METHODS:
            chosen = self._indices(indices)
        else:
            chosen = self._require_all(indices, f"env_method({method_name!r})")
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        return [result for _ in chosen]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Always False: the environments are native, no ``gym.Wrapper`` is involved."""
        return [False for _ in self._indices(indices)]

    def __repr__(self) -> str:
        return f"AtariSB3VecEnv({self.vector_env!r})"


__all__ = ["AtariSB3VecEnv", "make_sb3_vec_env"]
