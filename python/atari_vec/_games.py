"""Game names: the ROMs shipped by the ale-py wheel, and resolving a user's name to one."""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path

from ale_py import roms


def list_games() -> list[str]:
    """Return the ROM ids of every playable game, sorted (e.g. ``"breakout"``).

    ale-py ships a few ROMs that ALE has no game definition for (``combat``); they are left
    out, since ALE cannot run them.
    """
    return list(_playable())


@functools.cache
def _playable() -> tuple[str, ...]:
    from atari_vec import _core

    return tuple(
        sorted(g for g in roms.get_all_rom_ids() if _core.rom_supported(str(roms.get_rom_path(g))))
    )


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def normalize_game(name: str) -> str:
    """Map ``"Breakout"``, ``"MsPacman"``, ``"ALE/Pong-v5"``, ``"TicTacToe3D"`` or
    ``"ms_pacman"`` to a ROM id; an unknown name comes back in snake case."""
    base = name.split("/")[-1]
    base = re.sub(r"(NoFrameskip)?-v\d+$", "", base)
    # Compare without case and separators: "UpNDown" and "up_n_down" are one game.
    by_squashed = {_squash(g): g for g in roms.get_all_rom_ids()}
    if _squash(base) in by_squashed:
        return by_squashed[_squash(base)]
    base = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", base)
    return base.lower().replace("-", "_")


def rom_path(game: str) -> Path:
    """Return the ROM file for ``game``; raise ``ValueError`` naming close matches if unknown."""
    if not isinstance(game, str):
        raise TypeError(f"game must be a str, got {type(game).__name__}")
    rom_id = normalize_game(game)
    games = list_games()
    if rom_id not in games:
        if rom_id in roms.get_all_rom_ids():
            raise ValueError(f"ale-py ships a ROM for {game!r}, but ALE cannot play it.")
        close = difflib.get_close_matches(rom_id, games, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown game {game!r}.{hint} atari_vec.list_games() lists all {len(games)} games."
        )
    path = roms.get_rom_path(rom_id)
    if path is None:
        raise ValueError(f"The ROM for {rom_id!r} is missing from the ale-py installation.")
    return Path(path)


@functools.lru_cache(maxsize=None)
def screen_size(game: str) -> tuple[int, int]:
    """(height, width) of the game's screen as ALE renders it: 210 x 160 for most games,
    taller for some (250 for Pac-Man, Adventure, ...). Raw observations have this size."""
    from ale_py import ALEInterface, LoggerMode

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.loadROM(str(rom_path(game)))
    height, width = ale.getScreenDims()
    return int(height), int(width)
