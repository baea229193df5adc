"""Recording a short GIF of one environment while a vector env is stepped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.vector import VectorWrapper

from atari_vec.vector_env import AtariVectorEnv


class GifRecorder(VectorWrapper):
    """Wraps an ``AtariVectorEnv(render_mode="rgb_array")`` and keeps env ``env_id``'s screen
    after every reset and step; ``close()`` (or ``save()``) writes them as an animated GIF.

    Needs Pillow. Frames are kept in memory, so record short clips (``max_frames`` caps it).

    Example:
        >>> env = GifRecorder(AtariVectorEnv("pong", 2, render_mode="rgb_array"), "pong.gif")
        >>> _ = env.reset(seed=0)
        >>> for _ in range(50):
        ...     _ = env.step(env.action_space.sample())
        >>> env.close()  # writes pong.gif
    """

    def __init__(self, env: AtariVectorEnv, path: str | Path, env_id: int = 0, fps: int = 30,
                 max_frames: int = 2000):
        super().__init__(env)
        if env.unwrapped.render_mode != "rgb_array":
            raise ValueError("GifRecorder needs an env created with render_mode='rgb_array'")
        if env.unwrapped.batch_size != env.unwrapped.num_envs:
            raise ValueError("GifRecorder needs synchronous mode (batch_size == num_envs)")
        if not 0 <= env_id < env.num_envs:
            raise ValueError(f"env_id must be in [0, {env.num_envs}), got {env_id}")
        self.path = Path(path)
        self.env_id = env_id
        self.fps = fps
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []

    def _grab(self) -> None:
        if len(self.frames) < self.max_frames:
            self.frames.append(self.env.render([self.env_id])[0])

    def reset(self, **kwargs: Any):
        out = self.env.reset(**kwargs)
        self._grab()
        return out

    def step(self, actions: Any):
        out = self.env.step(actions)
        self._grab()
        return out

    def save(self) -> Path:
        """Write the frames kept so far to ``path``; returns it."""
        from PIL import Image

        if not self.frames:
            raise RuntimeError("no frames recorded: call reset() and step() first")
        images = [Image.fromarray(f) for f in self.frames]
        images[0].save(self.path, save_all=True, append_images=images[1:],
                       duration=max(1, round(1000 / self.fps)), loop=0)
        return self.path

    def close(self, **kwargs: Any) -> None:
        if self.frames:
            self.save()
            self.frames = []
        self.env.close(**kwargs)
