"""Bit-exact equivalence with ale-py's own AtariVectorEnv under the same keyword arguments:
synchronous runs step for step, asynchronous runs env by env, every run across episode
boundaries (so autoreset is compared too)."""

from __future__ import annotations

import numpy as np
import pytest
from ale_py.vector_env import AtariVectorEnv as AlePyVectorEnv
from conftest import random_actions

import atari_vec

# A setting without its own frame limit gets this one (250 steps at frameskip 4), so every
# game's run ends episodes: Pong and Space Invaders by truncation, Breakout mostly by game
# over first.
FRAME_LIMIT = 1000

SETTINGS = {
    "default": {},
    "episodic_life": dict(episodic_life=True),
    "life_loss_info": dict(life_loss_info=True),
    "rgb_non_square": dict(grayscale=False, img_height=100, img_width=80),
    "stack1_frameskip1": dict(stack_num=1, frameskip=1, max_num_frames_per_episode=300),
    "full_action_space": dict(full_action_space=True),
    "same_step": dict(autoreset_mode="SameStep", max_num_frames_per_episode=700),
    "short_episodes": dict(max_num_frames_per_episode=500),
    "sticky_actions": dict(repeat_action_probability=0.25),
    "no_maxpool_no_clip": dict(maxpool=False, reward_clipping=False, frameskip=3),
}

INFO_KEYS = ("env_id", "lives", "frame_number", "episode_frame_number")


def trajectory(env, actions, seed):
    obs, info = env.reset(seed=seed)
    steps = [(obs.copy(), None, None, None, {k: np.array(v) for k, v in info.items()})]
    for a in actions:
        obs, rew, term, trunc, info = env.step(a)
        info = {k: np.array(v) for k, v in info.items() if k in (*INFO_KEYS, "final_obs")}
        steps.append((obs.copy(), rew.copy(), term.copy(), trunc.copy(), info))
    return steps


def compare_sync(ours, theirs, steps, seed) -> int:
    """Run both with the same random actions; assert they agree step for step and return
    the number of episodes that ended."""
    assert ours.single_observation_space == theirs.single_observation_space
    assert ours.single_action_space == theirs.single_action_space
    actions = random_actions(steps, ours.num_envs, ours.single_action_space.n, seed=5)
    a, b = trajectory(ours, actions, seed), trajectory(theirs, actions, seed)
    ended = 0
    for t, ((o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2)) in enumerate(zip(a, b)):
        for key in INFO_KEYS:
            np.testing.assert_array_equal(i1[key], i2[key], f"info[{key!r}] at step {t}")
        np.testing.assert_array_equal(o1, o2, f"obs at step {t}")
        if t:
            np.testing.assert_array_equal(r1, r2, f"reward at step {t}")
            assert r1.dtype == r2.dtype
            np.testing.assert_array_equal(te1, te2, f"terminated at step {t}")
            np.testing.assert_array_equal(tr1, tr2, f"truncated at step {t}")
            ended += int((te1 | tr1).sum())
        assert ("final_obs" in i1) == ("final_obs" in i2), f"final_obs presence at step {t}"
        if "final_obs" in i2:
            done = te1 | tr1
            np.testing.assert_array_equal(i1["final_obs"][done], i2["final_obs"][done])
    return ended


@pytest.mark.parametrize("game", ["breakout", "pong", "space_invaders"])
@pytest.mark.parametrize("name", list(SETTINGS))
def test_matches_ale_py(name, game, closing):
    kwargs = {"noop_max": 0, "max_num_frames_per_episode": FRAME_LIMIT, **SETTINGS[name]}
    num_envs, steps = 3, 400
    theirs = AlePyVectorEnv(game, num_envs, **kwargs)
    ours = atari_vec.AtariVectorEnv(game, num_envs, seeding="ale_py", **kwargs)
    closing(theirs)
    closing(ours)
    ended = compare_sync(ours, theirs, steps, seed=3)
    assert ended > 0, "the run should cross episode boundaries, so autoreset is compared"


@pytest.mark.parametrize("game", ["breakout", "freeway"])  # with FIRE, and without
def test_matches_ale_py_with_noops(game, closing):
    """The default noop_max=30, seeded resets and the unseeded autoresets after them."""
    kwargs = dict(noop_max=30, max_num_frames_per_episode=600)
    ours = atari_vec.AtariVectorEnv(game, 3, seeding="ale_py", **kwargs)
    theirs = AlePyVectorEnv(game, 3, **kwargs)
    closing(theirs)
    closing(ours)
    assert compare_sync(ours, theirs, 400, seed=3) > 0


def per_env_trajectories(env, actions, per_env, seed):
    """Drive an async env with per-env action sequences (actions[k, e] is env e's k-th
    action; at most one batch per row) until every env has `per_env` results; return each
    env's results in its own order: (obs, reward, terminated, truncated, info values, final
    obs or None). Which envs make up a batch depends on timing; what each env does does not."""
    n = env.num_envs
    taken = np.zeros(n, dtype=np.int64)
    traj = {e: [] for e in range(n)}
    obs, info = env.reset(seed=seed)
    rew = term = trunc = np.zeros(len(obs))  # the reset's rows
    for _ in range(len(actions)):  # a generous cap: batches are not served in turn
        ids = info["env_id"]
        assert len(set(ids.tolist())) == len(ids) == env.batch_size
        for row, e in enumerate(ids):
            final = info["final_obs"][row].copy() if (
                "final_obs" in info and (term[row] or trunc[row])) else None
            traj[e].append((obs[row].copy(), int(rew[row]), bool(term[row]), bool(trunc[row]),
                            tuple(int(info[k][row]) for k in INFO_KEYS), final))
        if min(len(t) for t in traj.values()) >= per_env:
            return traj
        env.send(actions[taken[ids], ids])
        taken[ids] += 1
        obs, rew, term, trunc, info = env.recv()
    pytest.fail(f"some env was not served: {[len(t) for t in traj.values()]} results")


@pytest.mark.parametrize(
    "num_envs, batch_size, setting",
    [
        (4, 2, dict(max_num_frames_per_episode=400)),
        (5, 3, dict(autoreset_mode="SameStep", max_num_frames_per_episode=400)),
        (4, 1, dict(episodic_life=True, repeat_action_probability=0.25)),
    ],
    ids=["next_step", "same_step", "episodic_life_sticky"],
)
def test_async_matches_ale_py_per_env(num_envs, batch_size, setting, closing):
    """batch_size < num_envs: each env's own results (observation, reward, flags, info, final
    observation) agree with ale-py's, whatever the batches they came in."""
    kwargs = dict(noop_max=0, batch_size=batch_size, **setting)
    ours = atari_vec.AtariVectorEnv("breakout", num_envs, seeding="ale_py", **kwargs)
    theirs = AlePyVectorEnv("breakout", num_envs, **kwargs)
    closing(theirs)
    closing(ours)
    per_env = 150
    actions = np.random.default_rng(2).integers(0, 4, size=(4 * per_env * num_envs, num_envs))
    a = per_env_trajectories(ours, actions, per_env, seed=3)
    b = per_env_trajectories(theirs, actions, per_env, seed=3)
    for e in range(num_envs):
        ended = 0
        for t, (x, y) in enumerate(zip(a[e][:per_env], b[e][:per_env])):
            where = f"env {e}, its result {t}"
            np.testing.assert_array_equal(x[0], y[0], f"obs, {where}")
            assert x[1:5] == y[1:5], f"reward, terminated, truncated, info of {where}"
            assert (x[5] is None) == (y[5] is None), f"final_obs presence, {where}"
            if x[5] is not None:
                np.testing.assert_array_equal(x[5], y[5], f"final_obs, {where}")
            ended += int(x[2] or x[3])
        assert ended > 0, f"env {e} should cross an episode boundary"
