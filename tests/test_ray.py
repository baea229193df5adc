"""Ray and RLlib, tested in Ray's own virtual environment (``ray[rllib]==2.60.0`` pins
gymnasium 1.2.2; the venv sees this interpreter's packages, atari_vec included) and in a
network namespace with only loopback up, so no traffic leaves the machine: the cases are in
tests/ray_cases.py. The venv is made on first use (``ATARI_VEC_RAY_VENV`` names it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import atari_vec

RAY = "ray[rllib]==2.60.0"
VENV = Path(os.environ.get("ATARI_VEC_RAY_VENV",
                           Path.home() / ".cache" / "atari_vec" / "ray-2.60.0-venv"))
CASES = Path(__file__).with_name("ray_cases.py")


@pytest.fixture(scope="module")
def ray_python() -> str:
    python = VENV / "bin" / "python"
    marker = VENV / ".ray-installed"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(VENV)],
                       check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", RAY], check=True, timeout=1200)
        marker.write_text(RAY)
    return str(python)


def run_case(python: str, case: str) -> dict:
    assert shutil.which("unshare") and shutil.which("ip"), "needs unshare and ip (util-linux, iproute2)"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": str(Path(atari_vec.__file__).parents[1])}
    script = f"ip link set lo up && exec {python} {CASES} {case}"
    out = subprocess.run(["unshare", "-n", "bash", "-c", script], capture_output=True, text=True,
                         timeout=900, env=env, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(1800)
def test_two_node_cluster_bit_exact_and_dead_actors(ray_python):
    got = run_case(ray_python, "cluster")
    assert got["nodes"] == 2 and got["episodes_ended"] > 0


@pytest.mark.timeout(1800)
def test_rllib_env_runner_and_ppo_iteration(ray_python):
    got = run_case(ray_python, "rllib")
    assert got["local_steps"] >= 200 and got["remote_steps"] >= 120
    assert np.isfinite(got["native_return"])


@pytest.mark.timeout(1800)
def test_readme_torchrl_ray_collector(ray_python):
    got = run_case(ray_python, "torchrl")
    assert got == {"batches": 4, "frames_per_batch": 256}


def test_channels_last_is_the_transposed_channels_first(closing):
    """What RLlib's encoder reads (channels-last) is our channels-first frames, transposed."""
    first = atari_vec.AtariVectorEnv("breakout", 3)
    last = atari_vec.AtariVectorEnv("breakout", 3, channels_last=True)
    closing(first)
    closing(last)
    a, _ = first.reset(seed=5)
    b, _ = last.reset(seed=5)
    np.testing.assert_array_equal(np.transpose(a, (0, 2, 3, 1)), b)
    rng = np.random.default_rng(0)
    for _ in range(60):
        act = rng.integers(0, 4, size=3)
        a = first.step(act)[0]
        b = last.step(act)[0]
        np.testing.assert_array_equal(np.transpose(a, (0, 2, 3, 1)), b)
