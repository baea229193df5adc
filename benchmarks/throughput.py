"""Throughput benchmark: atari_vec against ale-py, EnvPool, Gymnasium and the bare emulator.

Every peer runs the same Atari pipeline (frameskip 4 with max-pool, 84x84 grayscale, 4 stacked
frames, up to 30 no-ops at reset, fire reset where the peer has it, reward clipping, no episodic
life, no sticky actions) driven by random actions, and reports environment transitions per second
(steps/s) and emulator frames per second (frames/s = steps/s x frameskip).

Peers are interleaved: each round measures every peer once, in an order rotated from one round
to the next, so slow drifts of the machine (other load, thermal limits) spread over all peers.
The median over rounds is reported.

Peers:
    atari_vec        atari_vec.AtariVectorEnv, synchronous (every step returns all num_envs)
    atari_vec_async  the same with batch_size < num_envs (send/recv, ids in info["env_id"])
    ale_py           ale_py.vector_env.AtariVectorEnv, synchronous
    ale_py_async     the same with batch_size < num_envs
    envpool          EnvPool (gymnasium flavour), synchronous: batch_size = num_envs
    envpool_async    EnvPool with batch_size < num_envs (send(actions, env_id) / recv)
    gym_sync         gymnasium SyncVectorEnv over FrameStackObservation(AtariPreprocessing(...))
    gym_async        the same in an AsyncVectorEnv (one worker process per environment)
    limit            bare ALE act() with random actions on native threads, no preprocessing

Every native peer steps on the same number of CPUs: ale-py and EnvPool get min(num_envs, CPUs)
worker threads, atari_vec its default (one fewer: the thread that calls step() or recv() runs
environments too).

Peak memory per environment is measured for each peer in a fresh interpreter (this script
re-run with a hidden flag): peak RSS minus the RSS right after imports, divided by num_envs.

After the throughput tables, the start-up table of benchmarks/startup.py (construct, first
reset, seeded reset and MiB per env of atari_vec, ale-py and EnvPool at --startup-envs, each in
a fresh interpreter, as many interleaved rounds). The plot shows bars per peer when the run has
a single num_envs, frames/s against num_envs for a grid.

Usage:
    python benchmarks/throughput.py                        # full run
    python benchmarks/throughput.py --quick --no-plot      # short smoke run
    python benchmarks/throughput.py --games pong --num-envs 2 4 8 16 --batch-sizes 1 2 4 8
    python benchmarks/throughput.py --peers atari_vec envpool limit --rounds 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

PEERS: tuple[str, ...] = (
    "atari_vec",
    "atari_vec_async",
    "ale_py",
    "ale_py_async",
    "envpool",
    "envpool_async",
    "gym_sync",
    "gym_async",
    "limit",
)
ASYNC_PEERS = frozenset({"atari_vec_async", "ale_py_async", "envpool_async"})
GYM_PEERS = frozenset({"gym_sync", "gym_async"})
ENVPOOL_PEERS = frozenset({"envpool", "envpool_async"})

FRAMESKIP = 4
WARMUP_STEPS = 20  # batches stepped after reset, before timing
MEMORY_STEPS = 50  # batches stepped in a memory probe
ACTION_BLOCK = 1024  # pre-generated action batches, cycled through in the timed loop

# The shared configuration, in the keyword names of atari_vec and ale-py.
ALE_KWARGS: dict[str, Any] = {
    "frameskip": FRAMESKIP,
    "maxpool": True,
    "grayscale": True,
    "img_height": 84,
    "img_width": 84,
    "stack_num": 4,
    "noop_max": 30,
    "use_fire_reset": True,
    "reward_clipping": True,
    "episodic_life": False,
    "repeat_action_probability": 0.0,
    "max_num_frames_per_episode": 108_000,
}

# The limit plays with the same sticky-action probability as every peer.
STICKY = ALE_KWARGS["repeat_action_probability"]

# The same configuration in EnvPool's names (checked against envpool.make_spec("Breakout-v5")
# .config; EnvPool rejects unknown names). EnvPool always max-pools the last two frames.
ENVPOOL_KWARGS: dict[str, Any] = {
    "frame_skip": FRAMESKIP,
    "gray_scale": True,
    "img_height": 84,
    "img_width": 84,
    "stack_num": 4,
    "noop_max": 30,
    "use_fire_reset": True,
    "reward_clip": True,
    "episodic_life": False,
    "zero_discount_on_life_loss": False,
    "repeat_action_probability": 0.0,
    "max_episode_steps": 27_000,  # agent steps: 27,000 x 4 = 108,000 frames
    "use_inter_area_resize": True,  # cv2.INTER_AREA, as in gymnasium's AtariPreprocessing
    "full_action_space": False,
}


# -- small helpers --------------------------------------------------------------------------


def cpu_count() -> int:
    """Return the number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def rom_id(game: str) -> str:
    """Normalize a game name (``"Breakout"``, ``"ALE/Pong-v5"``) to its ROM id."""
    from atari_vec._games import normalize_game

    return normalize_game(game)


def camel_name(game: str) -> str:
    """ROM id to the CamelCase name used in Gymnasium and EnvPool ids: ms_pacman -> MsPacman."""
    return "".join(part.capitalize() for part in rom_id(game).split("_"))


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def emit(line: str) -> None:
    """Print a progress line at once (through tqdm's writer while a bar is shown)."""
    if _BAR is not None:
        _BAR.write(line)
    else:
        print(line, flush=True)


_BAR: Any = None  # the tqdm bar while measurements run, if tqdm is installed


# -- the environments -----------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What one measurement runs: a game, a peer and its sizes."""

    peer: str
    game: str
    num_envs: int  # environments actually used (gym peers may be capped)
    batch_size: int  # transitions per step/recv
    num_threads: int  # 0: the peer's own default (atari_vec)


class Stepper:
    """A peer's environment, driven one batch at a time by ``step``."""

    def __init__(self, env: Any, batch_size: int, num_actions: int):
        self.env = env
        self.batch_size = batch_size
        self.num_actions = num_actions

    def reset(self, seed: int) -> None:
        """Reset every environment."""
        self.env.reset(seed=seed)

    def step(self, actions: np.ndarray) -> None:
        """Advance one batch (``batch_size`` transitions)."""
        self.env.step(actions)

    def close(self) -> None:
        """Release the environment (threads, processes)."""
        self.env.close()


class AsyncStepper(Stepper):
    """send/recv with batch_size < num_envs; the env remembers which ids it last returned."""

    def step(self, actions: np.ndarray) -> None:
        """Send actions for the last batch received, then wait for the next batch."""
        self.env.send(actions)
        self.env.recv()


class EnvPoolStepper(Stepper):
    """EnvPool, synchronous: its seed is fixed at creation, so ``reset`` takes none."""

    def reset(self, seed: int) -> None:
        """Reset every environment (seed set at creation)."""
        self.env.reset()


class EnvPoolAsyncStepper(Stepper):
    """EnvPool's async API: ``send(actions, env_id)`` for the ids of the last ``recv``."""

    def reset(self, seed: int) -> None:
        """Start every environment's reset and receive the first batch (seed set at creation)."""
        self.env.async_reset()
        self._env_id = self.env.recv()[-1]["env_id"]

    def step(self, actions: np.ndarray) -> None:
        """Send actions for the last batch received, then wait for the next batch."""
        self.env.send(actions, self._env_id)
        self._env_id = self.env.recv()[-1]["env_id"]


def _make_gym_env(gym_id: str) -> Any:
    """One Gymnasium Atari env with the reference preprocessing (module level: picklable)."""
    import ale_py
    import gymnasium as gym
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    gym.register_envs(ale_py)
    env = gym.make(gym_id, frameskip=1, repeat_action_probability=0.0)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=FRAMESKIP, screen_size=84)
    return FrameStackObservation(env, 4, padding_type="zero")


def make_stepper(s: Setup, seed: int) -> Stepper:
    """Create the environment of a peer (not ``limit``) for a setup."""
    async_batch = s.batch_size if s.peer in ASYNC_PEERS else 0
    if s.peer in ("atari_vec", "atari_vec_async", "ale_py", "ale_py_async"):
        if s.peer.startswith("atari_vec"):
            from atari_vec import AtariVectorEnv
        else:
            from ale_py.vector_env import AtariVectorEnv
        env = AtariVectorEnv(
            rom_id(s.game),
            s.num_envs,
            batch_size=async_batch,
            num_threads=s.num_threads,
            **ALE_KWARGS,
        )
        cls = AsyncStepper if async_batch else Stepper
        return cls(env, s.batch_size, int(env.single_action_space.n))
    if s.peer in ENVPOOL_PEERS:
        import envpool

        env = envpool.make_gymnasium(
            f"{camel_name(s.game)}-v5",
            num_envs=s.num_envs,
            batch_size=s.batch_size,
            num_threads=s.num_threads,
            seed=seed,
            **ENVPOOL_KWARGS,
        )
        cls = EnvPoolAsyncStepper if async_batch else EnvPoolStepper
        return cls(env, s.batch_size, int(env.action_space.n))
    if s.peer in GYM_PEERS:
        import gymnasium as gym

        fns = [functools.partial(_make_gym_env, f"ALE/{camel_name(s.game)}-v5")] * s.num_envs
        vec_cls = gym.vector.SyncVectorEnv if s.peer == "gym_sync" else gym.vector.AsyncVectorEnv
        env = vec_cls(fns)
        return Stepper(env, s.num_envs, int(env.single_action_space.n))
    raise ValueError(f"unknown peer {s.peer!r}")


def random_actions(num_actions: int, batch_size: int, seed: int) -> np.ndarray:
    """Pre-generated random actions: ``ACTION_BLOCK`` batches of ``batch_size``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_actions, size=(ACTION_BLOCK, batch_size), dtype=np.int64)


# -- measurements ---------------------------------------------------------------------------


@dataclass
class Measurement:
    """One timed run of one peer (one round)."""

    game: str
    peer: str
    requested_num_envs: int
    num_envs: int
    batch_size: int
    num_threads: int  # 0: the peer's own default (atari_vec)
    round: int
    position: int  # place of this peer in the round's order
    steps: int
    seconds: float
    steps_per_s: float
    frames_per_s: float
    error: str | None = None


def time_stepper(stepper: Stepper, seconds: float, seed: int) -> tuple[int, float]:
    """Reset, warm up, then step with random actions for ``seconds``: (transitions, elapsed)."""
    actions = random_actions(stepper.num_actions, stepper.batch_size, seed)
    stepper.reset(seed)
    for i in range(WARMUP_STEPS):
        stepper.step(actions[i])
    step = stepper.step
    iters = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        step(actions[iters % ACTION_BLOCK])
        iters += 1
        now = time.perf_counter()
        if now >= deadline:
            break
    return iters * stepper.batch_size, now - start


def time_limit(
    s: Setup,
    seconds: float,
    seed: int,
    rate_cache: dict[tuple[str, int, str], float],
    through: str = "ale",
) -> tuple[int, float]:
    """Bare-emulator throughput: (steps, elapsed) with steps = frames / frameskip.

    ``emulator_limit`` runs a fixed number of frames per environment, so the frame count for
    ``seconds`` comes from the rate of an earlier run (a short calibration run the first time).
    A run much shorter than asked for (the rate was underestimated) is repeated, at most twice.
    ``through``: emulator_limit's route (``env_ram``/``env_gray``: the same loop through our
    AtariEnv, benchmarks/limit_split.py).
    """
    from atari_vec._bench import emulator_limit
    from atari_vec._games import rom_path

    rom = str(rom_path(s.game))
    key = (s.game, s.num_envs, through)

    def run(frames_per_env: int) -> tuple[int, float]:
        # The route only when asked: builds older than it (benchmarks/ab.py times those too)
        # take no such argument.
        extra = () if through == "ale" else (through,)
        return emulator_limit(rom, s.num_envs, s.num_threads, frames_per_env, FRAMESKIP, False,
                              seed, STICKY, *extra)

    if key not in rate_cache:
        frames, elapsed = run(50 * FRAMESKIP)
        rate_cache[key] = frames / max(elapsed, 1e-9) / s.num_envs
    for _ in range(3):
        frames_per_env = max(FRAMESKIP, int(rate_cache[key] * seconds) // FRAMESKIP * FRAMESKIP)
        frames, elapsed = run(frames_per_env)
        rate_cache[key] = frames / max(elapsed, 1e-9) / s.num_envs
        if elapsed >= 0.75 * seconds:
            break
    return frames // FRAMESKIP, elapsed


def measure(
    s: Setup,
    seconds: float,
    seed: int,
    rate_cache: dict[tuple[str, int, str], float],
) -> tuple[int, float]:
    """Create the peer's environment, time it, close it: (transitions, elapsed seconds)."""
    if s.peer == "limit":
        return time_limit(s, seconds, seed, rate_cache)
    stepper = make_stepper(s, seed)
    try:
        return time_stepper(stepper, seconds, seed)
    finally:
        stepper.close()


# -- memory ---------------------------------------------------------------------------------


def _status_kib(pid: int | str, field: str) -> int | None:
    """Return a ``VmRSS``-style field of /proc/<pid>/status in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _maxrss_mib(who: int) -> float:
    """Peak RSS from getrusage in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(who).ru_maxrss
    return value / 2**20 if sys.platform == "darwin" else value / 1024


def _private_mib(pid: int) -> float | None:
    """Memory only this process holds (Private_Clean + Private_Dirty of smaps_rollup), or None."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    except (OSError, ValueError):
        return None
    return total / 1024


def _peak_rss_mib() -> float:
    """Return the peak RSS of this process in MiB.

    Linux keeps ``ru_maxrss`` across fork and exec, so a probe started by a large parent would
    report the parent's size: the high-water mark of this process's own memory map (VmHWM) is
    used where /proc exists, ``getrusage(RUSAGE_SELF).ru_maxrss`` elsewhere.
    """
    kib = _status_kib("self", "VmHWM")
    return kib / 1024 if kib is not None else _maxrss_mib(resource.RUSAGE_SELF)


def memory_probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh interpreter: peak memory of one peer's environment.

    Imports what the peer needs, reads the RSS, creates the env, resets, steps
    ``MEMORY_STEPS`` batches and reads the peak RSS. For ``gym_async`` each worker process adds
    the memory private to it after those steps (its pages shared with the parent, such as the
    imported modules of a forked worker, are counted once, in the parent); without
    smaps_rollup, its peak RSS minus the parent's after-import RSS.
    """
    s = Setup(**spec)
    import atari_vec  # noqa: F401  (every peer below imports at least this much)

    if s.peer in ENVPOOL_PEERS:
        import envpool  # noqa: F401
    if s.peer in GYM_PEERS or s.peer.startswith("ale_py"):
        import ale_py  # noqa: F401
        import gymnasium  # noqa: F401
        from gymnasium.wrappers import AtariPreprocessing  # noqa: F401
    kib = _status_kib("self", "VmRSS")
    baseline = kib / 1024 if kib is not None else _maxrss_mib(resource.RUSAGE_SELF)

    children_extra = children_sum = 0.0
    if s.peer == "limit":
        from atari_vec._bench import emulator_limit
        from atari_vec._games import rom_path

        emulator_limit(str(rom_path(s.game)), s.num_envs, s.num_threads, MEMORY_STEPS * FRAMESKIP)
    else:
        stepper = make_stepper(s, seed=0)
        actions = random_actions(stepper.num_actions, stepper.batch_size, seed=0)
        stepper.reset(0)
        for i in range(MEMORY_STEPS):
            stepper.step(actions[i])
        for child in multiprocessing.active_children():
            hwm = _status_kib(child.pid, "VmHWM")
            if hwm is not None:
                children_sum += hwm / 1024
            private = _private_mib(child.pid)
            if private is not None:
                children_extra += private
            elif hwm is not None:
                children_extra += max(0.0, hwm / 1024 - baseline)
        stepper.close()
    peak = _peak_rss_mib()
    if s.peer == "gym_async" and children_sum == 0.0:  # no /proc: largest child only
        children_extra = max(0.0, _maxrss_mib(resource.RUSAGE_CHILDREN) - baseline)
    total = peak - baseline + children_extra
    return {
        "baseline_mib": baseline,
        "peak_mib": peak,
        "children_extra_mib": children_extra,
        "children_peak_rss_sum_mib": children_sum,
        "mib_per_env": total / s.num_envs,
        "start_method": multiprocessing.get_start_method(),
    }


def run_memory_probe(s: Setup, timeout: float = 600.0) -> dict[str, Any]:
    """Run ``memory_probe`` in a new interpreter (this script with the hidden flag)."""
    return run_probe_script(Path(__file__), json.dumps(asdict(s)), timeout)


def run_probe_script(script: Path, payload: str, timeout: float = 600.0) -> dict[str, Any]:
    """Run a benchmark script with ``--_probe payload`` in a new interpreter; its last stdout
    line is JSON. Returns that, or {"error": ...} if it failed or timed out."""
    cmd = [sys.executable, str(script.resolve()), "--_probe", payload]
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit code {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


# -- reporting ------------------------------------------------------------------------------


def summarize(
    measurements: list[Measurement], memory: dict[tuple[str, int, str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Median over rounds per (game, requested num_envs, peer), with ratios and memory."""
    groups: dict[tuple[str, int, str], list[Measurement]] = {}
    for m in measurements:
        if m.error is None:
            groups.setdefault((m.game, m.requested_num_envs, m.peer), []).append(m)
    medians = {k: statistics.median(m.steps_per_s for m in ms) for k, ms in groups.items()}
    # Per round, atari_vec (sync) against the peer measured in the same round, then the median
    # of those ratios: steadier than the ratio of medians when the machine's speed drifts
    # between rounds, since the two were measured close together.
    by_round = {(m.game, m.requested_num_envs, m.peer, m.round): m.steps_per_s
                for ms in groups.values() for m in ms}
    rows = []
    for (game, n, peer), ms in groups.items():
        sps = medians[(game, n, peer)]
        ours = medians.get((game, n, "atari_vec"))
        limit = medians.get((game, n, "limit"))
        mem = memory.get((game, n, peer), {})
        paired = [
            by_round[(game, n, "atari_vec", m.round)] / m.steps_per_s
            for m in ms
            if (game, n, "atari_vec", m.round) in by_round
        ]
        rows.append(
            {
                "game": game,
                "requested_num_envs": n,
                "peer": peer,
                "num_envs": ms[0].num_envs,
                "batch_size": ms[0].batch_size,
                "num_threads": ms[0].num_threads,
                "rounds": len(ms),
                "steps_per_s": sps,
                "frames_per_s": sps * FRAMESKIP,
                "steps_per_s_min": min(m.steps_per_s for m in ms),
                "steps_per_s_max": max(m.steps_per_s for m in ms),
                "atari_vec_over_peer": ours / sps if ours else None,
                "atari_vec_over_peer_paired": statistics.median(paired) if paired else None,
                "fraction_of_limit": sps / limit if limit else None,
                "mib_per_env": mem.get("mib_per_env"),
            }
        )
    return rows


def print_tables(rows: list[dict[str, Any]], peers: Sequence[str]) -> None:
    """One table per game and num_envs, peers in the order given."""
    header = (
        f"{'peer':<16}{'envs':>6}{'batch':>7}{'steps/s':>13}{'frames/s':>13}{'spread':>8}"
        f"{'atari_vec/peer':>16}{'paired':>8}{'peer/limit':>12}{'MiB/env':>9}"
    )
    configs = sorted({(r["game"], r["requested_num_envs"]) for r in rows})
    for game, n in configs:
        print(
            f"\n{game}, num_envs={n} (median over rounds; spread = (max-min)/median; "
            "paired = median over rounds of atari_vec / peer in the same round)"
        )
        print(header)
        print("-" * len(header))
        by_peer = {r["peer"]: r for r in rows if (r["game"], r["requested_num_envs"]) == (game, n)}
        for peer in peers:
            r = by_peer.get(peer)
            if r is None:
                continue
            spread = (r["steps_per_s_max"] - r["steps_per_s_min"]) / r["steps_per_s"]
            ratio = r["atari_vec_over_peer"]
            paired = r["atari_vec_over_peer_paired"]
            frac = r["fraction_of_limit"]
            mem = r["mib_per_env"]
            print(
                f"{peer:<16}{r['num_envs']:>6}{r['batch_size']:>7}{r['steps_per_s']:>13,.0f}"
                f"{r['frames_per_s']:>13,.0f}{spread:>8.1%}"
                f"{(f'{ratio:.2f}x' if ratio else '-'):>16}"
                f"{(f'{paired:.2f}x' if paired else '-'):>8}"
                f"{(f'{frac:.1%}' if frac else '-'):>12}"
                f"{(f'{mem:.1f}' if mem is not None else '-'):>9}"
            )
    sys.stdout.flush()


def plot(rows: list[dict[str, Any]], peers: Sequence[str], path: Path) -> bool:
    """One subplot per game: frames/s per peer as bars when the run has a single num_envs,
    else against num_envs (the bare-emulator limit dashed). False if no matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullLocator
    except ImportError:
        return False
    games = sorted({r["game"] for r in rows})
    single = len({r["requested_num_envs"] for r in rows}) == 1
    fig, axes = plt.subplots(1, len(games), figsize=(6.5 * len(games), 4.8), squeeze=False)
    for ax, game in zip(axes[0], games, strict=True):
        if single:
            _bars(ax, [r for r in rows if r["game"] == game], peers)
        else:
            _lines(ax, [r for r in rows if r["game"] == game], peers, NullLocator)
        ax.set_title(game)
        ax.grid(True, which="both", axis="y" if single else "both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _bars(ax: Any, rows: list[dict[str, Any]], peers: Sequence[str]) -> None:
    """frames/s of each peer at the run's one num_envs, the rounds' range as error bars."""
    by_peer = {r["peer"]: r for r in rows}
    shown = [p for p in peers if p in by_peer]
    y = [by_peer[p]["frames_per_s"] for p in shown]
    lo = [by_peer[p]["frames_per_s"] - by_peer[p]["steps_per_s_min"] * FRAMESKIP for p in shown]
    hi = [by_peer[p]["steps_per_s_max"] * FRAMESKIP - by_peer[p]["frames_per_s"] for p in shown]
    colors = ["0.6" if p == "limit" else ("C0" if p.startswith("atari_vec") else "C1")
              for p in shown]
    ax.bar(range(len(shown)), y, yerr=[lo, hi], capsize=3, color=colors)
    labels = [f"{p}\n(n={by_peer[p]['num_envs']})" if p in GYM_PEERS else p for p in shown]
    ax.set_xticks(range(len(shown)), labels, rotation=30, ha="right", fontsize=8)
    for i, v in enumerate(y):
        ax.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=7,
                    xytext=(0, 2), textcoords="offset points")
    n = rows[0]["requested_num_envs"] if rows else 0
    ax.set_ylabel(f"frames/s, num_envs={n} (median over rounds)")


def _lines(ax: Any, rows: list[dict[str, Any]], peers: Sequence[str], null_locator: Any) -> None:
    """frames/s against num_envs, one line per peer, the limit dashed."""
    for peer in peers:
        # One point per num_envs actually run (a capped gym peer repeats its num_envs).
        by_n: dict[int, dict[str, Any]] = {}
        for r in sorted(rows, key=lambda r: r["requested_num_envs"]):
            if r["peer"] == peer:
                by_n.setdefault(r["num_envs"], r)
        pts = sorted(by_n.items())
        if not pts:
            continue
        x = [n for n, _ in pts]
        y = [r["frames_per_s"] for _, r in pts]
        lo = [r["frames_per_s"] - r["steps_per_s_min"] * FRAMESKIP for _, r in pts]
        hi = [r["steps_per_s_max"] * FRAMESKIP - r["frames_per_s"] for _, r in pts]
        if peer == "limit":
            if len(x) == 1:
                ax.axhline(y[0], color="black", linestyle="--", label="limit (bare ALE)")
            else:
                ax.plot(x, y, "k--", label="limit (bare ALE)")
        else:
            ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=peer)
    ns = sorted({r["num_envs"] for r in rows})
    if len(ns) > 1:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_locator(null_locator())
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_yscale("log")
    ax.set_xlabel("num_envs")
    ax.set_ylabel("frames/s (median over rounds)")
    ax.legend(fontsize=8)


def machine_info() -> dict[str, Any]:
    """CPU, OS, Python and package versions, for the JSON file."""
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import atari_vec

    packages = ["atari-vec", "ale-py", "gymnasium", "numpy", "envpool", "matplotlib", "tqdm"]
    return {
        "cpus_available": cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version,
        "atari_vec_version": atari_vec.__version__,
        "atari_vec_ale_version": atari_vec.ALE_VERSION,
        "packages": {p: package_version(p) for p in packages},
    }


# -- the run --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line; --quick changes the defaults of options not given explicitly."""
    ncpu = cpu_count()
    p = argparse.ArgumentParser(
        description="Throughput of atari_vec against ale-py, EnvPool, Gymnasium and the "
        "bare-emulator limit (steps/s and frames/s with random actions).",
    )
    p.add_argument(
        "--games", nargs="+", default=None, help="ROM ids (default: breakout pong; breakout quick)"
    )
    p.add_argument(
        "--num-envs",
        nargs="+",
        type=int,
        default=[8 * ncpu],
        help="num_envs values, a grid (default: 8 x CPUs = %(default)s)",
    )
    p.add_argument(
        "--batch-sizes",
        nargs="+",
        type=int,
        default=None,
        help="batch_size of the async peers: one value for all num_envs, or one per num_envs "
        "value (default: num_envs // 2)",
    )
    p.add_argument(
        "--seconds", type=float, default=None, help="timed seconds (default 3; 1.5 quick)"
    )
    p.add_argument(
        "--gym-seconds",
        type=float,
        default=None,
        help="timed seconds of the slow gym peers "
        "(default: half of --seconds, at least 1 s unless --seconds is shorter)",
    )
    p.add_argument(
        "--gym-max-envs",
        type=int,
        default=None,
        help="cap on num_envs of the gym peers (default: no cap; number of CPUs with --quick)",
    )
    p.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds (default 3; 1 quick)"
    )
    p.add_argument(
        "--num-threads",
        type=int,
        default=0,
        help="worker threads of atari_vec, ale-py and EnvPool; 0 (default): min(num_envs, CPUs) "
        "for ale-py and EnvPool, atari_vec's own default for atari_vec (one worker fewer, "
        "as the calling thread steps environments too: the same CPUs in use)",
    )
    p.add_argument(
        "--peers",
        nargs="+",
        choices=PEERS,
        default=list(PEERS),
        metavar="PEER",
        help=f"peers to run (default: all): {' '.join(PEERS)}",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="short run: first game, 1 round, 1.5 s, small gym peers",
    )
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure peak memory per env in fresh subprocesses (default: on, off with --quick)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="base seed of resets and actions (default: 0)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="output directory (default: %(default)s)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")
    p.add_argument(
        "--startup-envs",
        type=int,
        default=64,
        help="num_envs of the start-up table (construct, first reset, seeded reset, MiB/env of "
        "atari_vec, ale-py and EnvPool, benchmarks/startup.py) printed after the run; 0: none "
        "(default: %(default)s)",
    )
    p.add_argument("--_probe", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._probe is not None:
        return args
    if args.games is None:
        args.games = ["breakout"] if args.quick else ["breakout", "pong"]
    args.seconds = args.seconds if args.seconds is not None else (1.5 if args.quick else 3.0)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if args.gym_seconds is None:
        args.gym_seconds = max(1.0, args.seconds / 2) if args.seconds >= 1 else args.seconds
    if args.gym_max_envs is None and args.quick:
        args.gym_max_envs = ncpu
    if args.memory is None:
        args.memory = not args.quick
    if any(n < 1 for n in args.num_envs):
        p.error("--num-envs values must be >= 1")
    if args.batch_sizes is not None:
        if len(args.batch_sizes) not in (1, len(args.num_envs)):
            p.error("--batch-sizes takes one value, or one per --num-envs value")
        if any(b < 1 for b in args.batch_sizes):
            p.error("--batch-sizes values must be >= 1")
    if args.seconds <= 0 or args.gym_seconds <= 0 or args.rounds < 1:
        p.error("--seconds, --gym-seconds and --rounds must be positive")
    args.peers = list(dict.fromkeys(args.peers))  # unique, in the order given
    return args


def available_peers(peers: list[str]) -> list[str]:
    """Drop the EnvPool peers (with a note) when EnvPool cannot be imported."""
    if not ENVPOOL_PEERS & set(peers):
        return peers
    try:
        import envpool  # noqa: F401
    except ImportError as exc:
        print(f"note: skipping EnvPool ({type(exc).__name__}: {exc})", flush=True)
        return [p for p in peers if p not in ENVPOOL_PEERS]
    return peers


def setups_for(args: argparse.Namespace, game: str, index: int, n: int) -> list[Setup]:
    """Return the setup of every selected peer for one game and one num_envs value."""
    ncpu = cpu_count()
    if args.batch_sizes is None:
        batch = max(1, n // 2)
    else:
        batch = min(n, args.batch_sizes[0 if len(args.batch_sizes) == 1 else index])
    threads = args.num_threads or min(n, ncpu)
    out = []
    for peer in args.peers:
        if peer == "limit":
            out.append(Setup(peer, game, n, n, ncpu))
        elif peer in GYM_PEERS:
            m = min(n, args.gym_max_envs) if args.gym_max_envs else n
            out.append(Setup(peer, game, m, m, 1 if peer == "gym_sync" else m))
        else:
            # atari_vec picks its own thread count unless one is given: the thread in step()
            # or recv() runs environments too, so its default has one worker fewer.
            t = args.num_threads if peer.startswith("atari_vec") else threads
            out.append(Setup(peer, game, n, batch if peer in ASYNC_PEERS else n, t))
    return out


def run(args: argparse.Namespace) -> int:
    """Measure everything, print the tables, write JSON (and the plot)."""
    global _BAR
    args.peers = available_peers(args.peers)
    games = [rom_id(g) for g in args.games]
    configs = [(g, i, n) for g in games for i, n in enumerate(args.num_envs)]
    total = len(configs) * args.rounds * len(args.peers)
    print(
        f"atari_vec throughput: games={games} num_envs={args.num_envs} peers={args.peers} "
        f"rounds={args.rounds} seconds={args.seconds} (gym {args.gym_seconds}) "
        f"CPUs={cpu_count()}",
        flush=True,
    )
    _BAR = None
    if sys.stdout.isatty():  # a bar in a log file is only noise
        try:
            from tqdm import tqdm

            _BAR = tqdm(total=total, unit="run", file=sys.stdout, leave=False, dynamic_ncols=True)
        except ImportError:
            pass

    measurements: list[Measurement] = []
    memory: dict[tuple[str, int, str], dict[str, Any]] = {}
    rate_cache: dict[tuple[str, int, str], float] = {}
    failed: set[tuple[str, int, str]] = set()
    probed: dict[Setup, dict[str, Any]] = {}
    done = 0
    interrupted = False
    try:
        for game, index, n in configs:
            setups = setups_for(args, game, index, n)
            for rnd in range(args.rounds):
                shift = rnd % len(setups)
                for pos, s in enumerate(setups[shift:] + setups[:shift]):
                    done += 1
                    tag = f"[round {rnd + 1}/{args.rounds}] ({done}/{total}) {game} n={n}"
                    if (game, n, s.peer) in failed:
                        emit(f"{tag} {s.peer:<16} skipped (failed before)")
                    else:
                        seconds = args.gym_seconds if s.peer in GYM_PEERS else args.seconds
                        seed = args.seed + 1000 * rnd
                        m = one_measurement(
                            s,
                            requested=n,
                            rnd=rnd,
                            pos=pos,
                            seconds=seconds,
                            seed=seed,
                            rate_cache=rate_cache,
                            tag=tag,
                        )
                        measurements.append(m)
                        if m.error is not None:
                            failed.add((game, n, s.peer))
                    if _BAR is not None:
                        _BAR.update(1)
            if args.memory:
                ok = [s for s in setups if (game, n, s.peer) not in failed]
                memory.update(measure_memory(ok, game, n, probed))
    except KeyboardInterrupt:
        interrupted = True
        emit("interrupted: reporting what was measured so far")
    finally:
        if _BAR is not None:
            _BAR.close()
            _BAR = None

    rows = summarize(measurements, memory)
    print_tables(rows, args.peers)
    startup = None
    if args.startup_envs > 0 and not interrupted:
        startup = run_startup(args, games[0])
    write_outputs(args, measurements, memory, rows, startup)
    return 130 if interrupted else 0


def run_startup(args: argparse.Namespace, game: str) -> dict[str, Any]:
    """The start-up table of benchmarks/startup.py, as many rounds as the throughput run."""
    import startup

    peers = startup.available(startup.PEERS)
    result = startup.measure(game, args.startup_envs, args.rounds, peers, log=emit)
    print("\n" + startup.table(game, args.startup_envs, result), flush=True)
    return {"game": game, "num_envs": args.startup_envs, "peers": result}


def measure_memory(
    setups: list[Setup], game: str, n: int, probed: dict[Setup, dict[str, Any]]
) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Memory probe of each setup, keyed by (game, requested num_envs, peer); prints each.

    ``probed`` caches results by setup: a capped gym peer repeats its setup for larger n.
    """
    out = {}
    for s in setups:
        if s not in probed:
            probed[s] = run_memory_probe(s)
        result = probed[s]
        out[(game, n, s.peer)] = {**asdict(s), **result}
        if "error" in result:
            emit(f"[memory] {game} n={n} {s.peer:<16} FAILED: {result['error']}")
        else:
            emit(f"[memory] {game} n={n} {s.peer:<16} {result['mib_per_env']:8.1f} MiB/env")
    return out


def one_measurement(
    s: Setup,
    *,
    requested: int,
    rnd: int,
    pos: int,
    seconds: float,
    seed: int,
    rate_cache: dict[tuple[str, int, str], float],
    tag: str,
) -> Measurement:
    """Measure one peer once, print its progress line; errors are recorded, not raised."""
    error = None
    try:
        steps, elapsed = measure(s, seconds, seed, rate_cache)
    except Exception as exc:  # noqa: BLE001  (a failing peer, e.g. unsupported game, is reported)
        steps, elapsed, error = 0, 0.0, f"{type(exc).__name__}: {exc}"
    sps = steps / elapsed if elapsed > 0 else 0.0
    if error:
        emit(f"{tag} {s.peer:<16} FAILED: {error}")
    else:
        size = f"n={s.num_envs}" + (f" b={s.batch_size}" if s.batch_size != s.num_envs else "")
        emit(
            f"{tag} {s.peer:<16} {sps:>12,.0f} steps/s {sps * FRAMESKIP:>12,.0f} frames/s  "
            f"({size}, {elapsed:.2f} s)"
        )
    return Measurement(
        game=s.game,
        peer=s.peer,
        requested_num_envs=requested,
        num_envs=s.num_envs,
        batch_size=s.batch_size,
        num_threads=s.num_threads,
        round=rnd,
        position=pos,
        steps=steps,
        seconds=elapsed,
        steps_per_s=sps,
        frames_per_s=sps * FRAMESKIP,
        error=error,
    )


def write_outputs(
    args: argparse.Namespace,
    measurements: list[Measurement],
    memory: dict[tuple[str, int, str], dict[str, Any]],
    rows: list[dict[str, Any]],
    startup: dict[str, Any] | None = None,
) -> None:
    """Write the JSON (raw rounds, memory, summary, start-up, machine) and the PNG into
    ``args.out``."""
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.pop("_probe", None)
    data = {
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": sys.argv,
        "config": config,
        "settings": {"atari_vec_and_ale_py": ALE_KWARGS, "envpool": ENVPOOL_KWARGS},
        "machine": machine_info(),
        "measurements": [asdict(m) for m in measurements],
        "memory": list(memory.values()),
        "summary": rows,
        "startup": startup,
    }
    json_path = args.out / f"throughput-{stamp}.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwrote {json_path}")
    if args.no_plot or not rows:
        return
    png_path = args.out / f"throughput-{stamp}.png"
    if plot(rows, args.peers, png_path):
        print(f"wrote {png_path}")
    else:
        print("note: matplotlib is not installed; no plot written")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: a benchmark run, or a memory probe when called with the hidden flag."""
    args = parse_args(argv)
    if args._probe is not None:
        print(json.dumps(memory_probe(json.loads(args._probe))), flush=True)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
