"""OpenEnv's own tools against our server, unchanged: the ``openenv`` 0.10.0 package's
``GenericEnvClient`` resets and steps it (with a token header too), and ``openenv validate
--url`` passes. openenv pulls ~115 packages, so it lives in a virtual environment of its own,
made on first use (``ATARI_VEC_OPENENV_VENV`` names it; default ~/.cache/atari_vec)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from server_harness import serve

from atari_vec.registration import make_raw_vec

OPENENV = "openenv==0.10.0"
VENV = Path(os.environ.get("ATARI_VEC_OPENENV_VENV",
                           Path.home() / ".cache" / "atari_vec" / "openenv-0.10.0-venv"))

CLIENT = """
import json, sys
from openenv import GenericEnvClient
url, token = sys.argv[1], sys.argv[2]
headers = {"Authorization": "Bearer " + token} if token else None
with GenericEnvClient(base_url=url, headers=headers) as env:
    first = env.reset(seed=3)
    steps = [env.step({"action_id": a}) for a in (1, 2, 3)]
    state = env.state()
print(json.dumps({
    "reset": [first.observation, first.reward, first.done],
    "steps": [[s.observation, s.reward, s.done] for s in steps],
    "state": state,
}))
"""


@pytest.fixture(scope="module")
def openenv_python() -> str:
    python = VENV / "bin" / "python"
    if not (VENV / "bin" / "openenv").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", OPENENV], check=True, timeout=900)
    return str(python)


def run_client(python: str, url: str, token: str = "") -> dict:
    out = subprocess.run([python, "-c", CLIENT, url, token], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(1200)
def test_generic_env_client_and_validate(openenv_python):
    with serve(game="pong", obs_type="ram", max_concurrent_envs=2) as url:
        got = run_client(openenv_python, url)
        validate = subprocess.run([str(VENV / "bin" / "openenv"), "validate", "--url", url],
                                  capture_output=True, text=True, timeout=120)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Verdict: PASS" in validate.stdout, validate.stdout
    # The client's reset and steps are the emulator's, as a local env with the seed gives them.
    local = make_raw_vec("pong", 1, obs_type="ram", repeat_action_probability=0.0)
    try:
        obs, _ = local.reset(seed=3)
        expected = [obs[0].tolist()]
        for a in (1, 2, 3):
            obs, rew, term, trunc, _ = local.step(np.array([a]))
            expected.append(obs[0].tolist())
    finally:
        local.close()
    screens = [got["reset"][0]["screen"]] + [s[0]["screen"] for s in got["steps"]]
    assert screens == expected
    assert got["reset"][1] == 0.0 and got["reset"][2] is False
    assert got["state"]["step_count"] == 3 and got["state"]["game_name"] == "pong"
    assert got["steps"][-1][0]["episode_frame_number"] == 12


@pytest.mark.timeout(600)
def test_generic_env_client_with_token(openenv_python):
    with serve(game="pong", obs_type="ram", max_concurrent_envs=1, api_key="tok") as url:
        got = run_client(openenv_python, url, "tok")
        assert got["state"]["step_count"] == 3
        refused = subprocess.run([openenv_python, "-c", CLIENT, url, "wrong"], capture_output=True,
                                 text=True, timeout=120)
        assert refused.returncode != 0


def test_readme_client_snippet(openenv_python):
    """The README's GenericEnvClient block, run as written against a server on this port."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"^```py\n(.*?)^```", readme, flags=re.DOTALL | re.MULTILINE)
                 if "GenericEnvClient" in b)
    with serve(game="breakout", obs_type="ram", max_concurrent_envs=1) as url:
        out = subprocess.run([openenv_python, "-c", block.replace("http://localhost:8000", url)],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    reward, done, lives = out.stdout.split()
    assert (float(reward), done, int(lives)) == (0.0, "False", 5)
