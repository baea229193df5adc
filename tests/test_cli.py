"""``python -m atari_vec``: the list, actions and demo subcommands, run as subprocesses."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import atari_vec


def run_cli(*args: str, timeout: float = 100) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "atari_vec", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.timeout(120)
def test_list_prints_every_game_with_its_gym_id():
    out = run_cli("list")
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    assert [r[0] for r in rows] == atari_vec.list_games()
    assert ["ms_pacman", "AtariVec/MsPacman-v5"] in rows
    assert ["tic_tac_toe_3d", "AtariVec/TicTacToe3D-v5"] in rows


@pytest.mark.timeout(120)
@pytest.mark.parametrize("game", ["breakout", "ms_pacman"])
def test_actions_lists_meanings_in_order(game):
    out = run_cli("actions", game)
    assert out.returncode == 0, out.stderr
    env = atari_vec.AtariVectorEnv(game, 1)
    try:
        meanings = env.get_action_meanings()
    finally:
        env.close()
    lines = out.stdout.splitlines()
    assert lines[0] == f"{game}: {len(meanings)} actions"
    assert [line.split() for line in lines[1:]] == [[str(i), m] for i, m in enumerate(meanings)]


@pytest.mark.timeout(120)
def test_actions_full_action_space():
    out = run_cli("actions", "pong", "--full-action-space")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "pong: 18 actions"


@pytest.mark.timeout(120)
def test_demo_reports_throughput():
    out = run_cli("demo", "pong", "--num-envs", "2", "--seconds", "0.5")
    assert out.returncode == 0, out.stderr
    steps = re.search(r"steps/s:\s+([\d,]+)", out.stdout)
    frames = re.search(r"frames/s:\s+([\d,]+)\s+\(frameskip 4\)", out.stdout)
    assert steps and frames, out.stdout
    steps_per_s = int(steps.group(1).replace(",", ""))
    frames_per_s = int(frames.group(1).replace(",", ""))
    assert steps_per_s > 0
    assert abs(frames_per_s - 4 * steps_per_s) <= 4  # rounding of the two printed figures
    assert "pong: 2 envs" in out.stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "args, message",
    [
        (("actions", "breakot"), "Did you mean: breakout"),
        (("demo", "pong", "--seconds", "0"), "--seconds must be positive"),
        (("demo", "pong", "--num-envs", "0"), "num_envs must be positive"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.timeout(60)
def test_missing_subcommand_is_a_usage_error():
    out = run_cli()
    assert out.returncode == 2
    assert "usage:" in out.stderr
