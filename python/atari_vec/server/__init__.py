"""An OpenEnv-compatible Atari server on the native pool (``pip install "atari_vec[server]"``).

``python -m atari_vec serve`` (or ``atari-vec-serve``) serves one game to many sessions: each
WebSocket connection on ``/ws`` gets its own env in one pool, and the steps of concurrent
sessions run in parallel on the pool's worker threads. See ``docs/server.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .config import ServerConfig, parse_args

__all__ = ["ServerConfig", "create_app", "main", "parse_args", "uvicorn_config"]


def create_app(config: ServerConfig | None = None):
    """The ASGI app for `config` (default: from the environment variables)."""
    from .app import create_app as _create_app

    return _create_app(config)


def uvicorn_config(app, config: ServerConfig):
    """How ``atari-vec-serve`` runs `app` (from `create_app(config)`) under uvicorn: sessions on
    the lean WebSocket protocol of fastws.py, or on the ASGI route when WebSocket compression
    is asked for (permessage-deflate is uvicorn's); uvloop when it is installed."""
    import uvicorn

    from .fastws import protocol_class

    ws = "auto" if config.ws_compression else protocol_class(app.pool)
    return uvicorn.Config(app, host=config.host, port=config.port, ws=ws,
                          ws_max_size=config.max_message_bytes,
                          ws_per_message_deflate=config.ws_compression, log_level="warning",
                          lifespan="on")


def main(argv: Sequence[str] | None = None, prog: str = "atari-vec-serve") -> int:
    """Parse the flags and environment, then serve until interrupted."""
    config = parse_args(argv, prog=prog)
    import uvicorn

    try:
        app = create_app(config)
    except (ValueError, TypeError) as e:  # e.g. an unknown game: say so, no traceback
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"atari_vec serving {config.game} ({config.obs_type}) to up to "
          f"{config.max_concurrent_envs} sessions on http://{config.host}:{config.port} "
          f"(WebSocket /ws, web page /web{', token required' if config.api_key else ''})",
          flush=True)
    uvicorn.Server(uvicorn_config(app, config)).run()
    return 0
