"""The Python module built without OpenCV (what the README's main command builds: its
setup installs no OpenCV headers) is built and tested here too, and, in the same second
build, without our ALE speed patches (``ATARI_VEC_ALE_SPEED=OFF``: ALE's own emulation code).

It is built into a directory of its own (its own build folder), then a fresh interpreter
imports it from there and steps the same seeded trajectory as this process's build (which has
OpenCV and the speed patches in CI): the observations must be identical, since the native
resize serves 84x84 in both and the speed patches do not change emulation; a size only OpenCV
can make must be refused clearly.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import atari_vec

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import sys
import numpy as np
import atari_vec
from atari_vec import _core

target, out = sys.argv[1], sys.argv[2]
assert atari_vec.__file__.startswith(target), atari_vec.__file__
assert _core.HAVE_OPENCV is False
try:
    atari_vec.AtariVectorEnv("pong", 1, img_height=105, img_width=80)
except ValueError as e:
    assert "OpenCV" in str(e), e
else:
    raise AssertionError("an integer shrink (210x160 -> 105x80) needs OpenCV and must be refused")
env = atari_vec.AtariVectorEnv("breakout", 2, repeat_action_probability=0.25)
frames = [env.reset(seed=3)[0].copy()]
for a in np.random.default_rng(0).integers(0, 4, (150, 2)):
    frames.append(env.step(a)[0].copy())
np.save(out, np.stack(frames))
print("ok")
"""


@pytest.mark.timeout(1500)
def test_module_built_without_opencv(tmp_path):
    target = tmp_path / "site"
    # In a development checkout the build tools are installed and the build is incremental;
    # on a fresh machine (pip install ".[test]" builds in isolation) pip fetches them.
    have_tools = all(importlib.util.find_spec(m) for m in ("scikit_build_core", "pybind11"))
    isolation = ["--no-build-isolation"] if have_tools else []
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", *isolation, "--target", str(target),
         "-C", "build-dir=build/no-opencv-{wheel_tag}",
         "-C", "cmake.define.ATARI_VEC_OPENCV=OFF",
         "-C", "cmake.define.ATARI_VEC_ALE_SPEED=OFF", str(ROOT)],
        capture_output=True, text=True, timeout=1400, check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    # The speed patches were left out: the TIA source it built is ALE's own.
    tia = list((ROOT / "build").glob("no-opencv-*/_deps/ale-patched-*/src/ale/emucore/TIA.cxx"))
    assert len(tia) == 1 and "atari_vec: local copies" not in tia[0].read_text(), tia
    ours = list((ROOT / "build").glob("cp*/_deps/ale-patched-*/src/ale/emucore/TIA.cxx"))
    assert ours and all("atari_vec: local copies" in t.read_text() for t in ours), ours
    out = tmp_path / "frames.npy"
    env = {**os.environ, "PYTHONPATH": str(target)}
    child = subprocess.run([sys.executable, "-c", CHILD, str(target), str(out)], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert child.returncode == 0 and "ok" in child.stdout, child.stderr[-3000:]

    env_here = atari_vec.AtariVectorEnv("breakout", 2, repeat_action_probability=0.25)
    try:
        frames = [env_here.reset(seed=3)[0].copy()]
        for a in np.random.default_rng(0).integers(0, 4, (150, 2)):
            frames.append(env_here.step(a)[0].copy())
    finally:
        env_here.close()
    np.testing.assert_array_equal(np.load(out), np.stack(frames))
