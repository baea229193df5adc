"""Gymnasium ids: ``AtariVec/<Game>-v5`` (preprocessed) and ``AtariVecRaw/<ale-py id>`` (raw).

Preprocessed:
``gym.make_vec("AtariVec/Breakout-v5", num_envs=16, **kwargs)`` returns
``AtariVectorEnv("breakout", 16, **kwargs)`` through the id's vector entry point.
``gym.make("AtariVec/Breakout-v5", **kwargs)`` returns Gymnasium's own single-env stack,
``FrameStackObservation(AtariPreprocessing(gym.make("ALE/Breakout-v5", frameskip=1)), 4,
padding_type="zero")``, configured from the same keyword arguments, which is the stack
``AtariVectorEnv`` reproduces bit for bit. ``AtariVec/Atari57-v5`` is a vector-only preset of
the 57 games of the standard Atari benchmark in one pool.

Raw: for every id ale-py registers (``ALE/Pong-v5``, ``Pong-v0``, ``PongNoFrameskip-v4``, ...)
and for the ``-ram`` and ``Deterministic`` spellings of Gymnasium's Atari page,
``AtariVecRaw/<id without "ALE/">`` with the same default keyword arguments.
``gym.make_vec`` gives a native pool whose envs step as ``gym.make(<ale-py id>)`` does;
``gym.make`` gives ale-py's own ``AtariEnv``, the reference.
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformReward

from atari_vec._games import list_games, normalize_game, screen_size
from atari_vec.vector_env import AtariVectorEnv

NAMESPACE = "AtariVec"
RAW_NAMESPACE = "AtariVecRaw"
VERSION = 5

# The 57 games of the standard Atari benchmark (the Arcade Learning Environment's "Atari 57").
ATARI57 = (
    "alien", "amidar", "assault", "asterix", "asteroids", "atlantis", "bank_heist",
    "battle_zone", "beam_rider", "berzerk", "bowling", "boxing", "breakout", "centipede",
    "chopper_command", "crazy_climber", "defender", "demon_attack", "double_dunk", "enduro",
    "fishing_derby", "freeway", "frostbite", "gopher", "gravitar", "hero", "ice_hockey",
    "jamesbond", "kangaroo", "krull", "kung_fu_master", "montezuma_revenge", "ms_pacman",
    "name_this_game", "phoenix", "pitfall", "pong", "private_eye", "qbert", "riverraid",
    "road_runner", "robotank", "seaquest", "skiing", "solaris", "space_invaders", "star_gunner",
    "surround", "tennis", "time_pilot", "tutankham", "up_n_down", "venture", "video_pinball",
    "wizard_of_wor", "yars_revenge", "zaxxon",
)  # fmt: skip

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


def gym_id(game: str) -> str:
    """Return the Gymnasium id registered for a ROM id, e.g. ``"AtariVec/Breakout-v5"``."""
    return f"{NAMESPACE}/{env_name(game)}-v{VERSION}"


def register_envs() -> None:
    """Register ``AtariVec/<Game>-v5`` for every game of :func:`atari_vec.list_games`, the
    ``AtariVec/Atari57-v5`` preset, and the ``AtariVecRaw/*`` ids (:func:`raw_specs`).

    Ids already in the registry are left alone, so calling this again does nothing.
    """
    preset = f"{NAMESPACE}/Atari57-v{VERSION}"
    if preset not in gym.registry:
        gym.register(
            id=preset,
            entry_point="atari_vec.registration:make_preset_env",
            vector_entry_point="atari_vec.vector_env:AtariVectorEnv",
            kwargs={"game": list(ATARI57)},
        )
    for raw_id, kwargs in raw_specs().items():
        if raw_id not in gym.registry:
            gym.register(
                id=raw_id,
                entry_point="ale_py.env:AtariEnv",
                vector_entry_point="atari_vec.registration:make_raw_vec",
                kwargs=kwargs,
            )
    for game in list_games():
        game_id = gym_id(game)
        if game_id in gym.registry:
            continue
        gym.register(
            id=game_id,
            entry_point="atari_vec.registration:make_reference_env",
            vector_entry_point="atari_vec.vector_env:AtariVectorEnv",
            kwargs={"game": game},
        )


def raw_specs() -> dict[str, dict[str, Any]]:
    """Map each ``AtariVecRaw/*`` id to its default keyword arguments (those of ale-py's
    ``AtariEnv``).

    Every id ale-py registers keeps its spec's kwargs (``ALE/Pong-v5`` becomes
    ``AtariVecRaw/Pong-v5``). Added, as Gymnasium's Atari page spells them: ``<Game>-ram-v5``
    (v5 with ``obs_type="ram"``), and for the v0/v4 games ``<Game>-ram[NoFrameskip]-v0/v4``
    and ``<Game>[-ram]Deterministic-v0/v4`` (frameskip 4, or 3 for Space Invaders, whose
    lasers blink at 4; the version's sticky-action probability: 0.25 for v0, 0 for v4).
    """
    import ale_py

    gym.register_envs(ale_py)
    specs: dict[str, dict[str, Any]] = {}
    for spec in list(gym.registry.values()):
        if spec.entry_point != "ale_py.env:AtariEnv" or spec.namespace not in (None, "ALE"):
            continue  # ale-py's ids only (ours have that entry point too)
        name = spec.id.removeprefix("ALE/")
        kwargs = dict(spec.kwargs)
        specs[f"{RAW_NAMESPACE}/{name}"] = kwargs
        base, version = name.rsplit("-", 1)
        ram = {**kwargs, "obs_type": "ram"}
        if spec.id.startswith("ALE/"):
            specs[f"{RAW_NAMESPACE}/{base}-ram-{version}"] = ram
        elif base.endswith("NoFrameskip"):
            game = base.removesuffix("NoFrameskip")
            specs[f"{RAW_NAMESPACE}/{game}-ramNoFrameskip-{version}"] = ram
            deterministic = {**kwargs, "frameskip": 3 if kwargs["game"] == "space_invaders" else 4}
            specs[f"{RAW_NAMESPACE}/{game}Deterministic-{version}"] = deterministic
            specs[f"{RAW_NAMESPACE}/{game}-ramDeterministic-{version}"] = {
                **deterministic,
                "obs_type": "ram",
            }
        else:
            specs[f"{RAW_NAMESPACE}/{base}-ram-{version}"] = ram
    return specs


def make_raw_vec(
    game: str,
    num_envs: int = 1,
    *,
    obs_type: str = "rgb",
    frameskip: int | tuple[int, int] = 4,
    repeat_action_probability: float = 0.25,
    full_action_space: bool = False,
    continuous: bool = False,
    continuous_action_threshold: float = 0.5,
    max_num_frames_per_episode: int | None = None,
    mode: int | None = None,
    difficulty: int | None = None,
    render_mode: str | None = None,
    stop_at_game_over: bool = False,
    **vector_kwargs: Any,
) -> AtariVectorEnv:
    """The vector entry point of the ``AtariVecRaw/*`` ids: ``num_envs`` envs that step as
    ``gym.make(<ale-py id>, **kwargs)`` does, in one native pool.

    The keyword arguments and defaults are those of ale-py's ``AtariEnv`` (``sound_obs`` is
    not supported); ``vector_kwargs`` are the vector options of :class:`AtariVectorEnv`
    (``batch_size``, ``num_threads``, ``thread_affinity_offset``, ``autoreset_mode``,
    ``seeding``). Observations are the full screens ``(num_envs, 210, 160[, 3])`` or the RAM
    ``(num_envs, 128)``; ``reset(seed=s)`` seeds env i as ``SyncVectorEnv`` does, with
    ``s + i``, and from there every draw matches ale-py's. ``stop_at_game_over`` (not an
    ale-py argument) ends a step's frames at game over, as OpenEnv's Atari server does.
    """
    unknown = sorted(set(vector_kwargs) - (_VECTOR_ONLY | {"seeding"}))
    if unknown:
        raise TypeError(
            f"unexpected keyword arguments {unknown} for a raw env; it takes ale-py AtariEnv's "
            "arguments and the vector options " + str(sorted(_VECTOR_ONLY | {"seeding"}))
        )
    if isinstance(frameskip, list):
        frameskip = tuple(frameskip)
    return AtariVectorEnv(
        game,
        num_envs,
        raw=True,
        stop_at_game_over=stop_at_game_over,
        obs_type=obs_type,
        frameskip=frameskip,
        repeat_action_probability=repeat_action_probability,
        full_action_space=full_action_space,
        continuous=continuous,
        continuous_action_threshold=continuous_action_threshold,
        max_num_frames_per_episode=0 if max_num_frames_per_episode is None else max_num_frames_per_episode,
        mode=mode,
        difficulty=difficulty,
        render_mode=render_mode,
        img_height=screen_size(game)[0],
        img_width=screen_size(game)[1],
        stack_num=0,
        maxpool=False,
        noop_max=0,
        use_fire_reset=False,
        episodic_life=False,
        life_loss_info=False,
        reward_clipping=False,
        **vector_kwargs,
    )


def make_preset_env(**kwargs: Any) -> gym.Env:
    """``gym.make`` of a multi-game preset: refused, since a preset is a pool of games."""
    raise TypeError(
        "AtariVec/Atari57-v5 is a pool of 57 games; build it with "
        "gym.make_vec('AtariVec/Atari57-v5', num_envs=57 * k)"
    )


class FireOnReset(gym.Wrapper):
    """Presses FIRE once after every reset of an ale-py ``AtariEnv`` whose action set has it,
    as ``AtariVectorEnv(use_fire_reset=True)`` does before its no-ops.

    It acts on the emulator directly (one frame, as ``AtariEnv(frameskip=1).step`` would), so
    it draws nothing from the env's generator and works with continuous actions too.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        from ale_py import Action

        self._fire = Action.FIRE if Action.FIRE in env.unwrapped._action_set else None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        if self._fire is None:
            return obs, info
        ale = self.env.unwrapped.ale
        ale.act(self._fire)
        return self.env.unwrapped._get_obs(), self.env.unwrapped._get_info()


# AtariVectorEnv's defaults (themselves read from cpp/config.hpp): gym.make and gym.make_vec of
# one id start from the same settings.
_D = {name: p.default for name, p in inspect.signature(AtariVectorEnv).parameters.items()}


def make_reference_env(
    game: str,
    *,
    render_mode: str | None = None,
    max_num_frames_per_episode: int = _D["max_num_frames_per_episode"],
    repeat_action_probability: float = _D["repeat_action_probability"],
    full_action_space: bool | None = _D["full_action_space"],
    continuous: bool = _D["continuous"],
    continuous_action_threshold: float = _D["continuous_action_threshold"],
    img_height: int = _D["img_height"],
    img_width: int = _D["img_width"],
    grayscale: bool = _D["grayscale"],
    stack_num: int = _D["stack_num"],
    frameskip: int = _D["frameskip"],
    maxpool: bool = _D["maxpool"],
    noop_max: int = _D["noop_max"],
    episodic_life: bool = _D["episodic_life"],
    life_loss_info: bool = _D["life_loss_info"],
    reward_clipping: bool = _D["reward_clipping"],
    use_fire_reset: bool = _D["use_fire_reset"],
    mode: int | None = _D["mode"],
    difficulty: int | None = _D["difficulty"],
    obs_type: str | None = _D["obs_type"],
    grayscale_newaxis: bool = _D["grayscale_newaxis"],
    seeding: str = _D["seeding"],
    **unsupported: Any,
) -> gym.Env:
    """Build Gymnasium's single-env Atari stack from ``AtariVectorEnv`` keyword arguments.

    The ALE env is ``gym.make("ALE/<Game>-v5", frameskip=1)`` with the given
    ``repeat_action_probability``, ``max_num_frames_per_episode``, ``full_action_space``,
    ``continuous``, ``continuous_action_threshold``, ``mode``, ``difficulty`` and
    ``render_mode``. On it: :class:`FireOnReset` when ``use_fire_reset`` (Gymnasium has no
    fire reset of its own), ``AtariPreprocessing(noop_max=noop_max, frame_skip=frameskip,
    screen_size=(img_width, img_height), grayscale_obs=grayscale,
    grayscale_newaxis=grayscale_newaxis, terminal_on_life_loss=episodic_life)``, then
    ``FrameStackObservation(stack_num, padding_type="zero")``, then a sign clip of the reward
    when ``reward_clipping``. Seeded alike, this stack and ``AtariVectorEnv`` (with its default
    ``seeding="gymnasium"``) produce the same trajectories, no-ops and sticky actions included.

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
        use_fire_reset: press FIRE once after each reset, before the no-ops.
        mode: game mode; None keeps the default.
        difficulty: game difficulty; None keeps the default.
        obs_type: ``"grayscale"`` or ``"rgb"`` (overrides ``grayscale``); AtariPreprocessing
            has no RAM observations.
        grayscale_newaxis: gray frames shaped ``(H, W, 1)``.
        seeding: must be ``"gymnasium"``: this stack is what that seeding reproduces.
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
    if obs_type is not None:
        if obs_type not in ("grayscale", "rgb"):
            raise TypeError(
                f"obs_type={obs_type!r}: Gymnasium's AtariPreprocessing takes screens only "
                "('grayscale' or 'rgb'); for RAM use gym.make('AtariVecRaw/<Game>-ram-v5')"
            )
        grayscale = obs_type == "grayscale"
    no_equivalent = {
        "maxpool=False": not maxpool,
        "life_loss_info=True": life_loss_info,
        f"seeding={seeding!r}": seeding != "gymnasium",
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
        "full_action_space": bool(full_action_space),
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
    if use_fire_reset:
        env = FireOnReset(env)
    env = AtariPreprocessing(
        env,
        noop_max=noop_max,
        frame_skip=frameskip,
        screen_size=(img_width, img_height),
        terminal_on_life_loss=episodic_life,
        grayscale_obs=grayscale,
        grayscale_newaxis=grayscale_newaxis,
    )
    env = FrameStackObservation(env, stack_num, padding_type="zero")
    if reward_clipping:
        env = TransformReward(env, np.sign)
    return env
