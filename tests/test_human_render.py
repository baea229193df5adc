"""The render_mode="human" window, checked pixel by pixel in a real X server (Xvfb).

Needs Xvfb (Debian: apt-get install xvfb), pygame and Pillow with XCB support (the PyPI
wheels have it): a missing one fails these tests rather than skipping them.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest

import atari_vec


def _require_pygame():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError:
        pytest.fail('pygame is missing: pip install pygame (or pip install "atari-vec[human]")')
    return pygame


@pytest.fixture(autouse=True)
def _no_window_left_open():
    """pygame's display is per process: whatever a test opened is closed before the next."""
    yield
    pygame = sys.modules.get("pygame")
    if pygame is not None:
        pygame.display.quit()


@pytest.fixture
def xvfb(monkeypatch, tmp_path) -> Iterator[str]:
    """A fresh Xvfb server; DISPLAY points at it and SDL is told to use X, so the window
    lands there. Yields ":<n>"."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is missing: apt-get install xvfb")
    _require_pygame()
    # Xvfb picks a free display number itself and writes it to the pipe once it accepts
    # connections: probing numbers from here would race other test runs on this machine.
    # The read end stays open while Xvfb runs, as a write to a closed pipe would kill it.
    read_end, write_end = os.pipe()
    log = tmp_path / "xvfb.log"  # a file, not a pipe no one reads
    command = ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "-nolisten", "tcp"],
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
        )
    os.close(write_end)
    try:
        answer = b""
        deadline = time.monotonic() + 10
        while not answer.endswith(b"\n") and time.monotonic() < deadline:
            if select.select([read_end], [], [], deadline - time.monotonic())[0]:
                chunk = os.read(read_end, 32)
                if not chunk:  # Xvfb exited
                    break
                answer += chunk
        number = answer.decode().strip()
        if not answer.endswith(b"\n") or not number.isdigit():
            pytest.fail(f"Xvfb did not start within 10 s:\n{log.read_text()[-2000:]}")
        monkeypatch.setenv("DISPLAY", f":{number}")
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
        yield f":{number}"
    finally:
        # A window left open when its server goes away makes Xlib exit the process.
        sys.modules["pygame"].display.quit()
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        os.close(read_end)


def _screenshot(display: str) -> np.ndarray:
    """The whole X screen as an (H, W, 3) uint8 array."""
    from PIL import ImageGrab, features

    if not features.check("xcb"):
        pytest.fail("Pillow was built without XCB, so ImageGrab cannot read X: pip install pillow")
    # A new X connection is now and then refused while the server is busy (seen once in a
    # full CI run: "X connection failed: error 1"); try again for a few seconds before failing.
    deadline = time.monotonic() + 10.0
    while True:
        try:
            return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _window_origin() -> tuple[int, int]:
    """(x, y) of the open pygame window on the screen, as SDL reports it."""
    from pygame._sdl2.video import Window

    return Window.from_display_module().position


def _expected_window(frames: np.ndarray, scale: int) -> np.ndarray:
    """The window a HumanRenderer should show for `frames`, written out tile by tile."""
    n, height, width, _ = frames.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    window = np.zeros((rows * height * scale, cols * width * scale, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, cols)
        tile = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
        window[
            r * height * scale : (r + 1) * height * scale,
            c * width * scale : (c + 1) * width * scale,
        ] = tile
    return window


def _assert_window_shows(display: str, expected: np.ndarray, timeout: float = 5.0) -> None:
    """The window's pixels on the X screen equal `expected`; waits up to `timeout` for the
    server to show them."""
    x, y = _window_origin()
    h, w, _ = expected.shape
    deadline = time.monotonic() + timeout
    while True:
        shown = _screenshot(display)[y : y + h, x : x + w]
        if shown.shape == expected.shape and np.array_equal(shown, expected):
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert shown.shape == expected.shape, f"window at ({x}, {y}) is cut off by the screen edge"
    wrong = np.argwhere(np.any(shown != expected, axis=-1))
    row, col = (int(i) for i in wrong[0])
    pytest.fail(
        f"{len(wrong)} of {h * w} window pixels differ; first at (row, col) ({row}, {col}): "
        f"shown {shown[row, col]}, expected {expected[row, col]}"
    )


@pytest.mark.timeout(60)
def test_window_shows_scaled_tiles(xvfb):
    from atari_vec.human_render import HumanRenderer

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 210, 160, 3), dtype=np.uint8)
    window = HumanRenderer(3, scale=2)
    try:
        assert window.window_size == (2 * 160 * 2, 2 * 210 * 2)  # 2 x 2 grid, one tile empty
        window.show(frames)
        expected = _expected_window(frames, 2)
        assert not expected[420:, 320:].any()
        _assert_window_shows(xvfb, expected)

        frames = rng.integers(0, 256, size=frames.shape, dtype=np.uint8)
        window.show(frames)
        _assert_window_shows(xvfb, _expected_window(frames, 2))
    finally:
        window.close()
    window.close()
    assert not _screenshot(xvfb).any(), "the window is still on screen after close()"


@pytest.mark.timeout(60)
def test_show_checks_frames_and_survives_closing_the_window(xvfb):
    from atari_vec.human_render import HumanRenderer

    pygame = _require_pygame()
    window = HumanRenderer(2, screen_shape=(4, 5), scale=3, caption="test")
    try:
        with pytest.raises(ValueError, match=r"\(2, 4, 5, 3\)"):
            window.show(np.zeros((2, 5, 4, 3), dtype=np.uint8))
        with pytest.raises(TypeError, match="uint8"):
            window.show(np.zeros((2, 4, 5, 3), dtype=np.float32))
        frames = np.full((2, 4, 5, 3), 200, dtype=np.uint8)
        window.show(frames)
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        window.show(frames)  # the user closed the window: no error, nothing drawn
        assert window.closed
        assert not pygame.display.get_init()
    finally:
        window.close()


@pytest.mark.timeout(60)
def test_env_human_window_shows_render(xvfb):
    pygame = _require_pygame()
    env = atari_vec.AtariVectorEnv("pong", num_envs=2, render_mode="human")
    try:
        env.reset(seed=0)
        screens = np.stack(env.render())
        assert screens.shape == (2, 210, 160, 3)
        _assert_window_shows(xvfb, _expected_window(screens, 2))
        actions = np.random.default_rng(0).integers(0, env.single_action_space.n, size=(20, 2))
        for a in actions:
            env.step(a)
        after = np.stack(env.render())
        assert not np.array_equal(after, screens)
        _assert_window_shows(xvfb, _expected_window(after, 2))
    finally:
        env.close()
    assert env._human.closed
    assert not pygame.display.get_init()


@pytest.mark.timeout(60)
def test_no_display_raises(monkeypatch):
    _require_pygame()
    from atari_vec.human_render import HumanRenderer

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    with pytest.raises(RuntimeError, match="DISPLAY") as excinfo:
        HumanRenderer(1)
    assert "xvfb" in str(excinfo.value).lower()


@pytest.mark.timeout(60)
def test_unreachable_display_raises(monkeypatch, tmp_path):
    _require_pygame()
    from atari_vec.human_render import HumanRenderer

    monkeypatch.setenv("DISPLAY", ":1999")  # no server there
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # nor a Wayland socket to fall back on
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    with pytest.raises(RuntimeError, match="xvfb-run"):
        HumanRenderer(1)
