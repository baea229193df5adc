"""atari_vec.plangym against real plangym 0.1.32 (+ ale-py): the same trajectories for the
same actions and states, and plangym's own contract tests (plangym.api_tests, in
tests/test_plangym_api.py).

plangym is installed without its heavy extras (the README's test command:
``pip install --no-deps plangym==0.1.32``; pyvirtualdisplay and pillow come with ``.[test]``).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

try:  # a missing plangym fails the run (never a silent skip): the README's test command installs it
    import plangym
except ImportError as e:  # pragma: no cover
    raise ImportError("these tests need plangym: pip install --no-deps plangym==0.1.32") from e
from plangym.videogames.atari import AtariEnv as RealAtariEnv  # noqa: E402

from atari_vec import plangym as ours  # noqa: E402


def assert_same_step(mine, theirs, where):
    assert len(mine) == len(theirs), where
    *s1, o1, r1, t1, tr1, i1 = mine
    *s2, o2, r2, t2, tr2, i2 = theirs
    np.testing.assert_array_equal(o1, o2, f"obs, {where}")
    assert type(r1) is float and type(t1) is bool and type(tr1) is bool, where
    assert (r1, t1, tr1) == (r2, t2, tr2), where
    for key in ("lives", "episode_frame_number", "frame_number", "n_step", "dt", "lifes", "lost_life"):
        assert i1[key] == i2[key], f"info[{key!r}], {where}: {i1[key]} != {i2[key]}"
    assert set(i1) == set(i2), where


@pytest.mark.parametrize(("game", "obs_type", "frameskip"), [
    ("ALE/MsPacman-v5", "ram", 5), ("ALE/Pong-v5", "ram", 4), ("ALE/Breakout-v5", "rgb", 2),
    ("ALE/SpaceInvaders-v5", "grayscale", 3),
])
def test_trajectories_equal_real_plangym(game, obs_type, frameskip):
    """Single steps (with autoreset across game overs), then step_batch from saved states:
    rewards, flags, info and observations equal plangym's (screens: after a frame has been
    emulated, as plangym's own screen is stale right after set_state). Not Qbert or Tetris:
    there plangym's stock ALE restores inexactly (docs/ale-roundtrip.md) and ours does not,
    so the batches differ exactly where plangym is wrong."""
    kw = dict(obs_type=obs_type, frameskip=frameskip, max_num_frames_per_episode=600)
    mine, theirs = ours.AtariEnv(game, **kw), RealAtariEnv(game, **kw)
    try:
        s1, o1, i1 = mine.reset()
        s2, o2, i2 = theirs.reset()
        np.testing.assert_array_equal(o1, o2, "reset obs")
        assert {k: i1[k] for k in ("lives", "episode_frame_number")} == \
            {k: i2[k] for k in ("lives", "episode_frame_number")}
        rng = np.random.default_rng(0)
        n = int(theirs.n_actions)
        assert int(mine.n_actions) == n and mine.obs_shape == theirs.obs_shape
        saved = []
        ends = 0
        for t in range(150):
            a = int(rng.integers(0, n))
            dt = int(rng.integers(1, 3))
            r1, r2 = mine.step(a, dt=dt), theirs.step(a, dt=dt)
            assert_same_step(r1, r2, f"step {t}")
            ends += r2[2] or r2[3]
            np.testing.assert_array_equal(mine.get_ram(), theirs.get_ram(), f"RAM after step {t}")
            if obs_type != "ram":
                np.testing.assert_array_equal(mine.get_image(), theirs.get_image(), f"screen, step {t}")
            if t % 10 == 0:
                saved.append((mine.get_state(), theirs.get_state()))
        assert ends > 0, "an episode must end (autoreset compared)"
        # Batches from the saved states, as a planner would.
        actions = rng.integers(0, n, len(saved))
        dts = rng.integers(1, 4, len(saved))
        b1 = mine.step_batch(actions, [s for s, _ in saved], dt=dts)
        b2 = theirs.step_batch(actions, [s for _, s in saved], dt=dts)
        assert all(isinstance(x, list) for x in b1) and len(b1) == len(b2) == 6
        for k in range(len(saved)):
            assert_same_step(tuple(x[k] for x in b1), tuple(x[k] for x in b2), f"walker {k}")
    finally:
        mine.close()
        theirs.close()


def test_states_are_plain_rows():
    env = ours.AtariEnv("ALE/Pong-v5", obs_type="ram")
    try:
        s, _, _ = env.reset()
        assert s.dtype == np.uint8 and s.ndim == 1
        assert (s == s.copy()).all() and (pickle.loads(pickle.dumps(s)) == s).all()
        holder = np.empty(2, dtype=object)
        holder[0] = s
        *_, info = env.step(0, state=holder[0])
        with pytest.raises(TypeError, match="uint8 row"):
            env.set_state(np.array((s, None), dtype=object))
        with pytest.raises(ValueError, match="dt must be >= 1"):
            env.step(0, dt=0)
    finally:
        env.close()


def test_make_and_parallel_env_are_native():
    """make(n_workers=2): our ParallelEnv on native threads. Compared with plangym's serial
    AtariEnv at ParallelEnv's frameskip 1 (plangym's ParallelEnv splits the same calls over
    processes; its own processes need the fork start method, which the rest of the suite may
    have changed)."""
    env = ours.make("ALE/MsPacman-v5", obs_type="ram", n_workers=2)
    real = RealAtariEnv("ALE/MsPacman-v5", obs_type="ram", frameskip=1)
    try:
        assert isinstance(env, ours.ParallelEnv) and env.frameskip == 1
        s, _, _ = env.reset()
        s2, _, _ = real.reset()
        out = env.step_batch([1, 2, 3], [s] * 3, dt=[1, 2, 3])
        ref = real.step_batch([1, 2, 3], [s2] * 3, dt=[1, 2, 3])
        assert len(out) == len(ref) == 6
        for k in range(3):
            assert_same_step(tuple(x[k] for x in out), tuple(x[k] for x in ref), f"walker {k}")
        # Without states, a vectorized env returns no states (return_state=None), as
        # plangym's ParallelEnv does; plangym's AtariEnv defaults to return_state=True.
        assert len(env.step_batch([1, 2])) == 5 == len(real.step_batch([1, 2], return_state=None))
    finally:
        env.close()
        real.close()
    assert isinstance(ours.make("ALE/Pong-v5", obs_type="ram", ray=True), ours.RayEnv)
    # Any id atari_vec knows, beyond plangym's 63.
    assert ours.make("MsPacmanNoFrameskip-v4").obs_type == "ram"  # plangym's substring rule
    assert ours.make("ALE/Pong-v5").game == "pong"


def test_the_sensible_switch():
    """exact_plangym=False: dt * frameskip frames per step (not dt * frameskip ** 2), and
    episodic_life ends a step at a lost life (plangym's never fires)."""
    quirky = ours.AtariEnv("ALE/Breakout-v5", obs_type="ram", frameskip=4, episodic_life=True)
    sane = ours.AtariEnv("ALE/Breakout-v5", obs_type="ram", frameskip=4, episodic_life=True,
                         exact_plangym=False)
    try:
        quirky.reset()
        sane.reset()
        assert quirky.step(1, dt=2)[4]["episode_frame_number"] == 32
        assert sane.step(1, dt=2)[4]["episode_frame_number"] == 8
        lost = 0
        for _ in range(400):
            obs, rew, term, trunc, info = sane.step(0, dt=5)
            if term:
                lost += info["lives"] > 0  # a life lost, not the game
                break
        assert lost == 1, "a lost life ends the step with terminal=True"
        for _ in range(400):
            *_, term, trunc, info = quirky.step(0, dt=5)
            if term:
                assert info["lives"] == 0, "plangym's episodic_life never ends on a life"
                break
    finally:
        quirky.close()
        sane.close()
