"""Gymnasium's vector rendering wrappers on AtariVectorEnv: RecordVideo writes a video of the
screens render() returns, and HumanRendering shows them in a window (under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.wrappers.vector import HumanRendering, RecordVideo

import atari_vec
from test_human_render import xvfb  # noqa: F401  (the Xvfb display fixture)


def test_render_returns_a_tuple_of_screens(closing):
    env = atari_vec.AtariVectorEnv("pong", 3, render_mode="rgb_array")
    closing(env)
    env.reset(seed=0)
    frames = env.render()
    assert isinstance(frames, tuple) and len(frames) == 3
    assert all(f.shape == (210, 160, 3) and f.dtype == np.uint8 for f in frames)
    assert env.metadata["render_fps"] > 0


@pytest.mark.timeout(120)
def test_record_video_writes_the_rendered_frames(tmp_path, closing):
    env = RecordVideo(atari_vec.AtariVectorEnv("breakout", 2, render_mode="rgb_array"),
                      str(tmp_path), episode_trigger=lambda i: i == 0, video_length=30)
    closing(env)
    env.reset(seed=0)
    for _ in range(40):
        env.step(np.ones(2, dtype=np.int64))
    env.close()
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000

    import imageio.v3 as iio

    frames = iio.imread(videos[0])
    assert frames.shape[0] == 30 and frames.shape[-1] == 3


@pytest.mark.timeout(120)
def test_human_rendering_wrapper_shows_the_screens(xvfb, closing):  # noqa: F811
    env = HumanRendering(atari_vec.AtariVectorEnv("pong", 2, render_mode="rgb_array"))
    closing(env)
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.zeros(2, dtype=np.int64))
    assert env.window is not None
