"""Game names: the ROMs shipped by the ale-py wheel, and resolving a user's name to one."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from ale_py import roms


def list_games() -> list[str]:
    """Return the ROM ids of every game available, sorted (e.g. ``"breakout"``)."""
    return sorted(roms.get_all_rom_ids())


def normalize_game(name: str) -> str:
    """Map ``"Breakout"``, ``"MsPacman"``, ``"ALE/Pong-v5"`` or ``"ms_pacman"`` to a ROM id."""
    base = name.split("/")[-1]
    base = re.sub(r"(NoFrameskip)?-v\d+$", "", base)
    base = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", base)
    return base.lower().replace("-", "_")


def rom_path(game: str) -> Path:
    """Return the ROM file for ``game``; raise ``ValueError`` naming close matches if unknown."""
    if not isinstance(game, str):
        raise TypeError(f"game must be a str, got {type(game).__name__}")
    rom_id = normalize_game(game)
    games = list_games()
    if rom_id not in games:
        close = difflib.get_close_matches(rom_id, games, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown game {game!r}.{hint} atari_vec.list_games() lists all {len(games)} games."
        )
    path = roms.get_rom_path(rom_id)
    if path is None:
        raise ValueError(f"The ROM for {rom_id!r} is missing from the ale-py installation.")
    return Path(path)
