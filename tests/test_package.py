"""The package itself: import, version, game names."""

from __future__ import annotations

import subprocess
import sys

import pytest

import atari_vec


def test_imports_next_to_ale_py():
    # Both modules carry an ALE; ours is linked statically with hidden symbols, so loading
    # them in either order in one process must work and each must still run its own ALE.
    code = """
import ale_py, numpy as np
import atari_vec
ale = ale_py.ALEInterface()
ale.loadROM(ale_py.roms.get_rom_path("pong"))
ale.act(0)
env = atari_vec.AtariVectorEnv("pong", 2)
obs, _ = env.reset(seed=0)
obs, *_ = env.step(np.zeros(2, dtype=np.int64))
env.close()
print("ok", obs.shape)
"""
    for prelude in ("", "import atari_vec\n"):
        out = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "ok (2, 4, 84, 84)" in out.stdout


def test_version_and_ale_version():
    assert atari_vec.__version__ == "0.1.0"
    import ale_py

    assert atari_vec.ALE_VERSION == "0.12.1"
    assert ale_py.__version__ == atari_vec.ALE_VERSION


def test_list_games():
    games = atari_vec.list_games()
    assert "breakout" in games and "pong" in games and "ms_pacman" in games
    assert games == sorted(games) and len(games) > 100


def test_unknown_game_names_close_matches():
    with pytest.raises(ValueError, match=r"Unknown game 'breakot'.*breakout"):
        atari_vec.AtariVectorEnv("breakot", 1)
    with pytest.raises(ValueError, match="Unknown game"):
        atari_vec.AtariVectorEnv("not_a_game_at_all", 1)


def test_unplayable_rom_is_an_error_not_an_exit():
    # ALE itself calls std::exit on a ROM it cannot wrap; we must raise instead.
    from ale_py import roms

    from atari_vec import _core

    assert "combat" in roms.get_all_rom_ids() and "combat" not in atari_vec.list_games()
    with pytest.raises(ValueError, match="cannot play"):
        atari_vec.AtariVectorEnv("combat", 1)
    cfg = _core.EnvConfig()
    cfg.rom_path = str(roms.get_rom_path("combat"))
    with pytest.raises(ValueError, match="no game definition"):
        _core.VectorEnv([cfg], _core.PoolConfig())
    cfg.rom_path = "/nonexistent.bin"
    with pytest.raises(ValueError, match="cannot read"):
        _core.VectorEnv([cfg], _core.PoolConfig())


@pytest.mark.parametrize("name, rom", [("TicTacToe3D", "tic_tac_toe_3d"), ("ALE/UpNDown-v5", "up_n_down"),
                                       ("MsPacman", "ms_pacman"), ("video_pinball", "video_pinball")])
def test_odd_game_names(name, rom):
    assert atari_vec._games.normalize_game(name) == rom


@pytest.mark.parametrize("name", ["breakout", "Breakout", "ALE/Breakout-v5", "BreakoutNoFrameskip-v4"])
def test_game_name_forms(name, closing):
    env = atari_vec.AtariVectorEnv(name, 1)
    closing(env)
    assert env.game == "breakout"
    assert env.get_action_meanings() == ["NOOP", "FIRE", "RIGHT", "LEFT"]
