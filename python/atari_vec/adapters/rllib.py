"""RLlib (Ray >= 2.52, new API stack) on atari_vec: each EnvRunner steps one native pool.

RLlib builds the pool through our Gymnasium vector entry point
(``gym_env_vectorize_mode="vector_entry_point"``); :func:`configure` sets everything that has
to agree for that to be right, and :func:`ppo_config` returns a ready PPO config::

    from atari_vec.adapters.rllib import ppo_config

    algo = ppo_config("pong", num_envs_per_env_runner=8, num_env_runners=2).build_algo()
    print(algo.train()["env_runners"]["atari_vec_episode_return"])

What it takes care of (each a silent failure otherwise):

- RLlib's CNN encoder reads observations channels-last (H, W, C) and as floats: the pool
  makes ``channels_last=True`` frames and an env-to-module connector scales them to [0, 1]
  (which the learner sees too). A Nature-CNN filter stack fits 84x84 (RLlib's default filters
  for that size make a 33M-parameter model).
- RLlib's sampler assumes NEXT_STEP autoreset and one info row per env
  (``batch_size == num_envs``); anything else is refused here with a ValueError.
- Our own preprocessing replaces RLlib's Atari wrappers (do not add them: frames would be
  processed twice). RLlib's ``episode_return_mean`` is the sum of the rewards it trained on
  (clipped, per life with ``episodic_life``); the callback logs the native, unclipped return
  of the whole game from ``info["episode"]`` as ``atari_vec_episode_return`` (and
  ``atari_vec_episode_length``).
- Each runner's pool gets ``num_cpus_per_env_runner`` threads and no CPU affinity: runners on
  one node must not pin their threads to the same cores.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ..registration import gym_id

# The DQN-Nature conv stack, "valid" padding: 84x84 -> 20 -> 9 -> 7 (3.3M parameters with
# a 512-unit head).
NATURE_CNN = [[32, [8, 8], 4, "valid"], [64, [4, 4], 2, "valid"], [64, [3, 3], 1, "valid"]]

# AtariVectorEnv arguments that RLlib's sampler needs at one value.
_FIXED = {"autoreset_mode": "NEXT_STEP", "batch_size": 0}


def env_id(game: str) -> str:
    """RLlib's env string for a game: the module to import, then the Gymnasium id."""
    return "atari_vec:" + gym_id(game)


def env_config(num_cpus_per_env_runner: float = 1, **env_kwargs: Any) -> dict[str, Any]:
    """The ``env_config`` RLlib passes to ``AtariVectorEnv``: channels-last frames, threads
    from the runner's CPUs, no affinity; ValueError for settings RLlib's sampler mishandles."""
    for key, needed in _FIXED.items():
        if key in env_kwargs:
            value = env_kwargs[key]
            name = getattr(value, "name", value)
            if key == "autoreset_mode" and str(name).upper() != needed:
                raise ValueError(
                    f"RLlib needs autoreset_mode NEXT_STEP, got {value!r}: its sampler starts a new "
                    "episode after a done step and drops that step's action and reward, so in "
                    "SAME_STEP mode the first frame of each new episode would be stored as the "
                    "last frame of the old one"
                )
            if key == "batch_size" and value not in (0, env_kwargs.get("num_envs", 0)):
                raise ValueError(
                    f"RLlib needs batch_size == num_envs (0), got {value!r}: its info conversion "
                    "(DictInfoToList) expects one row per env on every step"
                )
    for key in ("num_envs", "render_mode"):
        if key in env_kwargs:
            raise ValueError(f"{key} is RLlib's to set (num_envs_per_env_runner); drop it")
    if env_kwargs.get("thread_affinity_offset", -1) != -1:
        raise ValueError("runners on one node would pin their threads to the same cores: leave "
                         "thread_affinity_offset at -1")
    threads = max(1, int(num_cpus_per_env_runner))
    return {"channels_last": True, "num_threads": threads, "thread_affinity_offset": -1,
            **env_kwargs}


def _to_float_connector():
    """An env-to-module connector that turns uint8 frames into float32 in [0, 1]."""
    from ray.rllib.connectors.env_to_module.observation_preprocessor import (
        SingleAgentObservationPreprocessor,
    )

    class UInt8ToFloat(SingleAgentObservationPreprocessor):
        def recompute_output_observation_space(self, in_obs_space, in_act_space):
            return gym.spaces.Box(0.0, 1.0, in_obs_space.shape, np.float32)

        def preprocess(self, observation, episode):
            return observation.astype(np.float32) * np.float32(1.0 / 255.0)

    return lambda env=None, spaces=None, device=None: UInt8ToFloat()


def _callback_class():
    from ray.rllib.callbacks.callbacks import RLlibCallback

    class NativeEpisodeStats(RLlibCallback):
        """Logs the pool's own episode statistics (unclipped, whole game)."""

        def on_episode_end(self, *, episode, metrics_logger=None, **kwargs):
            info = episode.get_infos(-1)
            stats = info.get("episode") if isinstance(info, dict) else None
            if stats is None or metrics_logger is None:
                return
            metrics_logger.log_value("atari_vec_episode_return", float(stats["r"]), window=100)
            metrics_logger.log_value("atari_vec_episode_length", int(stats["l"]), window=100)

    return NativeEpisodeStats


def configure(config: Any, game: str, *, num_envs_per_env_runner: int = 8,
              num_env_runners: int | None = None, num_cpus_per_env_runner: float | None = None,
              **env_kwargs: Any) -> Any:
    """Fill a user's ``AlgorithmConfig`` for an atari_vec game: environment, vector entry
    point, env runners, observation connector, model, callback. Returns the config."""
    if num_cpus_per_env_runner is None:
        num_cpus_per_env_runner = config.num_cpus_per_env_runner
    runners: dict[str, Any] = {
        "num_envs_per_env_runner": int(num_envs_per_env_runner),
        "gym_env_vectorize_mode": "vector_entry_point",
        "num_cpus_per_env_runner": num_cpus_per_env_runner,
        "env_to_module_connector": _to_float_connector(),
    }
    if num_env_runners is not None:
        runners["num_env_runners"] = int(num_env_runners)
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        config.environment(env_id(game),
                           env_config=env_config(num_cpus_per_env_runner, **env_kwargs))
        .env_runners(**runners)
        .rl_module(model_config=DefaultModelConfig(
            conv_filters=NATURE_CNN, conv_activation="relu", head_fcnet_hiddens=[512],
            vf_share_layers=True))
        .callbacks(_callback_class())
    )


def ppo_config(game: str, num_envs_per_env_runner: int = 8, num_env_runners: int = 2,
               **env_kwargs: Any) -> Any:
    """A ready ``PPOConfig`` for `game` (hyperparameters of the usual Atari PPO: lr 2.5e-4,
    clip 0.1, 4 epochs, GAE 0.95, entropy 0.01); change any of them on the returned config."""
    from ray.rllib.algorithms.ppo import PPOConfig

    config = PPOConfig().training(
        lr=2.5e-4, gamma=0.99, lambda_=0.95, clip_param=0.1, vf_clip_param=10.0,
        entropy_coeff=0.01, vf_loss_coeff=0.5, num_epochs=4, minibatch_size=256,
        train_batch_size_per_learner=128 * num_envs_per_env_runner * max(1, num_env_runners),
        grad_clip=0.5, grad_clip_by="global_norm",
    )
    return configure(config, game, num_envs_per_env_runner=num_envs_per_env_runner,
                     num_env_runners=num_env_runners, **env_kwargs)
