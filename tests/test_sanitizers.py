"""The sanitizer passes over the C++ tests (tests/cpp), so CI runs them on every change.

``scripts/sanitize.sh thread|address --quick`` builds the engine, ALE and the C++ tests with
-fsanitize=thread (or address + undefined) in build/sanitize-<kind> and runs them; it fails
on any test failure or sanitizer report. A from-scratch build dominates the time (about 2
minutes each here, ALE included); the quick test run adds about 1 minute.

A missing tool (compiler, CMake, Ninja, a sanitizer runtime) or ROM fails these tests rather
than skipping them: CI installs everything they need (the README's test command), so a skip
would hide a check that should have run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ale_py import roms

ROOT = Path(__file__).resolve().parent.parent
MISSING_TOOL = 77  # sanitize.sh: a compiler, CMake, Ninja or the sanitizer runtime is missing


def run_sanitizer(kind: str) -> str:
    rom = roms.get_rom_path("breakout")
    assert rom is not None and Path(rom).is_file(), "ale-py ships no Breakout ROM"
    env = {**os.environ, "PYTHON": sys.executable, "ATARI_VEC_TEST_ROM": str(rom)}
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "sanitize.sh"), kind, "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1150, check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != MISSING_TOOL, (
        f"the {kind} sanitizer build cannot run here; install what it needs (g++, cmake, "
        f"ninja: the README's test command does):\n{output.strip()[-1500:]}"
    )
    assert proc.returncode == 0, f"sanitize.sh {kind} --quick failed:\n{output[-8000:]}"
    assert f"sanitize.sh: {kind} clean" in output
    # Every C++ test ran, the real-emulator one included (it skips, exit 77, without a ROM).
    for test in ("test_task_queue", "test_result_ring", "test_reset_ahead", "test_pool", "test_atari_pool",
                 "test_bounds"):
        assert f"{test}: skipped" not in output, output[-3000:]
    assert "100% tests passed" in output and "did not run" not in output, output[-3000:]
    return output


@pytest.mark.timeout(1200)
def test_thread_sanitizer_quick():
    run_sanitizer("thread")


@pytest.mark.timeout(1200)
def test_address_sanitizer_quick():
    run_sanitizer("address")
