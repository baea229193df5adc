"""Gymnasium ids ``AtariVec/<Game>-v5``: our native vector env, and the reference single env.

``gym.make_vec("AtariVec/Breakout-v5", num_envs=16, **kwargs)`` returns
``AtariVectorEnv("breakout", 16, **kwargs)`` through the id's vector entry point.
``gym.make("AtariVec/Breakout-v5", **kwargs)`` returns Gymnasium's own single-env stack,
``FrameStackObservation(AtariPreprocessing(gym.make("ALE/Breakout-v5", frameskip=1)), 4,
padding_type="zero")``, configured from the same keyword arguments, which is the stack
``AtariVectorEnv`` reproduces bit for bit.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformReward

from atari_vec._games import list_games, normalize_game

NAMESPACE = "AtariVec"
VERSION = 5

# Keyword arguments of AtariVectorEnv that only concern the vector machinery.
_VECTOR_ONLY = frozenset(
    {"num_envs", "batch_size", "num_threads", "thread_affinity_offset", "autoreset_mode"}
)


def env_name(game: str) -> str:
    """Return the CamelCase name of a ROM id, spelt as ale-py's ids spell it.

    ``"ms_pacman"`` gives ``"MsPacman"``, ``"tic_tac_toe_3d"`` gives ``"TicTacToe3D"`` and
    ``"up_n_down"`` gives ``"UpNDown"`` (``str.title`` capitalises a letter after a digit).
    """
    return game.title().replace("_", "")


def env_id(game: str) -> str:
    """Return the Gymnasium id registered for a ROM id, e.g. ``"AtariVec/Breakout-v5"``."""
    return f"{NAMESPACE}/{env_name(game)}-v{VERSION}"


def register_envs() -> None:
    """Register ``AtariVec/<Game>-v5`` for every game of :func:`atari_vec.list_games`.

    Ids already in the registry are left alone, so calling this again does nothing.
    """
    for game in list_games():
        gym_id = env_id(game)
        if gym_id in gym.registry:
            continue
        gym.register(
            id=gym_id,
            entry_point="atari_vec.registration:make_reference_env",
            vector_entry_point="atari_vec.vector_env:AtariVectorEnv",
            kwargs={"game": game},
        )


def make_reference_env(
    game: str,
    *,
    render_mode: str | None = None,
    max_num_frames_per_episode: int = 108000,
    repeat_action_probability: float = 0.0,
    full_action_space: bool = False,
    continuous: bool = False,
    continuous_action_threshold: float = 0.5,
    img_height: int = 84,
    img_width: int = 84,
    grayscale: bool = True,
    stack_num: int = 4,
    frameskip: int = 4,
    maxpool: bool = True,
    noop_max: int = 30,
    episodic_life: bool = False,
    life_loss_info: bool = False,
    reward_clipping: bool = True,
    use_fire_reset: bool = False,
    mode: int | None = None,
    difficulty: int | None = None,
    **unsupported: Any,
) -> gym.Env:
    """Build Gymnasium's single-env Atari stack from ``AtariVectorEnv`` keyword arguments.

    The ALE env is ``gym.make("ALE/<Game>-v5", frameskip=1)`` with the given
    ``repeat_action_probability``, ``max_num_frames_per_episode``, ``full_action_space``,
    ``continuous``, ``continuous_action_threshold``, ``mode``, ``difficulty`` and
    ``render_mode``. On it: ``AtariPreprocessing(noop_max=noop_max, frame_skip=frameskip,
    screen_size=(img_width, img_height), grayscale_obs=grayscale,
    terminal_on_life_loss=episodic_life)``, then ``FrameStackObservation(stack_num,
    padding_type="zero")``, then a sign clip of the reward when ``reward_clipping``.

    Differences from ``AtariVectorEnv`` that no argument can remove: the no-op counts at reset
    come from a different random generator (pass ``noop_max=0`` to compare trajectories), and
    Gymnasium has no fire reset, so ``use_fire_reset`` defaults to False here.

    Args:
        game: ROM id, e.g. ``"breakout"``.
        render_mode: passed to the ALE env (``"rgb_array"`` or ``"human"``).
        max_num_frames_per_episode: ALE's truncation limit in emulator frames.
        repeat_action_probability: sticky-action probability.
        full_action_space: use all 18 actions.
        continuous: use ALE's continuous action space.
        continuous_action_threshold: ALE's threshold for continuous actions.
        img_height: observation height.
        img_width: observation width.
        grayscale: grayscale (True) or RGB observations.
        stack_num: number of stacked frames.
        frameskip: emulator frames per step (max-pooled over the last two).
        maxpool: must be True; AtariPreprocessing always max-pools.
        noop_max: maximum number of no-ops after a reset.
        episodic_life: end the episode when a life is lost.
        life_loss_info: must be False; Gymnasium has no equivalent.
        reward_clipping: replace each reward by its sign.
        use_fire_reset: must be False; Gymnasium has no equivalent.
        mode: game mode; None keeps the default.
        difficulty: game difficulty; None keeps the default.
        **unsupported: anything else raises ``TypeError``.

    Returns:
        The wrapped single environment.

    Raises:
        TypeError: for an argument, or a value, the reference stack cannot reproduce.
    """
    vector_only = sorted(_VECTOR_ONLY.intersection(unsupported))
    if vector_only:
        raise TypeError(
            f"{vector_only} configure a vector env and have no meaning for gym.make(); "
            "use gym.make_vec() for them"
        )
    if unsupported:
        raise TypeError(f"unexpected keyword arguments {sorted(unsupported)}")
    no_equivalent = {
        "maxpool=False": not maxpool,
        "life_loss_info=True": life_loss_info,
        "use_fire_reset=True": use_fire_reset,
    }
    bad = [name for name, given in no_equivalent.items() if given]
    if bad:
        raise TypeError(
            f"{', '.join(bad)} has no equivalent in Gymnasium's AtariPreprocessing stack, "
            "so gym.make() cannot build it; use gym.make_vec() for the native env"
        )

    import ale_py

    gym.register_envs(ale_py)
    ale_kwargs: dict[str, Any] = {
        "frameskip": 1,
        "repeat_action_probability": repeat_action_probability,
        "max_num_frames_per_episode": max_num_frames_per_episode,
        "full_action_space": full_action_space,
        "render_mode": render_mode,
    }
    if continuous:
        ale_kwargs["continuous"] = True
        ale_kwargs["continuous_action_threshold"] = continuous_action_threshold
    if mode is not None:
        ale_kwargs["mode"] = mode
    if difficulty is not None:
        ale_kwargs["difficulty"] = difficulty
    rom = game if game in list_games() else normalize_game(game)
    env = gym.make(f"ALE/{env_name(rom)}-v5", **ale_kwargs)
    env = AtariPreprocessing(
        env,
        noop_max=noop_max,
        frame_skip=frameskip,
        screen_size=(img_width, img_height),
        terminal_on_life_loss=episodic_life,
        grayscale_obs=grayscale,
    )
    env = FrameStackObservation(env, stack_num, padding_type="zero")
    if reward_clipping:
        env = TransformReward(env, np.sign)
    return env
