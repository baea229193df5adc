"""TorchRL environments over ``AtariVectorEnv``, through TorchRL's own ``GymWrapper``.

TorchRL (checked with 0.14 and Gymnasium 1.4) accepts a Gymnasium ``VectorEnv`` in two autoreset
modes: DISABLED, where it resets finished environments itself through
``reset(options={"reset_mask": ...})`` (the mode TorchRL prefers), and SAME_STEP, where it
reads the terminal observation from ``info["final_obs"]``. NEXT_STEP is refused by TorchRL.

DISABLED is the default here: the rollout is then exactly the native env's. In SAME_STEP mode
TorchRL discards the autoreset and calls a plain ``reset()`` whenever every env ends on the
same step, which draws new noop counts. Info entries (``lives``, ...) are read into the
tensordict only in SAME_STEP mode, and only those present when TorchRL first inspects the env;
``info["episode"]`` is not among them, so count returns with TorchRL's ``RewardSum`` instead.

Example::

    from atari_vec.adapters.torchrl import make_torchrl_env

    env = make_torchrl_env("pong", num_envs=8)
    rollout = env.rollout(100, break_when_any_done=False)
    rollout["next", "observation"].shape  # torch.Size([8, 100, 4, 84, 84])
"""

from __future__ import annotations

from typing import Any

from gymnasium.vector import AutoresetMode, VectorWrapper
from torchrl.envs import EnvBase
from torchrl.envs.libs.gym import GymWrapper

from atari_vec.vector_env import AtariVectorEnv

_SUPPORTED = (AutoresetMode.DISABLED, AutoresetMode.SAME_STEP)

# EnvPool's info keys for CleanRL-style scripts; TorchRL copies every info key into its
# tensordict, where these two would overwrite its own "reward" and "terminated".
_CLASHING_INFO_KEYS = ("reward", "terminated")


class _WithoutClashingInfo(VectorWrapper):
    """Drops the info keys that share a name with TorchRL's own entries (two dict pops per
    step)."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, self._strip(info)

    def step(self, actions: Any) -> tuple[Any, ...]:
        *out, info = self.env.step(actions)
        return (*out, self._strip(info))

    def __getattr__(self, name: str) -> Any:  # autoreset_mode, render, ...: the env's own
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.env, name)

    @staticmethod
    def _strip(info: dict[str, Any]) -> dict[str, Any]:
        for key in _CLASHING_INFO_KEYS:
            info.pop(key, None)
        return info


def wrap_torchrl(env: AtariVectorEnv, **wrapper_kwargs: Any) -> EnvBase:
    """Wrap an existing ``AtariVectorEnv`` in TorchRL's ``GymWrapper``.

    Args:
        env: a synchronous ``AtariVectorEnv`` (``batch_size == num_envs``) in DISABLED or
            SAME_STEP autoreset mode.
        **wrapper_kwargs: passed to ``GymWrapper``; ``categorical_action_encoding`` defaults to
            True so actions are integer indices rather than one-hot vectors.

    Returns:
        A TorchRL environment with batch size ``(num_envs,)``: a ``GymWrapper`` in DISABLED
        mode, a ``TransformedEnv`` over one (``VecGymEnvTransform``) in SAME_STEP mode.
    """
    if not isinstance(env, AtariVectorEnv):
        raise TypeError(f"expected an AtariVectorEnv, got {type(env).__name__}")
    if env.autoreset_mode not in _SUPPORTED:
        raise ValueError(
            f"TorchRL supports autoreset modes {[m.value for m in _SUPPORTED]}, "
            f"not {env.autoreset_mode.value}"
        )
    if env.batch_size != env.num_envs:
        raise ValueError(
            f"TorchRL steps all environments at once: batch_size ({env.batch_size}) must equal "
            f"num_envs ({env.num_envs})"
        )
    wrapper_kwargs.setdefault("categorical_action_encoding", True)
    return GymWrapper(_WithoutClashingInfo(env), **wrapper_kwargs)


def make_torchrl_env(
    game: str,
    num_envs: int = 1,
    *,
    autoreset_mode: AutoresetMode | str = AutoresetMode.DISABLED,
    device: Any = "cpu",
    **kwargs: Any,
) -> EnvBase:
    """Create ``AtariVectorEnv(game, num_envs, autoreset_mode=..., **kwargs)`` for TorchRL.

    Args:
        game: ROM id, e.g. ``"pong"``.
        num_envs: number of environments; the TorchRL batch size.
        autoreset_mode: DISABLED (default, TorchRL does the resets) or SAME_STEP.
        device: the device of the tensors TorchRL returns.
        **kwargs: other ``AtariVectorEnv`` arguments.

    Returns:
        The TorchRL environment (see :func:`wrap_torchrl`).
    """
    env = AtariVectorEnv(game, num_envs, autoreset_mode=autoreset_mode, **kwargs)
    try:
        return wrap_torchrl(env, device=device)
    except Exception:
        env.close()
        raise


__all__ = ["make_torchrl_env", "wrap_torchrl"]
