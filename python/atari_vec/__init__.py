"""atari_vec: fast, bit-exact vectorized Atari environments.

The native engine (``atari_vec._core``) runs N ALE instances on a C++ thread pool and does
frameskip, max-pool, grayscale, resize, frame stacking and autoreset; ``AtariVectorEnv`` is
the Gymnasium ``VectorEnv`` over it.
"""

from __future__ import annotations

from atari_vec import _core
from atari_vec._games import list_games
from atari_vec.registration import register_envs
from atari_vec.vector_env import AtariVectorEnv, PlanningResult

__version__: str = _core.__version__
ALE_VERSION: str = _core.ALE_VERSION

__all__ = ["ALE_VERSION", "AtariVectorEnv", "PlanningResult", "__version__", "list_games", "register_envs"]

register_envs()  # the AtariVec/<Game>-v5 ids of gym.make and gym.make_vec
