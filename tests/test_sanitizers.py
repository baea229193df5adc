"""The ThreadSanitizer pass over the C++ tests (tests/cpp), so CI runs it on every change.

``scripts/sanitize.sh thread --quick`` builds the engine, ALE and the C++ tests with
-fsanitize=thread in build/sanitize-thread and runs them; it fails on any test failure or
TSan report. A from-scratch build dominates the time (about 2 minutes here, ALE included);
the quick test run adds about 1 minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP = 77  # sanitize.sh: a compiler, CMake, Ninja or the TSan runtime is missing


@pytest.mark.timeout(1200)
def test_thread_sanitizer_quick():
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "sanitize.sh"), "thread", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1150,
        check=False,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode == SKIP:
        pytest.skip(f"ThreadSanitizer build not possible here: {output.strip()[-500:]}")
    assert proc.returncode == 0, f"sanitize.sh thread --quick failed:\n{output[-8000:]}"
    assert "sanitize.sh: thread clean" in output
