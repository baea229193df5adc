"""Start-up benchmark: how long atari_vec, ale-py's vector env and EnvPool take to construct
num_envs environments, to reset them the first time and to reset them with a seed, and the
memory they hold per environment.

Each measurement runs in a fresh interpreter (this script re-run with a hidden flag), so that
nothing built by an earlier one (shared tables, page cache aside) is reused: the interpreter
imports the peer's modules, reads its RSS, then times

    construct      the vector env, with the throughput benchmark's pipeline settings
    first reset    reset() right after construction
    seeded reset   reset(seed=...) (ale-py and atari_vec seed every env, which reloads the
                   ROM in ale-py); EnvPool takes its seed at construction, so its reset()

and reports (RSS after those calls - RSS after the imports) / num_envs as MiB per env.
Peers are interleaved: each round measures every peer once, in an order rotated from one
round to the next; the median over rounds is reported, with atari_vec's time divided into
each peer's (how many times faster atari_vec is).

Usage:
    python benchmarks/startup.py                          # Breakout, 64 envs, 3 rounds
    python benchmarks/startup.py --num-envs 16 256 --rounds 5 --out docs/benchmark-startup.txt
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from throughput import (ALE_KWARGS, ENVPOOL_KWARGS, _status_kib, camel_name, cpu_count,
                        rom_id, run_probe_script)

PEERS = ("atari_vec", "ale_py", "envpool")
FIELDS = ("construct_s", "first_reset_s", "seeded_reset_s", "mib_per_env")
SEED = 123


def _rss_mib() -> float:
    return _status_kib("self", "VmRSS") / 1024


def probe(peer: str, game: str, num_envs: int) -> dict[str, float]:
    """In a fresh interpreter: time one peer's start-up and read its memory."""
    threads = min(num_envs, cpu_count())
    if peer == "envpool":
        import envpool

        def make() -> Any:
            return envpool.make_gymnasium(f"{camel_name(game)}-v5", num_envs=num_envs,
                                          num_threads=threads, seed=SEED, **ENVPOOL_KWARGS)

        def seeded_reset(env: Any) -> None:
            env.reset()
    else:
        if peer == "atari_vec":
            from atari_vec import AtariVectorEnv

            threads = 0  # its own default (the calling thread runs envs too)
        else:
            from ale_py.vector_env import AtariVectorEnv

        def make() -> Any:
            return AtariVectorEnv(rom_id(game), num_envs, num_threads=threads, **ALE_KWARGS)

        def seeded_reset(env: Any) -> None:
            env.reset(seed=SEED)

    baseline = _rss_mib()
    t0 = time.perf_counter()
    env = make()
    t1 = time.perf_counter()
    env.reset()
    t2 = time.perf_counter()
    seeded_reset(env)
    t3 = time.perf_counter()
    mib = (_rss_mib() - baseline) / num_envs
    env.close()
    return {"construct_s": t1 - t0, "first_reset_s": t2 - t1, "seeded_reset_s": t3 - t2,
            "mib_per_env": mib}


def run_probe(peer: str, game: str, num_envs: int) -> dict[str, Any]:
    """``probe`` in a new interpreter; {"error": ...} if it failed."""
    return run_probe_script(Path(__file__), json.dumps([peer, game, num_envs]))


def available(peers: Sequence[str]) -> list[str]:
    """The peers whose package imports (EnvPool is optional)."""
    out = []
    for peer in peers:
        module = {"atari_vec": "atari_vec", "ale_py": "ale_py", "envpool": "envpool"}[peer]
        try:
            __import__(module)
        except ImportError as exc:
            print(f"note: skipping {peer} ({type(exc).__name__}: {exc})", flush=True)
            continue
        out.append(peer)
    return out


def measure(game: str, num_envs: int, rounds: int, peers: Sequence[str],
            log=print) -> dict[str, dict[str, Any]]:
    """Interleaved rounds of every peer; per peer the medians of FIELDS (or an error)."""
    runs: dict[str, list[dict[str, float]]] = {p: [] for p in peers}
    errors: dict[str, str] = {}
    for rnd in range(rounds):
        shift = rnd % len(peers)
        for peer in list(peers[shift:]) + list(peers[:shift]):
            if peer in errors:
                continue
            r = run_probe(peer, game, num_envs)
            if "error" in r:
                errors[peer] = r["error"]
                log(f"[startup round {rnd + 1}/{rounds}] {game} n={num_envs} {peer:<10} "
                    f"FAILED: {r['error']}")
                continue
            runs[peer].append(r)
            log(f"[startup round {rnd + 1}/{rounds}] {game} n={num_envs} {peer:<10} "
                f"construct {r['construct_s']:.3f} s, first reset {r['first_reset_s']:.3f} s, "
                f"seeded reset {r['seeded_reset_s']:.3f} s, {r['mib_per_env']:.2f} MiB/env")
    out: dict[str, dict[str, Any]] = {}
    for peer in peers:
        if peer in errors:
            out[peer] = {"error": errors[peer]}
        elif runs[peer]:
            out[peer] = {f: statistics.median(r[f] for r in runs[peer]) for f in FIELDS}
            out[peer]["rounds"] = len(runs[peer])
            out[peer]["runs"] = runs[peer]
    return out


def table(game: str, num_envs: int, result: dict[str, dict[str, Any]]) -> str:
    """The start-up table: medians, and atari_vec's speed-up over each peer in brackets."""
    ours = result.get("atari_vec", {})
    lines = [f"start-up, {game}, num_envs={num_envs} (median over rounds, each in a fresh "
             "process; (x) = peer's time / atari_vec's)",
             f"{'peer':<11}{'construct':>18}{'first reset':>18}{'seeded reset':>18}"
             f"{'MiB/env':>10}"]
    lines.append("-" * len(lines[-1]))
    for peer, r in result.items():
        if "error" in r:
            lines.append(f"{peer:<11}FAILED: {r['error']}")
            continue
        cells = []
        for f in FIELDS[:3]:
            ratio = r[f] / ours[f] if peer != "atari_vec" and f in ours and ours[f] > 0 else None
            cells.append(f"{r[f]:.3f} s" + (f" ({ratio:.1f}x)" if ratio else ""))
        note = " (reset(): seeded at construction)" if peer == "envpool" else ""
        lines.append(f"{peer:<11}{cells[0]:>18}{cells[1]:>18}{cells[2]:>18}"
                     f"{r['mib_per_env']:>10.2f}{note}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default="breakout")
    p.add_argument("--num-envs", type=int, nargs="+", default=[64])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS))
    p.add_argument("--out", type=Path, help="also write the tables (and the command) here")
    p.add_argument("--_probe", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._probe is not None:
        peer, game, n = json.loads(args._probe)
        print(json.dumps(probe(peer, game, n)), flush=True)
        return 0
    if args.rounds < 1 or any(n < 1 for n in args.num_envs):
        p.error("--rounds and --num-envs must be positive")
    peers = available(args.peers)
    tables = []
    for n in args.num_envs:
        tables.append(table(rom_id(args.game), n, measure(rom_id(args.game), n, args.rounds,
                                                          peers)))
        print("\n" + tables[-1] + "\n", flush=True)
    if args.out:
        command = "python benchmarks/startup.py " + " ".join(argv if argv is not None
                                                             else sys.argv[1:])
        args.out.write_text(f"$ {command}\n(CPUs: {cpu_count()})\n\n" + "\n\n".join(tables)
                            + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
