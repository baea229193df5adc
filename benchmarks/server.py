"""Server benchmark: our OpenEnv-compatible server against OpenEnv's reference Atari server.

Both servers speak OpenEnv's WebSocket protocol (``/ws``: ``{"type": "reset"}``, ``{"type":
"step", "data": {"action_id": k}}``, one observation reply per request). Each is started
here as a subprocess, once per observation type, with the same game settings (``ATARI_GAME``,
``ATARI_OBS_TYPE``; frameskip 4, no sticky actions, minimal action set: both servers'
defaults):

    ours       python -m atari_vec serve --port P --max-concurrent-envs 64 --obs-type T
               (MAX_CONCURRENT_ENVS=64; the atari_vec installed in this interpreter)
    reference  OpenEnv 0.10.0's Atari server (envs/atari_env of the OpenEnv repository) under
               uvicorn, in its own venv: python -m uvicorn atari_env.server.app:app. It serves
               ONE WebSocket session; a second connection gets a CAPACITY_REACHED error frame.

Cells: for 1, 8, 32 and 64 concurrent sessions, every session connects, resets and takes two
warm-up steps, then all start together and step with random legal actions for a fixed time
(--seconds), one request in flight per session, resetting when an episode ends (resets are
not counted as steps and not timed as steps). A cell reports the aggregate steps/s over all
sessions and the p50 and p99 round-trip latency of one step (send to reply received).
On the reference, N > 1 sessions means N connections of which all but one are refused: the
table shows how many were refused (CAPACITY_REACHED) and the throughput of the one served,
and ratios for N > 1 are taken against the reference's single-session figure.

Clients: separate processes (this script re-run with a hidden flag, the ``websockets``
package's asyncio client, all of a process's sessions in one event loop). A cell of N
sessions uses min(N, --client-procs) processes, the sessions spread evenly. The client offers
permessage-deflate or not (--compression, both by default): OpenEnv's own ``EnvClient``
offers it (the ``websockets`` default) and both servers accept it (uvicorn's default), and for
RGB the server's zlib compression of a ~345 kB JSON reply costs about as much as the rest of
the step (measured: ours 277 steps/s with it, 538 without, one session).
A client checks every reply (an observation frame, with ``reward`` and ``done`` read from its
tail) and decodes one reply in --sample-every in full (screen length, legal actions, reward
and done), since decoding a 100,800-number RGB screen costs about as much CPU as the server's
step and the client shares the machine's cores with the server (``--decode full`` decodes
every reply, as a real client would). The table reports the CPU the server and the clients
used during each cell, in cores.

Rounds interleave the servers: each round measures every (sessions, compression) cell on both
servers, in an order shuffled per round; the table gives the median over rounds and the
spread (min-max), and each target ratio is also given "paired" (the median of the per-round
ratios).

Targets: one session RGB ours / reference >= 3x, one session RAM ours / reference >= 2x, 32
sessions RAM aggregate ours / reference single session >= 4x.

    python benchmarks/server.py                           # 3 rounds of 3 s cells, RGB and RAM
    python benchmarks/server.py --quick                   # 1 round of 1 s cells
    python benchmarks/server.py --out docs/benchmark-server.txt
    python benchmarks/server.py --setup                   # only make the reference's venv/source

The reference's venv (--openenv-venv, default /work/venvs/openenv) is created when missing
(``python -m venv``, then ``pip install openenv==0.10.0 ale-py==0.12.1``); its source
(--openenv-src, an OpenEnv checkout holding envs/atari_env, default /work/venvs/openenv_src)
is cloned from GitHub when missing (``git clone --depth 1``). Nothing of OpenEnv is copied
into this repository.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import filecmp
import json
import math
import os
import platform
import queue
import random
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_VENV = Path("/work/venvs/openenv")
DEFAULT_SRC = Path("/work/venvs/openenv_src")
OPENENV_REPO = "https://github.com/huggingface/OpenEnv"
OPENENV_PINS = ["openenv==0.10.0", "ale-py==0.12.1"]
OBS_LEN = {"rgb": 210 * 160 * 3, "grayscale": 210 * 160, "ram": 128}
SERVERS = ("ours", "reference")
MAX_SESSIONS = 64
TARGETS = (  # (label, obs, sessions of ours, target)
    ("one session RGB, ours / reference", "rgb", 1, 3.0),
    ("one session RAM, ours / reference", "ram", 1, 2.0),
    ("32 sessions RAM aggregate, ours / reference single session", "ram", 32, 4.0),
)


# == the client (a separate process) ===========================================================

_TAIL = re.compile(r'"reward":(null|-?[0-9][0-9.eE+-]*),"done":(true|false)')


def _client_main(config_json: str) -> int:
    """A client process: opens its sessions, says ready, waits for "go <t0>", steps until
    t0 + seconds, closes its sessions and prints one JSON line of results."""
    import websockets
    from websockets.asyncio.client import connect

    try:
        import orjson

        loads = orjson.loads
    except ImportError:  # pragma: no cover - orjson comes with the server extra
        loads = json.loads

    cfg = json.loads(config_json)
    compression = None if cfg["compression"] == "none" else "deflate"
    obs_len = cfg["obs_len"]
    every = 1 if cfg["decode"] == "full" else cfg["sample_every"]
    timeout = cfg["reply_timeout"]
    errors: list[str] = []

    def note(msg: str) -> None:
        if len(errors) < 20:
            errors.append(msg)

    def parse(text: Any, full: bool) -> tuple[bool, int]:
        """(done, legal action count or 0) of an observation reply; raises on anything else."""
        if isinstance(text, bytes):
            text = text.decode()
        if not text.startswith('{"type":"observation"'):
            raise ValueError("not an observation: " + text[:300])
        if full:
            msg = loads(text)
            data = msg["data"]
            obs = data["observation"]
            if len(obs["screen"]) != obs_len:
                raise ValueError(f"screen of {len(obs['screen'])} values, expected {obs_len}")
            if not isinstance(data["done"], bool) or not isinstance(data["reward"], (int, float)):
                raise ValueError(f"bad reward/done: {data['reward']!r} {data['done']!r}")
            return data["done"], len(obs["legal_actions"])
        m = _TAIL.search(text, text.rfind('"reward":'))
        if m is None:
            raise ValueError("no reward/done in the reply's tail: " + text[-300:])
        return m.group(2) == "true", 0

    class Sess:
        def __init__(self, index: int):
            self.index = index
            self.ws: Any = None
            self.refused = False
            self.n_actions = 0
            self.steps = 0
            self.resets = 0
            self.lat: list[float] = []
            self.last = 0.0
            self.rng = random.Random(cfg["seed"] * 1000 + index)
            self.failed = False
            self.sent = 0.0  # when the request now out was sent (0: none)

        async def request(self, payload: str, full: bool) -> tuple[bool, int]:
            return parse(await self.round_trip(payload), full)

        async def round_trip(self, payload: str) -> Any:
            # No wait_for per message (it costs the client a task per step, on the cores the
            # servers use): the watchdog in main() closes a session that stalls.
            self.sent = time.monotonic()
            await self.ws.send(payload)
            reply = await self.ws.recv()
            self.sent = 0.0
            return reply

        async def open(self) -> None:
            try:
                self.ws = await connect(cfg["url"], max_size=None, compression=compression,
                                        open_timeout=timeout, ping_interval=None, proxy=None)
                try:
                    await self.ws.send('{"type":"reset","data":{}}')
                except websockets.ConnectionClosed:
                    pass  # refused at connect: its error frame is still there to read
                first = await asyncio.wait_for(self.ws.recv(), timeout)
                if isinstance(first, str) and first.startswith('{"type":"error"'):
                    if '"CAPACITY_REACHED"' in first:
                        self.refused = True
                    else:
                        note(f"session {self.index} reset: {first[:300]}")
                        self.failed = True
                    await self.ws.close()
                    return
                _, self.n_actions = parse(first, True)
                for _ in range(2):  # warm-up
                    done, _ = await self.step(full=False, timed=False)
                    if done:
                        await self.request('{"type":"reset","data":{}}', False)
            except websockets.ConnectionClosed as e:
                if self.ws is not None and not self.refused:
                    note(f"session {self.index} closed while opening: {e!r}")
                self.failed = True
            except Exception as e:  # noqa: BLE001 - any failure is reported, never hidden
                note(f"session {self.index} open: {type(e).__name__}: {e}")
                self.failed = True

        async def step(self, full: bool, timed: bool = True) -> tuple[bool, int]:
            payload = f'{{"type":"step","data":{{"action_id":{self.rng.randrange(self.n_actions)}}}}}'
            t = time.perf_counter()
            reply = await self.round_trip(payload)
            if timed:  # the round trip only: the client's decoding is not the server's latency
                self.lat.append((time.perf_counter() - t) * 1e3)
                self.last = time.monotonic()
            return parse(reply, full)

        async def run(self, t_end: float) -> None:
            try:
                while time.monotonic() < t_end:
                    done, _ = await self.step(full=(self.steps % every == 0))
                    self.steps += 1
                    if done:
                        await self.request('{"type":"reset","data":{}}', True)
                        self.resets += 1
            except Exception as e:  # noqa: BLE001
                if not self.failed:  # else the watchdog closed it and said why
                    note(f"session {self.index} step {self.steps}: {type(e).__name__}: {e}")
                self.failed = True

        async def close(self) -> None:
            if self.ws is None or self.refused:
                return
            try:
                await self.ws.send('{"type":"close"}')
                # The servers end the session, then close the socket: wait for that.
                await asyncio.wait_for(self.ws.wait_closed(), timeout)
            except Exception:  # noqa: BLE001, S110 - already closed or broken: nothing to free
                pass
            finally:
                await self.ws.close()

    async def main() -> dict[str, Any]:
        sessions = [Sess(cfg["first_index"] + i) for i in range(cfg["sessions"])]
        await asyncio.gather(*(s.open() for s in sessions))
        live = [s for s in sessions if s.ws is not None and not s.refused and not s.failed]
        print(json.dumps({"ready": len(live)}), flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        t0 = float(line.split()[1])
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        c0 = time.process_time()

        async def watchdog() -> None:
            while True:
                await asyncio.sleep(0.25)
                now = time.monotonic()
                for s in live:
                    if s.sent and now - s.sent > timeout and not s.failed:
                        note(f"session {s.index}: no reply within {timeout} s (step {s.steps})")
                        s.failed = True
                        await s.ws.close()  # its pending recv raises: the session ends

        guard = asyncio.create_task(watchdog())
        await asyncio.gather(*(s.run(t0 + cfg["seconds"]) for s in live))
        guard.cancel()
        cpu = time.process_time() - c0
        last = max((s.last for s in live), default=t0)
        await asyncio.gather(*(s.close() for s in sessions))
        return {
            "accepted": len(live), "refused": sum(s.refused for s in sessions),
            "failed": sum(s.failed for s in sessions), "steps": sum(s.steps for s in live),
            "resets": sum(s.resets for s in live), "t_end": last, "t0": t0, "cpu": cpu,
            "lat": [round(x, 4) for s in live for x in s.lat], "errors": errors,
        }

    print(json.dumps(asyncio.run(main())), flush=True)
    return 0


# == the servers =================================================================================


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # our own server, on localhost
        return r.read()


class Server:
    """One server subprocess on a free port of 127.0.0.1."""

    def __init__(self, kind: str, obs_type: str, args: argparse.Namespace, logdir: Path):
        self.kind = kind
        self.port = free_port()
        env = dict(os.environ, ATARI_GAME=args.game, ATARI_OBS_TYPE=obs_type)
        if kind == "ours":
            env["MAX_CONCURRENT_ENVS"] = str(MAX_SESSIONS)
            cmd = [sys.executable, "-m", "atari_vec", "serve", "--port", str(self.port),
                   "--max-concurrent-envs", str(MAX_SESSIONS), "--obs-type", obs_type]
            cwd = logdir
        else:
            envs_dir = args.openenv_envs
            env["PYTHONPATH"] = str(envs_dir)
            cmd = [str(args.openenv_python), "-m", "uvicorn", "atari_env.server.app:app",
                   "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
            cwd = envs_dir
        self.cmd = cmd
        self.log = logdir / f"{kind}-{obs_type}.log"
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.http = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited ({self.proc.returncode}):\n"
                                   + self.log_tail())
            try:
                if json.loads(http_get(self.http + "/health")).get("status") == "healthy":
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} server not healthy after {timeout} s:\n" + self.log_tail())

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads) so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def quiesce(self, timeout: float = 30.0) -> None:
        """Waits until no session is open (ours lists them; the reference ends its session
        before closing the socket, which the clients wait for), then lets slots recycle."""
        if self.kind == "ours":
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    if json.loads(http_get(self.http + "/web/api/sessions")) == []:
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.05)
            else:
                raise RuntimeError(f"ours still lists sessions {timeout} s after the clients left")
        time.sleep(0.3)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        self._log.flush()
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self._log.close()


# == one cell ======================================================================================


def _reader(stream: Any, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


def measure(server: Server, n: int, compression: str, obs_type: str, seed: int,
            args: argparse.Namespace, logdir: Path) -> dict[str, Any]:
    """One cell: n sessions on `server` for args.seconds; the merged client results."""
    procs = min(n, args.client_procs)
    counts = [n // procs + (i < n % procs) for i in range(procs)]
    clients = []
    first = 0
    try:
        for i, count in enumerate(counts):
            cfg = {"url": server.url, "sessions": count, "first_index": first,
                   "seconds": args.seconds, "seed": seed, "compression": compression,
                   "obs_len": OBS_LEN[obs_type], "decode": args.decode,
                   "sample_every": args.sample_every, "reply_timeout": args.reply_timeout}
            first += count
            err = open(logdir / f"client-{i}.err", "w+b")
            p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_client",
                                  json.dumps(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=err, text=True)
            q: queue.Queue = queue.Queue()
            threading.Thread(target=_reader, args=(p.stdout, q), daemon=True).start()
            clients.append((p, q, err))

        def line_of(p: Any, q: queue.Queue, err: Any, wait: float) -> dict[str, Any]:
            try:
                line = q.get(timeout=wait)
            except queue.Empty:
                line = None
            if line is None:
                err.seek(0)
                raise RuntimeError(f"client {p.pid} gave no answer within {wait:.0f} s "
                                   f"(server alive: {server.alive()}):\n"
                                   + err.read().decode(errors="replace")[-3000:])
            return json.loads(line)

        try:
            ready = [line_of(p, q, e, 120 + n)["ready"] for p, q, e in clients]
        except RuntimeError as e:  # reported as the cell's result; the run goes on
            return failed_cell(n, procs, str(e))
        t0 = time.monotonic() + 0.1
        for p, _, _ in clients:
            p.stdin.write(f"go {t0!r}\n")
            p.stdin.flush()
        time.sleep(max(0.0, t0 - time.monotonic()))
        s0 = server.cpu_seconds()
        time.sleep(args.seconds)
        s1 = server.cpu_seconds()
        try:
            results = [line_of(p, q, e, args.seconds + 2 * args.reply_timeout + 30)
                       for p, q, e in clients]
        except RuntimeError as e:
            return failed_cell(n, procs, str(e))
        for p, _, _ in clients:
            p.wait(30)
    finally:
        for p, _, err in clients:
            if p.poll() is None:
                p.kill()
                p.wait()
            err.close()
    lat = sorted(x for r in results for x in r["lat"])
    steps = sum(r["steps"] for r in results)
    t_end = max(r["t_end"] for r in results)
    elapsed = max(t_end - t0, 1e-9) if steps else args.seconds
    return {
        "sessions": n, "client_procs": procs, "ready": sum(ready),
        "accepted": sum(r["accepted"] for r in results),
        "refused": sum(r["refused"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "steps": steps, "resets": sum(r["resets"] for r in results), "elapsed": elapsed,
        "steps_per_s": steps / elapsed,
        "p50": percentile(lat, 50), "p99": percentile(lat, 99),
        "server_cpu": (s1 - s0) / args.seconds,
        "client_cpu": sum(r["cpu"] for r in results) / args.seconds,
        "errors": [e for r in results for e in r["errors"]],
    }


def failed_cell(n: int, procs: int, error: str) -> dict[str, Any]:
    nan = float("nan")
    return {"sessions": n, "client_procs": procs, "ready": 0, "accepted": 0, "refused": 0,
            "failed": n, "steps": 0, "resets": 0, "elapsed": nan, "steps_per_s": 0.0,
            "p50": nan, "p99": nan, "server_cpu": nan, "client_cpu": nan, "errors": [error]}


def percentile(xs: list[float], q: float) -> float:
    """The q-th percentile of sorted xs (nearest rank), NaN when empty."""
    if not xs:
        return float("nan")
    return xs[max(0, min(len(xs) - 1, math.ceil(q / 100 * len(xs)) - 1))]


# == the run =======================================================================================


def run(args: argparse.Namespace, say: Any) -> dict[tuple, list[dict[str, Any]]]:
    """Every cell, every round: {(obs, compression, sessions, server): [result per round]}."""
    results: dict[tuple, list[dict[str, Any]]] = {}
    total = len(args.obs_types) * args.rounds * len(args.sessions) * len(args.compression) * 2
    logdir = Path(tempfile.mkdtemp(prefix="atari_vec_server_bench_"))
    ok = False
    try:
        for obs in args.obs_types:
            run_obs(obs, args, logdir, results, say, total)
        ok = True
    finally:
        if ok:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            say(f"server and client logs kept in {logdir}")
    return results


def run_obs(obs: str, args: argparse.Namespace, logdir: Path,
            results: dict[tuple, list[dict[str, Any]]], say: Any, total: int) -> None:
    """Both servers on one observation type, every round of every cell."""
    done = sum(len(v) for v in results.values())
    servers = {}
    try:
        for kind in SERVERS:
            servers[kind] = Server(kind, obs, args, logdir)
        for s in servers.values():
            s.wait_ready()
        say(f"[{obs}] servers up: ours {servers['ours'].url} (pid {servers['ours'].proc.pid}), "
            f"reference {servers['reference'].url} (pid {servers['reference'].proc.pid})")
        for r in range(args.rounds):
            cells = [(n, c, k) for n in args.sessions for c in args.compression for k in SERVERS]
            random.Random(args.seed * 7919 + r).shuffle(cells)
            for n, comp, kind in cells:
                server = servers[kind]
                server.quiesce()
                res = measure(server, n, comp, obs, args.seed + r, args, logdir)
                results.setdefault((obs, comp, n, kind), []).append(res)
                done += 1
                say(f"[{obs} round {r + 1}/{args.rounds}] ({done}/{total}) {kind:<9} "
                    f"N={n:<2} {comp:<7} {res['steps_per_s']:8,.0f} steps/s  "
                    f"p50 {res['p50']:7.2f} ms  p99 {res['p99']:7.2f} ms  "
                    f"served {res['accepted']}/{n} refused {res['refused']}  "
                    f"server CPU {res['server_cpu']:.2f} client CPU {res['client_cpu']:.2f}  "
                    f"({res['steps']} steps, {res['resets']} resets, {res['elapsed']:.2f} s, "
                    f"{res['client_procs']} client procs)")
                expected = n if kind == "ours" else 1
                if res["accepted"] != expected or res["failed"] or res["errors"]:
                    say(f"    ANOMALY: {kind} served {res['accepted']} of {n} (expected "
                        f"{expected}), refused {res['refused']}, failed {res['failed']}; "
                        f"errors: {res['errors'][:5]}")
                if not server.alive():
                    raise RuntimeError(f"{kind} server died:\n" + server.log_tail())
    finally:
        for s in servers.values():
            s.stop()


def med(rs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rs)


def report(results: dict[tuple, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    lines = [
        ("| obs | compression | sessions | server | served | refused | steps/s (median) | "
         "spread (min-max) | p50 ms | p99 ms | server CPU | client CPU | "
         "ours / reference 1 session |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for obs in args.obs_types:
        for comp in args.compression:
            ref1 = results.get((obs, comp, 1, "reference"))
            ref1_med = med(ref1, "steps_per_s") if ref1 else float("nan")
            for n in args.sessions:
                for kind in SERVERS:
                    rs = results[(obs, comp, n, kind)]
                    sps = [r["steps_per_s"] for r in rs]
                    served = f"{min(r['accepted'] for r in rs)}/{n}"
                    if min(r["accepted"] for r in rs) != max(r["accepted"] for r in rs):
                        served = f"{min(r['accepted'] for r in rs)}-{max(r['accepted'] for r in rs)}/{n}"
                    refused = max(r["refused"] for r in rs)
                    ratio = f"{statistics.median(sps) / ref1_med:.2f}" if kind == "ours" else ""
                    lines.append(
                        f"| {obs} | {comp} | {n} | {kind} | {served} | {refused} | "
                        f"{statistics.median(sps):,.0f} | {min(sps):,.0f}-{max(sps):,.0f} | "
                        f"{med(rs, 'p50'):.2f} | {med(rs, 'p99'):.2f} | "
                        f"{med(rs, 'server_cpu'):.2f} | {med(rs, 'client_cpu'):.2f} | {ratio} |")
    lines.append("")
    lines.append("served: sessions that got a reset reply and stepped, of those opened (the worst "
                 "round); refused: connections refused with CAPACITY_REACHED (the worst round). "
                 "p50/p99: one step's round trip, median over rounds. CPU: cores used during the cell (server: the "
                 "server process, all threads; client: all client processes). Ratios: median "
                 "steps/s of ours / median of the reference with ONE session (it serves no more).")
    lines.append("")
    lines.append("Targets (median ratio; paired = median over rounds of the same round's ratio):")
    for label, obs, n, target in TARGETS:
        for comp in args.compression:
            ours = results.get((obs, comp, n, "ours"))
            ref = results.get((obs, comp, 1, "reference"))
            if not ours or not ref:
                lines.append(f"  {label} [{comp}]: not measured")
                continue
            ratio = med(ours, "steps_per_s") / med(ref, "steps_per_s")
            paired = statistics.median(o["steps_per_s"] / f["steps_per_s"] if f["steps_per_s"]
                                       else float("nan") for o, f in zip(ours, ref))
            verdict = "met" if ratio >= target else "MISSED"
            lines.append(f"  {label} [{comp}]: {ratio:.2f}x (paired {paired:.2f}x), "
                         f"target >= {target:g}x: {verdict}")
    return "\n".join(lines)


# == setup ===========================================================================================


def _run(cmd: list[str], say: Any, **kw: Any) -> None:
    say("$ " + shlex.join(cmd))
    subprocess.run(cmd, check=True, **kw)


def ensure_reference(args: argparse.Namespace, say: Any) -> None:
    """The reference's venv and source: found, else made (venv + pip, git clone)."""
    venv = Path(args.openenv_venv)
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import openenv, ale_py, uvicorn"]
    if not (py.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0):
        if not py.exists():
            _run([sys.executable, "-m", "venv", str(venv)], say)
        _run([str(py), "-m", "pip", "install", *OPENENV_PINS], say)
        subprocess.run(probe, check=True)
    args.openenv_python = py

    src = Path(args.openenv_src) if args.openenv_src else DEFAULT_SRC
    if args.openenv_src is None and not src.exists():
        try:
            _run(["git", "clone", "--depth", "1", OPENENV_REPO, str(src)], say)
        except (subprocess.CalledProcessError, OSError) as e:
            raise SystemExit(f"could not clone {OPENENV_REPO} ({e}); pass --openenv-src DIR, "
                             "an existing OpenEnv checkout (holding envs/atari_env)") from None
    for envs in (src / "envs", src):  # the checkout, or its envs/ folder
        if (envs / "atari_env" / "server" / "app.py").exists():
            args.openenv_envs = envs.resolve()
            break
    else:
        raise SystemExit(f"{src} holds no envs/atari_env/server/app.py: pass --openenv-src DIR, "
                         "an OpenEnv checkout")


def describe(args: argparse.Namespace) -> list[str]:
    """Versions and the machine, for the report's header."""
    import websockets

    import atari_vec

    def venv_info() -> str:
        code = ("from importlib.metadata import version as v; import importlib.util as u; "
                "print(v('openenv'), v('ale-py'), v('uvicorn'), v('websockets'), "
                "v('uvloop') if u.find_spec('uvloop') else 'none')")
        out = subprocess.run([str(args.openenv_python), "-c", code], capture_output=True,
                             text=True, check=False)
        o = out.stdout.split()
        return (f"openenv {o[0]}, ale-py {o[1]}, uvicorn {o[2]}, websockets {o[3]}, uvloop {o[4]}"
                if len(o) == 5 else out.stderr.strip()[-200:])

    def git(*a: str, cwd: Path) -> str:
        out = subprocess.run(["git", *a], cwd=cwd, capture_output=True, text=True, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    repo = Path(__file__).resolve().parent.parent
    commit = git("rev-parse", "--short", "HEAD", cwd=repo) or "unknown"
    changed = git("status", "--porcelain", "--", "python", "cpp", "benchmarks", cwd=repo).splitlines()
    dirty = f" (uncommitted: {', '.join(c.strip() for c in changed[:6])})" if changed else ""
    installed = Path(atari_vec.__file__).parent / "server"
    same = all(filecmp.cmp(f, installed / f.name, shallow=False)
               for f in (repo / "python" / "atari_vec" / "server").glob("*.py")
               if (installed / f.name).exists())
    same_text = "the same as" if same else "DIFFERENT from"
    src_commit = git("rev-parse", "--short", "HEAD", cwd=args.openenv_envs) or "not a git checkout"
    try:
        import uvicorn

        uv = uvicorn.__version__
    except ImportError:
        uv = "?"
    try:
        import uvloop

        uv += f", uvloop {uvloop.__version__}"
    except ImportError:
        uv += ", uvloop none"
    cpus = len(os.sched_getaffinity(0))
    replies = ("decoded in full (orjson)" if args.decode == "full" else
               f"checked from their tail, 1 in {args.sample_every} decoded in full (orjson)")
    return [
        f"$ {shlex.join(['python', 'benchmarks/server.py', *sys.argv[1:]])}",
        (f"commit {commit}{dirty}, {dt.datetime.now().isoformat(timespec='seconds')}, "
         f"{platform.node()}, {cpus} CPUs, load average {os.getloadavg()[0]:.2f} at start"),
        (f"ours: atari_vec {atari_vec.__version__} installed in {installed.parent} (its server "
         f"code {same_text} this checkout's), python {platform.python_version()}, uvicorn {uv}; "
         "sessions on its own WebSocket protocol (atari_vec/server/fastws.py)"),
        (f"reference: OpenEnv envs/atari_env from {args.openenv_envs} ({src_commit}); "
         f"venv {args.openenv_venv}: {venv_info()}"),
        (f"game {args.game}, obs {' '.join(args.obs_types)}, sessions "
         f"{' '.join(map(str, args.sessions))}, {args.rounds} interleaved rounds of "
         f"{args.seconds:g} s per cell, compression {' '.join(args.compression)}"),
        (f"client: separate processes (python {platform.python_version()}, websockets "
         f"{websockets.__version__} asyncio client, one event loop per process, "
         f"min(N, {args.client_procs}) processes per cell), one request in flight per session, "
         f"random actions; replies {replies}"),
    ]


# == main ============================================================================================


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--game", default="pong")
    p.add_argument("--obs-types", nargs="+", default=["rgb", "ram"], choices=sorted(OBS_LEN))
    p.add_argument("--sessions", nargs="+", type=int, default=[1, 8, 32, 64],
                   help=f"concurrent sessions per cell (at most {MAX_SESSIONS}; 1 is needed "
                        "for the ratios)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0, help="stepping time per cell")
    p.add_argument("--compression", nargs="+", default=["deflate", "none"],
                   choices=["deflate", "none"],
                   help="permessage-deflate offered by the client or not (deflate: as OpenEnv's "
                        "EnvClient, which uses the websockets default); each is a cell")
    p.add_argument("--client-procs", type=int, default=2,
                   help="client processes per cell (at most one per session)")
    p.add_argument("--decode", choices=["check", "full"], default="check",
                   help="check: every reply's type, reward and done, and 1 in --sample-every "
                        "decoded in full; full: every reply decoded in full")
    p.add_argument("--sample-every", type=int, default=50)
    p.add_argument("--reply-timeout", type=float, default=30.0,
                   help="seconds a reply may take before the session counts as hung")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="1 round of 1 s cells (a smoke test)")
    p.add_argument("--out", help="also write the report (header, progress, table) to this file")
    p.add_argument("--json", help="write every raw measurement to this JSON file")
    p.add_argument("--openenv-venv", default=str(DEFAULT_VENV),
                   help="the reference's venv (created with openenv==0.10.0 ale-py==0.12.1 "
                        "when missing)")
    p.add_argument("--openenv-src", default=None,
                   help=f"an OpenEnv checkout holding envs/atari_env (default {DEFAULT_SRC}, "
                        f"cloned from {OPENENV_REPO} when missing)")
    p.add_argument("--setup", action="store_true",
                   help="only make sure the reference's venv and source exist, then exit")
    p.add_argument("--_client", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 1.0
    if any(not 1 <= n <= MAX_SESSIONS for n in args.sessions):
        p.error(f"--sessions must be in [1, {MAX_SESSIONS}]")
    if args.client_procs < 1 or args.sample_every < 1 or args.rounds < 1 or args.seconds <= 0:
        p.error("--client-procs, --sample-every and --rounds must be >= 1, --seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._client is not None:
        return _client_main(args._client)
    out: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        out.append(line)

    ensure_reference(args, say)
    if args.setup:
        say(f"reference ready: {args.openenv_python}, {args.openenv_envs}")
        return 0
    for line in describe(args):
        say(line)
    results = run(args, say)
    say(f"load average {os.getloadavg()[0]:.2f} at the end (this benchmark's servers and "
        "clients included)")
    say("")
    say(report(results, args))
    if args.out:
        Path(args.out).write_text("\n".join(out) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"obs": k[0], "compression": k[1], "sessions": k[2], "server": k[3], "rounds": v}
             for k, v in results.items()], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
