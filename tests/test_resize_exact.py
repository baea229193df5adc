"""The native INTER_AREA kernel against the oracle, cv2.resize(..., INTER_AREA), bit for bit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from ale_py import ALEInterface, LoggerMode, roms

import atari_vec
from atari_vec import _core

SIZES = [(84, 84), (100, 80), (64, 48), (110, 84), (42, 42), (200, 150), (209, 159), (105, 84),
         (70, 53), (96, 72), (105, 80)]


def oracle(img: np.ndarray, h: int, w: int) -> np.ndarray:
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def resize_or_refusal(img: np.ndarray, h: int, w: int):
    """The native-or-OpenCV resize, or None where this build (without OpenCV) must refuse."""
    src_h, src_w = img.shape[:2]
    if not _core.resize_supported(src_h, src_w, h, w):
        assert not _core.HAVE_OPENCV
        with pytest.raises(ValueError, match="needs OpenCV"):
            _core.area_resize(img, h, w)
        return None
    return _core.area_resize(img, h, w)


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_random_atari_sized_images(h, w, channels):
    rng = np.random.default_rng(h * 1000 + w)
    shape = (210, 160) if channels == 1 else (210, 160, 3)
    for _ in range(5):
        img = rng.integers(0, 256, size=shape, dtype=np.uint8)
        result = resize_or_refusal(img, h, w)
        if result is None:
            assert (h, w) == (105, 80)  # both factors integral: OpenCV's fast path
            continue
        out, native = result
        assert native == ((h, w) != (105, 80))
        np.testing.assert_array_equal(out, oracle(img, h, w))


def test_random_images_of_random_sizes():
    rng = np.random.default_rng(7)
    native_runs = 0
    for _ in range(300):
        sh, sw = rng.integers(2, 260, size=2)
        dh, dw = rng.integers(1, sh + 1), rng.integers(1, sw + 1)
        channels = rng.choice([1, 3])
        shape = (sh, sw) if channels == 1 else (sh, sw, 3)
        img = rng.integers(0, 256, size=shape, dtype=np.uint8)
        result = resize_or_refusal(img, int(dh), int(dw))
        if result is None:
            continue
        out, native = result
        native_runs += native
        np.testing.assert_array_equal(out, oracle(img, int(dh), int(dw)), f"{shape} -> {dh}x{dw}")
    assert native_runs > 250  # most shrinking geometries take the native kernel


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_repeated_rows_and_near_repeats(h, w, channels):
    """The kernel resamples a source row equal to the one before it only once (Atari screens
    repeat most rows). Runs of equal rows, and rows that equal the one before except for one
    byte somewhere along them, must still give OpenCV's bytes."""
    rng = np.random.default_rng(h * 7 + w)
    shape = (210, 160) if channels == 1 else (210, 160, 3)
    for _ in range(5):
        img = rng.integers(0, 256, size=shape, dtype=np.uint8)
        for r in range(1, 210):
            if rng.random() < 0.8:
                img[r] = img[r - 1]
                if rng.random() < 0.3:  # a near repeat: one byte differs
                    flat = img[r].reshape(-1)
                    flat[rng.integers(flat.size)] ^= np.uint8(1 + rng.integers(255))
        result = resize_or_refusal(img, h, w)
        if result is None:
            continue
        np.testing.assert_array_equal(result[0], oracle(img, h, w))


def test_what_needs_opencv():
    # Same size and non-integer shrinking never need OpenCV; integer factors and
    # enlargements do, and a build without it refuses them with ValueError, env included.
    assert _core.resize_supported(210, 160, 84, 84) and _core.resize_supported(210, 160, 210, 160)
    for h, w in ((105, 80), (250, 170), (420, 320)):
        assert _core.resize_supported(210, 160, h, w) == _core.HAVE_OPENCV
        if not _core.HAVE_OPENCV:
            with pytest.raises(ValueError, match="needs OpenCV"):
                atari_vec.AtariVectorEnv("pong", 1, img_height=h, img_width=w)


def test_extreme_values():
    for value in (0, 255):
        img = np.full((210, 160), value, dtype=np.uint8)
        np.testing.assert_array_equal(_core.area_resize(img, 84, 84)[0], oracle(img, 84, 84))
    img = np.indices((210, 160)).sum(0).astype(np.uint8) % 2 * 255  # checkerboard
    np.testing.assert_array_equal(_core.area_resize(img, 84, 84)[0], oracle(img, 84, 84))


def test_real_frames_of_every_game():
    ALEInterface.setLoggerMode(LoggerMode.Error)
    rng = np.random.default_rng(0)
    for game in atari_vec.list_games():
        ale = ALEInterface()
        ale.loadROM(roms.get_rom_path(game))
        actions = ale.getMinimalActionSet()
        for _ in range(int(rng.integers(50, 300))):
            ale.act(actions[int(rng.integers(len(actions)))])
        for frame in (ale.getScreenGrayscale(), ale.getScreenRGB()):
            for h, w in ((84, 84), (100, 80)):
                out, native = _core.area_resize(np.ascontiguousarray(frame), h, w)
                assert native
                np.testing.assert_array_equal(out, oracle(frame, h, w), f"{game} {frame.shape}")


# The kernels run in this process are the default ones (AVX2 where the CPU has it); these
# settings pick the others in a subprocess: the portable loops, and the AVX-512 kernels
# (opt-in, see cpu_features.hpp).
OTHER_KERNELS = {"portable": {"ATARI_VEC_DISABLE_SIMD": "1"}, "avx512": {"ATARI_VEC_AVX512": "1"}}


def _kernel_env(which):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("ATARI_VEC_DISABLE_SIMD", "ATARI_VEC_AVX512")}
    env.update(OTHER_KERNELS.get(which, {}))
    return env


@pytest.mark.parametrize("which", sorted(OTHER_KERNELS))
def test_other_kernels_are_exact_too(which):
    # The kernels are chosen at run time; every choice must give cv2's bytes.
    import subprocess
    import sys

    code = (
        "import numpy as np, cv2; from atari_vec import _core\n"
        "rng = np.random.default_rng(3)\n"
        "for shape in [(210, 160), (210, 160, 3), (97, 131)]:\n"
        "    img = rng.integers(0, 256, size=shape, dtype=np.uint8)\n"
        "    for h, w in [(84, 84), (50, 61)]:\n"
        "        out, native = _core.area_resize(img, h, w)\n"
        "        assert native\n"
        "        ref = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)\n"
        "        assert np.array_equal(out, ref), (shape, h, w)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_kernel_env(which), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_portable_and_simd_envs_agree():
    # Same seeds and actions with the default, AVX-512 and portable palette/pool/resize
    # kernels: same bytes.
    import hashlib
    import os
    import subprocess
    import sys

    code = (
        "import hashlib, numpy as np, atari_vec\n"
        "env = atari_vec.AtariVectorEnv('ms_pacman', 2, noop_max=0)\n"
        "h = hashlib.sha1(env.reset(seed=3)[0].tobytes())\n"
        "for a in np.random.default_rng(0).integers(0, 9, size=(60, 2)):\n"
        "    h.update(env.step(a)[0].tobytes())\n"
        "print(h.hexdigest())\n"
    )
    digests = []
    for which in ["default", *sorted(OTHER_KERNELS)]:
        out = subprocess.run([sys.executable, "-c", code], env=_kernel_env(which),
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        digests.append(out.stdout.strip())
    assert len(set(digests)) == 1 and len(digests[0]) == len(hashlib.sha1().hexdigest())
