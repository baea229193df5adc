"""Starting and stopping the server in tests: in this process (uvicorn on a thread) or as a
subprocess, always on 127.0.0.1 and a free port, always stopped."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import uvicorn

from atari_vec.server import ServerConfig, create_app, uvicorn_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TRANSPORTS = ("native", "asgi")


@contextlib.contextmanager
def serve(transport: str = "native", **config) -> Iterator[str]:
    """A server in this process, run as ``atari-vec-serve`` runs it; yields its base URL
    ``http://127.0.0.1:<port>``. transport="asgi": sessions on the app's ASGI route under
    uvicorn's own WebSocket stack (what any other ASGI server would run), not fastws.py."""
    assert transport in TRANSPORTS, transport
    config.setdefault("port", free_port())
    cfg = ServerConfig(host="127.0.0.1", **config)
    app = create_app(cfg)
    settings = uvicorn_config(app, cfg)
    if transport == "asgi":
        settings.ws = "auto"
    server = uvicorn.Server(settings)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{cfg.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "the server did not stop"


@contextlib.contextmanager
def serve_process(command: list[str], env: dict[str, str] | None = None,
                  port: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """The server as a subprocess running `command` (a leading "python" is this interpreter);
    yields (URL, process). ATARI_VEC_PORT is set to a free port, ATARI_VEC_HOST to loopback."""
    port = port or free_port()
    environ = {**os.environ, **(env or {}), "ATARI_VEC_PORT": str(port),
               "ATARI_VEC_HOST": "127.0.0.1"}
    if command[0] == "python":
        command = [sys.executable, *command[1:]]
    proc = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {proc.stdout.read()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
