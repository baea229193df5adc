"""benchmarks/throughput.py's summary arithmetic, on made-up measurements (no timing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.py"


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput_under_test", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def measurement(throughput, peer, rnd, steps_per_s, error=None):
    return throughput.Measurement(
        game="pong", peer=peer, requested_num_envs=16, num_envs=16, batch_size=16,
        num_threads=0, round=rnd, position=0, steps=int(steps_per_s), seconds=1.0,
        steps_per_s=steps_per_s, frames_per_s=4 * steps_per_s, error=error)


def test_paired_ratio_is_the_median_of_same_round_ratios(throughput):
    ours = [130.0, 100.0, 90.0]
    peer = [100.0, 50.0, 100.0]  # same-round ratios 1.3, 2.0, 0.9
    ms = [measurement(throughput, "atari_vec", r, v) for r, v in enumerate(ours)]
    ms += [measurement(throughput, "ale_py", r, v) for r, v in enumerate(peer)]
    # A failed round of ours has no ratio; the peer's measurement of that round is unpaired.
    ms.append(measurement(throughput, "atari_vec", 3, 0.0, error="boom"))
    ms.append(measurement(throughput, "ale_py", 3, 10.0))
    rows = {r["peer"]: r for r in throughput.summarize(ms, {})}
    assert rows["ale_py"]["atari_vec_over_peer_paired"] == pytest.approx(1.3)
    # The ratio of medians differs: median(ours) = 100, median(peer) = 75 over four rounds.
    assert rows["ale_py"]["atari_vec_over_peer"] == pytest.approx(100.0 / 75.0)
    assert rows["atari_vec"]["atari_vec_over_peer_paired"] == pytest.approx(1.0)
    assert rows["ale_py"]["rounds"] == 4 and rows["atari_vec"]["rounds"] == 3


def test_no_paired_ratio_without_atari_vec(throughput):
    ms = [measurement(throughput, "ale_py", r, 100.0 + r) for r in range(3)]
    (row,) = throughput.summarize(ms, {})
    assert row["atari_vec_over_peer_paired"] is None and row["atari_vec_over_peer"] is None


def test_single_num_envs_plots_bars_and_a_grid_plots_lines(throughput, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    rows = []
    for n in (16, 32):
        ms = [measurement(throughput, peer, 0, v) for peer, v in
              (("atari_vec", 100.0), ("ale_py", 50.0), ("limit", 110.0))]
        for row in throughput.summarize(ms, {}):
            rows.append({**row, "requested_num_envs": n, "num_envs": n})
    drawn = []
    for name in ("_bars", "_lines"):
        original = getattr(throughput, name)
        monkeypatch.setattr(throughput, name,
                            lambda *a, _n=name, _o=original: (drawn.append(_n), _o(*a)))
    single = [r for r in rows if r["requested_num_envs"] == 16]
    for which, rs in (("_bars", single), ("_lines", rows)):
        drawn.clear()
        path = tmp_path / f"{which}.png"
        assert throughput.plot(rs, ["atari_vec", "ale_py", "limit"], path)
        assert drawn == [which] and path.stat().st_size > 1000


def test_startup_table_divides_each_peer_time_by_ours():
    spec = importlib.util.spec_from_file_location("startup_under_test", PATH.parent / "startup.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(PATH.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(PATH.parent))
    result = {
        "atari_vec": dict(construct_s=0.5, first_reset_s=0.2, seeded_reset_s=0.25, mib_per_env=0.7),
        "ale_py": dict(construct_s=6.0, first_reset_s=0.2, seeded_reset_s=3.0, mib_per_env=1.7),
        "envpool": {"error": "exit code 1: ImportError"},
    }
    lines = module.table("breakout", 64, result).splitlines()
    ale = next(ln for ln in lines if ln.startswith("ale_py"))
    assert "6.000 s (12.0x)" in ale and "3.000 s (12.0x)" in ale and "0.200 s (1.0x)" in ale
    assert next(ln for ln in lines if ln.startswith("envpool")).endswith("ImportError")


def test_limit_through_our_env_runs_and_refuses_unknown_routes():
    """benchmarks/limit_split.py's native routes: each runs the frames asked for; a route
    that does not exist is a ValueError, not a silent fall-back to the bare emulator."""
    from atari_vec._bench import emulator_limit
    from atari_vec._games import rom_path

    rom = str(rom_path("pong"))
    for through in ("ale", "env_ram", "env_gray"):
        frames, seconds = emulator_limit(rom, 3, 2, 40, 4, False, 0, 0.0, through)
        assert frames == 3 * 40 and seconds > 0
    with pytest.raises(ValueError, match="through must be"):
        emulator_limit(rom, 1, 1, 8, 4, False, 0, 0.0, "env_rgb")
