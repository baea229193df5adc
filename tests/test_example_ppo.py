"""examples/ppo_atari.py and plot_learning_curve.py: a tiny training run, and their helpers."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
def test_ppo_runs_two_updates_and_writes_csv(tmp_path):
    pytest.importorskip("torch")
    log = tmp_path / "curve.csv"
    cmd = [
        sys.executable,
        str(EXAMPLES / "ppo_atari.py"),
        "--env-id",
        "AtariVec/Breakout-v5",
        "--total-timesteps",
        "256",
        "--num-envs",
        "4",
        "--num-steps",
        "32",
        "--num-minibatches",
        "2",
        "--update-epochs",
        "1",
        "--seed",
        "1",
        "--max-num-frames-per-episode",
        "100",
        "--torch-threads",
        "1",
        "--log-csv",
        str(log),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=280, env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    with log.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["global_step", "episodic_return", "episodic_length"]
    # Episodes are truncated at ALE's 100th episode frame, which counts the reset's fire
    # press and 1-30 no-ops too: 69 to 98 frames of play, 18 to 25 steps. Each of the 4 envs
    # finishes 2 or 3 of them within its 2 x 32 steps.
    lengths = [int(r[2]) for r in rows[1:]]
    assert 8 <= len(lengths) <= 12
    assert all(18 <= n <= 25 for n in lengths) and all(float(r[1]) >= 0 for r in rows[1:])
    assert all(int(r[0]) % 4 == 0 and int(r[0]) <= 2 * 32 * 4 for r in rows[1:])


@pytest.mark.timeout(120)
def test_plot_learning_curve_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    log = tmp_path / "run.csv"
    log.write_text("global_step,episodic_return\n100,1.0\n200,3.0\n300,2.0\n")
    png = tmp_path / "out" / "curve.png"
    cmd = [sys.executable, str(EXAMPLES / "plot_learning_curve.py"), str(log), "--out", str(png)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=100, check=False)
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_moving_average():
    np = pytest.importorskip("numpy")
    plot = _load("plot_learning_curve")
    got = plot.moving_average(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 2)
    np.testing.assert_allclose(got, [1.0, 1.5, 2.5, 3.5, 4.5])


def test_gae_against_hand_computation():
    torch = pytest.importorskip("torch")
    ppo = _load("ppo_atari")
    gamma, lam = 0.9, 0.5
    # One env, three steps; the episode ends with the transition of step 1.
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    next_value = torch.tensor([2.0])
    adv, ret = ppo.gae(rewards, values, dones, next_value, gamma, lam)
    d2 = 3.0 + gamma * 2.0 - 1.5  # bootstraps from next_value
    d1 = 2.0 - 1.0  # terminal: no bootstrap, nothing flows back from step 2
    d0 = 1.0 + gamma * 1.0 - 0.5
    expected = torch.tensor([[d0 + gamma * lam * d1], [d1], [d2]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)
