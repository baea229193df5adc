"""The server's command line and its container: the Dockerfile's command, run outside Docker
(no daemon here) with the Dockerfile's environment and the seed README's variables; flags
and variables parsed as OpenEnv's Atari server parses them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from server_harness import serve_process
from websockets.sync.client import connect

from atari_vec.server import ServerConfig, parse_args

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> tuple[list[str], dict[str, str]]:
    """The Dockerfile's CMD and its ENV settings."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))
    env = {}
    for line in re.findall(r"^ENV (.*)$", text, re.MULTILINE):
        env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return cmd, env


@pytest.mark.parametrize("extra", [
    {"ATARI_GAME": "breakout"},
    {"ATARI_GAME": "space_invaders", "ATARI_OBS_TYPE": "grayscale"},
    {"ATARI_GAME": "ms_pacman", "ATARI_FULL_ACTION_SPACE": "true", "ATARI_OBS_TYPE": "ram",
     "ATARI_REPEAT_ACTION_PROB": "0.25", "ATARI_FRAMESKIP": "2"},
])
def test_container_command_outside_docker(extra):
    cmd, env = dockerfile()
    assert cmd == ["atari-vec-serve"] and env["ATARI_VEC_HOST"] == "0.0.0.0"
    assert shutil.which(cmd[0]), "the console script atari-vec-serve is not installed"
    # The one difference from the container: tests bind loopback (serve_process sets it).
    with serve_process(cmd, {**env, **extra}) as (url, _):
        assert httpx.get(url + "/health", timeout=30).json() == {"status": "healthy"}
        with connect(url.replace("http", "ws") + "/ws", max_size=None) as ws:
            ws.send(json.dumps({"type": "reset", "data": {}}))
            obs = json.loads(ws.recv(timeout=60))["data"]["observation"]
            ws.send(json.dumps({"type": "state"}))
            state = json.loads(ws.recv(timeout=60))["data"]
    game = extra["ATARI_GAME"]
    assert obs["metadata"]["game_name"] == state["game_name"] == game
    kind = extra.get("ATARI_OBS_TYPE", "rgb")
    assert obs["screen_shape"] == {"rgb": [210, 160, 3], "grayscale": [210, 160], "ram": [128]}[kind]
    full = extra.get("ATARI_FULL_ACTION_SPACE") == "true"
    assert (len(obs["legal_actions"]) == 18) == full
    assert state["frameskip"] == int(extra.get("ATARI_FRAMESKIP", 4))
    assert state["repeat_action_probability"] == float(extra.get("ATARI_REPEAT_ACTION_PROB", 0))


def test_python_m_atari_vec_serve_takes_flags():
    with serve_process(["python", "-m", "atari_vec", "serve", "--game", "breakout",
                        "--max-concurrent-envs", "2", "--obs-type", "ram"]) as (url, _):
        body = httpx.post(url + "/reset", timeout=30).json()
        assert body["observation"]["screen_shape"] == [128]
        assert body["metadata"]["game_name"] == "breakout"


def test_parsing_follows_openenv():
    c = ServerConfig.from_env({"ATARI_FULL_ACTION_SPACE": "TRUE", "ATARI_MODE": "2",
                               "ATARI_DIFFICULTY": "1", "MAX_CONCURRENT_ENVS": "8"})
    assert (c.full_action_space, c.mode, c.difficulty, c.max_concurrent_envs) == (True, 2, 1, 8)
    assert ServerConfig.from_env({"ATARI_FULL_ACTION_SPACE": "1"}).full_action_space is False
    d = ServerConfig.from_env({})
    assert (d.game, d.obs_type, d.frameskip, d.repeat_action_probability, d.host, d.port) == (
        "pong", "rgb", 4, 0.0, "127.0.0.1", 8000)
    assert d.max_concurrent_envs >= 64 and d.api_key is None
    assert parse_args(["--frameskip", "2"], {"ATARI_FRAMESKIP": "5"}).frameskip == 2
    for bad in ({"ATARI_OBS_TYPE": "depth"}, {"ATARI_FRAMESKIP": "x"}, {"ATARI_FRAMESKIP": "0"},
                {"MAX_CONCURRENT_ENVS": "0"}, {"ATARI_REPEAT_ACTION_PROB": "2"},
                {"ATARI_VEC_API_KEY": ""}):
        with pytest.raises(ValueError):
            ServerConfig.from_env(bad)
    bad_game = subprocess.run([sys.executable, "-m", "atari_vec", "serve", "--game", "nope"],
                              capture_output=True, text=True, timeout=120)
    assert bad_game.returncode != 0 and "nope" in bad_game.stderr
