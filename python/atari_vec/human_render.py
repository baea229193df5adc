"""``HumanRenderer``: the pygame window behind ``render_mode="human"``.

All screens of a vector env are tiled into one window, each scaled by nearest neighbour, so
what the window shows is exactly ``np.repeat`` of ``render()``'s arrays. pygame is an optional
dependency (``pip install "atari-vec[human]"``), imported only when a window is opened.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

_NO_DISPLAY_FIX = (
    'set DISPLAY (for example run under "xvfb-run"), or use render_mode="rgb_array" '
    "to get the screens as arrays without a window"
)

_HEADLESS_DRIVERS = ("offscreen", "dummy")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


class HumanRenderer:
    """One pygame window showing ``num_envs`` full-colour screens in a grid.

    The grid has ``ceil(sqrt(num_envs))`` columns and as many rows as needed; every tile is the
    screen scaled ``scale`` times (each pixel a ``scale`` x ``scale`` block), with no gaps, and
    tiles without an environment stay black. pygame has a single display per process, so one
    renderer is open at a time. Caller thread only (SDL wants the main thread on macOS).

    Closing the window (its close button) does not raise: ``show`` stops drawing and
    ``closed`` becomes True.

    Args:
        num_envs: screens per ``show``.
        screen_shape: ``(height, width)`` of one screen.
        scale: integer zoom of each screen.
        caption: the window title.

    Raises:
        ImportError: pygame is not installed.
        RuntimeError: there is no display to open a window on.

    Example:
        >>> import numpy as np
        >>> from atari_vec.human_render import HumanRenderer
        >>> window = HumanRenderer(4)  # doctest: +SKIP
        >>> window.show(np.zeros((4, 210, 160, 3), dtype=np.uint8))  # doctest: +SKIP
        >>> window.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        num_envs: int,
        *,
        screen_shape: tuple[int, int] = (210, 160),
        scale: int = 2,
        caption: str = "atari_vec",
    ):
        self.closed = True
        self.num_envs = _positive_int("num_envs", num_envs)
        self.scale = _positive_int("scale", scale)
        if len(screen_shape) != 2:
            raise ValueError(f"screen_shape must be (height, width), got {screen_shape!r}")
        height, width = (_positive_int("screen_shape", s) for s in screen_shape)
        self.frame_shape = (self.num_envs, height, width, 3)
        self.cols = math.ceil(math.sqrt(self.num_envs))
        self.rows = math.ceil(self.num_envs / self.cols)

        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            import pygame
        except ImportError as e:
            raise ImportError(
                'render_mode="human" needs pygame: pip install "atari-vec[human]" '
                "(or pip install pygame)"
            ) from e
        # An explicit SDL_VIDEODRIVER (kmsdrm on a console, say) needs no X or Wayland display.
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY")
            or os.environ.get("WAYLAND_DISPLAY")
            or os.environ.get("SDL_VIDEODRIVER")
        ):
            raise RuntimeError(
                f'render_mode="human" needs a display, but DISPLAY and WAYLAND_DISPLAY are not '
                f"set: {_NO_DISPLAY_FIX}"
            )
        self._pygame = pygame

        # Tiles are staged in a padded block (empty tiles stay zero) and scaled into the
        # canvas by one broadcast assignment; the window's surface reads the canvas in place.
        self._tiles = np.zeros((self.rows * self.cols, height, width, 3), dtype=np.uint8)
        self._canvas = np.zeros(
            (self.rows * height * self.scale, self.cols * width * self.scale, 3), dtype=np.uint8
        )
        self._canvas_blocks = self._canvas.reshape(
            self.rows, height, self.scale, self.cols, width, self.scale, 3
        )
        self.window_size = (self._canvas.shape[1], self._canvas.shape[0])
        display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        try:
            pygame.display.init()
            driver = pygame.display.get_driver()
            # When no display answers, SDL falls back to drawing off screen, where no one
            # would see the window; that is only wanted if asked for by name.
            if driver in _HEADLESS_DRIVERS and os.environ.get("SDL_VIDEODRIVER") != driver:
                raise pygame.error(f"no display answered, SDL fell back to its {driver!r} driver")
            self._window = pygame.display.set_mode(self.window_size)
        except pygame.error as e:
            pygame.display.quit()
            raise RuntimeError(
                f"could not open a window on display {display!r} ({e}): {_NO_DISPLAY_FIX}"
            ) from e
        pygame.display.set_caption(caption)
        self._canvas_surface = pygame.image.frombuffer(self._canvas, self.window_size, "RGB")
        self.closed = False

    def show(self, frames: np.ndarray) -> None:
        """Draw ``frames``, shape ``(num_envs, height, width, 3)`` uint8, and update the window.

        Also handles the window's pending events; once the user has closed it, this does nothing.
        """
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
            raise TypeError(
                f"frames must be a uint8 numpy array, got "
                f"{getattr(frames, 'dtype', type(frames).__name__)}"
            )
        if frames.shape != self.frame_shape:
            raise ValueError(f"frames must have shape {self.frame_shape}, got {frames.shape}")
        if self.closed:
            return
        pygame = self._pygame
        if not pygame.display.get_init() or any(
            event.type == pygame.QUIT for event in pygame.event.get()
        ):
            self.close()
            return
        self._tiles[: self.num_envs] = frames
        rows, cols = self.rows, self.cols
        _, height, width, _ = self.frame_shape
        self._canvas_blocks[...] = self._tiles.reshape(rows, cols, height, width, 3).transpose(
            0, 2, 1, 3, 4
        )[:, :, None, :, :, None, :]
        self._window.blit(self._canvas_surface, (0, 0))
        pygame.display.flip()

    def close(self) -> None:
        """Close the window; calling it again does nothing."""
        if self.closed:
            return
        self.closed = True
        self._window = self._canvas_surface = None
        self._pygame.display.quit()
