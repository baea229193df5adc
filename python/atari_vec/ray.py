"""Pools on a Ray cluster: a Gymnasium ``VectorEnv`` whose envs live in pool actors.

``RayVectorEnv(game, num_envs, num_actors=k)`` starts k actors, each owning an
``AtariVectorEnv`` of ``num_envs / k`` envs (env i lives in actor ``i // (num_envs / k)``, so
seeds and order match a local pool of ``num_envs``), placed by a placement group
(``placement_strategy="SPREAD"``: on different nodes where there are several;
``"STRICT_SPREAD"`` demands it). ``reset``/``step`` scatter the actions and gather the
results; ``send``/``recv`` do it asynchronously, ``recv`` returning the first actors to finish
when ``batch_size < num_envs``. Every Ray call costs about a millisecond, so
:meth:`RayVectorEnv.rollout` runs T steps inside each actor, with a policy shipped to it,
and returns the whole trajectory in one call per actor.

Every remote call has a timeout. A dead actor (its node gone, the process killed) raises
:class:`ActorDiedError` naming the actor and its envs, never a hang; with
``restart_actors=True`` a dead actor is replaced instead, its envs start new episodes, and the
batch that met the death reports them truncated with ``info["actor_restarted"]`` set.

Thread-safety: one thread at a time, like ``AtariVectorEnv``. Needs ``pip install ray``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import ray
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from .vector_env import AtariVectorEnv


class ActorDiedError(RuntimeError):
    """A pool actor died (or could not be reached in time); its envs' states are lost."""


class PoolActor:
    """A Ray actor owning one AtariVectorEnv (synchronous mode). Its methods run on the
    actor's thread, one at a time."""

    def __init__(self, game: str, num_envs: int, kwargs: dict[str, Any]):
        self.env = AtariVectorEnv(game, num_envs, **kwargs)
        self.last_obs: np.ndarray | None = None  # where a rollout starts

    def describe(self) -> dict[str, Any]:
        e = self.env
        return {"observation_space": e.single_observation_space,
                "action_space": e.single_action_space,
                "autoreset_mode": e.autoreset_mode,
                "node_id": ray.get_runtime_context().get_node_id()}

    def reset(self, seed: Any, options: Any) -> tuple:
        result = self.env.reset(seed=seed, options=options)
        self.last_obs = result[0]
        return result

    def step(self, actions: np.ndarray) -> tuple:
        result = self.env.step(actions)
        self.last_obs = result[0]
        return result

    def rollout(self, policy: Callable | None, num_steps: int, seed: int | None) -> dict[str, Any]:
        """`num_steps` steps with `policy(obs) -> actions` (random actions if None); the
        observations, actions, rewards, flags and info arrays, stacked over time (written
        into arrays made once per call: one copy of each observation)."""
        if self.last_obs is None:
            raise RuntimeError("rollout() before reset()")
        env = self.env
        n = env.num_envs
        rng = np.random.default_rng(seed)
        out: dict[str, Any] | None = None
        for t in range(num_steps):
            if policy is None:
                actions = rng.integers(0, env.single_action_space.n, size=n)
            else:
                actions = np.asarray(policy(self.last_obs))
            obs, rew, term, trunc, info = self.step(actions)
            episode = info.get("episode")
            row = {"obs": obs, "actions": actions, "rewards": rew, "terminated": term,
                   "truncated": trunc}
            info_row = {key: info[key] for key in _ROLLOUT_INFO}
            info_row["episode_r"] = episode["r"] if episode else np.zeros(n, np.float32)
            info_row["episode_l"] = episode["l"] if episode else np.zeros(n, np.int32)
            info_row["_episode"] = info.get("_episode", np.zeros(n, bool))
            if out is None:
                out = {k: np.empty((num_steps, *np.shape(v)), np.asarray(v).dtype)
                       for k, v in row.items()}
                out["info"] = {k: np.empty((num_steps, *np.shape(v)), np.asarray(v).dtype)
                               for k, v in info_row.items()}
            for k, v in row.items():
                out[k][t] = v
            for k, v in info_row.items():
                out["info"][k][t] = v
        return out if out is not None else {}


# The per-step info arrays a rollout keeps (episode statistics come as episode_r/_l, _episode).
_ROLLOUT_INFO = ("lives", "frame_number", "episode_frame_number", "reward", "terminated",
                 "elapsed_step")


class RayVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` Atari envs in ``num_actors`` Ray actors, as one Gymnasium VectorEnv.

    Args:
        game: a ROM id (one game for all actors).
        num_envs: envs in all; a multiple of ``num_actors``.
        num_actors: pool actors; actor k holds envs ``[k * m, (k + 1) * m)``, m = num_envs /
            num_actors.
        placement_strategy: the placement group's strategy (``"SPREAD"``, ``"STRICT_SPREAD"``,
            ``"PACK"``, ``"STRICT_PACK"``), one bundle per actor.
        num_cpus_per_actor: CPUs each actor reserves; its pool runs that many threads (no
            affinity: actors sharing a node must not pin to the same cores).
        batch_size: envs per ``recv()``; a multiple of m (whole actors). Default: num_envs.
        call_timeout: seconds any remote call may take before it counts as dead.
        restart_actors: replace a dead actor instead of raising (see the module doc).
        **kwargs: ``AtariVectorEnv`` arguments for every actor's pool.
    """

    def __init__(self, game: str, num_envs: int, *, num_actors: int = 1,
                 placement_strategy: str = "SPREAD", num_cpus_per_actor: float = 1,
                 batch_size: int = 0, call_timeout: float = 120.0, restart_actors: bool = False,
                 **kwargs: Any):
        if not isinstance(num_actors, int) or num_actors < 1:
            raise ValueError(f"num_actors must be a positive int, got {num_actors!r}")
        if not isinstance(num_envs, int) or num_envs < num_actors or num_envs % num_actors:
            raise ValueError(f"num_envs ({num_envs!r}) must be a positive multiple of num_actors "
                             f"({num_actors})")
        for key in ("batch_size", "num_threads", "thread_affinity_offset", "render_mode"):
            if key in kwargs:
                raise ValueError(f"{key} is set by RayVectorEnv, not per actor")
        self.per_actor = num_envs // num_actors
        self.num_envs = num_envs
        self.batch_size = batch_size or num_envs
        if self.batch_size % self.per_actor or not 0 < self.batch_size <= num_envs:
            raise ValueError(f"batch_size must be a multiple of the envs per actor "
                             f"({self.per_actor}) up to num_envs, got {batch_size}")
        self.game = game
        self.call_timeout = float(call_timeout)
        self.restart_actors = bool(restart_actors)
        self._kwargs = {**kwargs, "num_threads": max(1, int(num_cpus_per_actor)),
                        "thread_affinity_offset": -1}
        self._num_cpus = num_cpus_per_actor
        self._remote = ray.remote(PoolActor)
        self.closed = True
        self._pg = placement_group([{"CPU": num_cpus_per_actor}] * num_actors,
                                   strategy=placement_strategy)
        self.actors: list[Any] = []
        try:
            if not self._pg.wait(timeout_seconds=int(self.call_timeout)):
                raise TimeoutError(
                    f"the placement group ({num_actors} x {num_cpus_per_actor} CPU, "
                    f"{placement_strategy}) was not placed within {self.call_timeout:g} s: "
                    "does the cluster have the CPUs (and nodes, for STRICT_SPREAD)?")
            self.actors = [self._start(k) for k in range(num_actors)]
            info = self._get([a.describe.remote() for a in self.actors], "describe")
        except BaseException:
            self._teardown()
            raise
        self.closed = False
        self.node_ids = [d["node_id"] for d in info]
        self.single_observation_space = info[0]["observation_space"]
        self.single_action_space = info[0]["action_space"]
        self.observation_space = batch_space(self.single_observation_space, self.batch_size)
        self.action_space = batch_space(self.single_action_space, self.batch_size)
        self.metadata = {"autoreset_mode": info[0]["autoreset_mode"]}
        self._pending: dict[Any, int] = {}  # ref -> actor index
        self._last_actors: list[int] = list(range(num_actors))
        self._restarted: set[int] = set()

    # -- actors ------------------------------------------------------------------------------

    def _start(self, k: int) -> Any:
        strategy = PlacementGroupSchedulingStrategy(self._pg, placement_group_bundle_index=k)
        return self._remote.options(num_cpus=self._num_cpus, scheduling_strategy=strategy).remote(
            self.game, self.per_actor, self._kwargs)

    def _envs_of(self, k: int) -> str:
        return f"envs {k * self.per_actor}..{(k + 1) * self.per_actor - 1}"

    def _get(self, refs: list[Any], what: str, actors: Sequence[int] | None = None) -> list[Any]:
        """ray.get under the timeout; a dead or silent actor becomes ActorDiedError."""
        actors = list(range(len(refs))) if actors is None else list(actors)
        ready, not_ready = ray.wait(refs, num_returns=len(refs), timeout=self.call_timeout)
        if not_ready:
            late = [actors[refs.index(r)] for r in not_ready]
            raise ActorDiedError(f"{what}: actor(s) {late} did not answer within "
                                 f"{self.call_timeout:g} s")
        out = []
        for ref, k in zip(refs, actors):
            try:
                out.append(ray.get(ref, timeout=self.call_timeout))
            except ray.exceptions.RayActorError as e:
                raise ActorDiedError(f"{what}: pool actor {k} ({self._envs_of(k)}) died: "
                                     f"{type(e).__name__}") from e
        return out

    def _replace(self, k: int) -> tuple:
        """A new actor in actor k's bundle, reset; its envs' first observations."""
        try:
            ray.kill(self.actors[k])
        except Exception:  # noqa: BLE001 - it is dead already
            pass
        self.actors[k] = self._start(k)
        self._restarted.add(k)
        return self._get([self.actors[k].reset.remote(None, None)], "restart", [k])[0]

    # -- the VectorEnv API ---------------------------------------------------------------------

    def _split(self, values: Any, actors: Sequence[int]) -> list[Any]:
        m = self.per_actor
        return [values[i * m:(i + 1) * m] for i in range(len(actors))]

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every env. ``seed=s`` seeds env i with ``s + i`` (as a local pool does)."""
        self._check_open()
        self._drain()
        n, m = self.num_envs, self.per_actor
        if seed is None:
            seeds: list[Any] = [None] * len(self.actors)
        elif isinstance(seed, (int, np.integer)):
            seeds = [[int(seed) + k * m + j for j in range(m)] for k in range(len(self.actors))]
        else:
            if len(seed) != n:
                raise ValueError(f"seed must have one entry per env ({n}), got {len(seed)}")
            seeds = [list(seed[k * m:(k + 1) * m]) for k in range(len(self.actors))]
        opts: list[Any] = [options] * len(self.actors)
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            opts = [{**options, "reset_mask": mask[k * m:(k + 1) * m]} for k in range(len(self.actors))]
        refs = [a.reset.remote(s, o) for a, s, o in zip(self.actors, seeds, opts)]
        results = self._get(refs, "reset")
        self._last_actors = list(range(len(self.actors)))
        obs, info = self._merge_reset(results)
        return obs, info

    def step(self, actions: Any) -> tuple:
        self.send(actions)
        return self.recv()

    def send(self, actions: Any) -> None:
        """Scatter one action per env of the last batch to its actor; returns at once."""
        self._check_open()
        if self._pending:
            raise RuntimeError("send() called twice without recv() in between")
        a = np.asarray(actions)
        if a.shape[:1] != (len(self._last_actors) * self.per_actor,):
            raise ValueError(f"expected {len(self._last_actors) * self.per_actor} actions, "
                             f"got shape {a.shape}")
        for k, chunk in zip(self._last_actors, self._split(a, self._last_actors)):
            self._pending[self.actors[k].step.remote(chunk)] = k

    def recv(self) -> tuple:
        """The results of the first actors to finish, ``batch_size`` envs in all."""
        self._check_open()
        if not self._pending:
            raise RuntimeError("recv() called without a matching send()")
        want = self.batch_size // self.per_actor
        refs = list(self._pending)
        ready, _ = ray.wait(refs, num_returns=min(want, len(refs)), timeout=self.call_timeout)
        if len(ready) < min(want, len(refs)):
            late = sorted(self._pending[r] for r in refs if r not in ready)
            raise ActorDiedError(f"step: actor(s) {late} did not answer within "
                                 f"{self.call_timeout:g} s")
        ready = sorted(ready, key=lambda r: self._pending[r])
        results, actors, restarted = [], [], []
        for ref in ready:
            k = self._pending.pop(ref)
            try:
                results.append(ray.get(ref, timeout=self.call_timeout))
                restarted.append(False)
            except ray.exceptions.RayActorError as e:
                if not self.restart_actors:
                    self._pending.clear()
                    raise ActorDiedError(f"step: pool actor {k} ({self._envs_of(k)}) died: "
                                         f"{type(e).__name__}") from e
                obs, info = self._replace(k)
                m = self.per_actor
                results.append((obs, np.zeros(m, np.int32), np.zeros(m, bool), np.ones(m, bool), info))
                restarted.append(True)
            actors.append(k)
        self._last_actors = actors
        return self._merge_step(results, actors, restarted)

    def _drain(self) -> None:
        if self._pending:
            ray.wait(list(self._pending), num_returns=len(self._pending), timeout=self.call_timeout)
            self._pending.clear()

    def _merge_reset(self, results: list[tuple]) -> tuple[np.ndarray, dict[str, Any]]:
        obs = results[0][0] if len(results) == 1 else np.concatenate([r[0] for r in results])
        info = self._merge_info([r[1] for r in results], list(range(len(results))))
        return obs, info

    def _merge_step(self, results: list[tuple], actors: list[int], restarted: list[bool]) -> tuple:
        if len(results) == 1:
            obs, rew, term, trunc = results[0][:4]
        else:
            obs, rew, term, trunc = (np.concatenate([r[i] for r in results]) for i in range(4))
        info = self._merge_info([r[4] for r in results], actors)
        if any(restarted):
            info["actor_restarted"] = np.repeat(np.array(restarted), self.per_actor)
        return obs, rew, term, trunc, info

    def _merge_info(self, infos: list[dict[str, Any]], actors: list[int]) -> dict[str, Any]:
        m = self.per_actor
        merged: dict[str, Any] = {}
        keys = {k for i in infos for k in i}
        for key in keys:
            if key == "env_id":
                merged[key] = np.concatenate([np.asarray(i["env_id"]) + k * m
                                              for i, k in zip(infos, actors)])
            elif key in ("episode", "final_info"):
                sub = [i.get(key) for i in infos]
                fields = {f for s in sub if s for f in s}
                merged[key] = {f: np.concatenate([np.asarray(s[f]) if s and f in s else
                                                  _zeros_like_any(sub, f, m) for s in sub])
                               for f in fields}
            else:
                parts = [i.get(key) for i in infos]
                template = next(p for p in parts if p is not None)
                merged[key] = np.concatenate([
                    np.asarray(p) if p is not None else np.zeros((m, *np.shape(template)[1:]),
                                                                 np.asarray(template).dtype)
                    for p in parts])
        return merged

    def rollout(self, num_steps: int, policy: Callable | None = None,
                seed: int | None = None) -> dict[str, Any]:
        """``num_steps`` steps inside every actor (one Ray call each), from the current
        observations; ``policy(obs) -> actions`` runs in the actors (random actions if None,
        drawn per actor from ``seed + k``). Returns arrays of shape (num_steps, num_envs, ...)."""
        self._check_open()
        self._drain()
        refs = [a.rollout.remote(policy, int(num_steps), None if seed is None else seed + k)
                for k, a in enumerate(self.actors)]
        parts = self._get(refs, "rollout")
        self._last_actors = list(range(len(self.actors)))
        out = {key: np.concatenate([p[key] for p in parts], axis=1)
               for key in ("obs", "actions", "rewards", "terminated", "truncated")}
        out["info"] = {key: np.concatenate([p["info"][key] for p in parts], axis=1)
                       for key in parts[0]["info"]}
        return out

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("RayVectorEnv is closed")

    def _teardown(self) -> None:
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
        try:
            remove_placement_group(self._pg)
        except Exception:  # noqa: BLE001
            pass

    def close_extras(self, **kwargs: Any) -> None:
        if not self.closed:
            self.closed = True
            self._teardown()


def _zeros_like_any(sub: list[Any], field: str, m: int) -> np.ndarray:
    template = next(np.asarray(s[field]) for s in sub if s and field in s)
    return np.zeros((m, *template.shape[1:]), template.dtype)


__all__ = ["ActorDiedError", "AutoresetMode", "RayVectorEnv"]
