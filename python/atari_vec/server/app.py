"""The routes: OpenEnv's HTTP and WebSocket API over NativeSessions, the web page, and the
guards every request passes (token, size limit).

HTTP ``/reset`` and ``/step`` are stateless, as in OpenEnv 0.10: each call plays on a fresh
game (``/step`` resets, then steps) on the server's HTTP slot, and ``/state`` is a fresh
state. Sessions, one per WebSocket connection, live on ``/ws``: this module's ASGI route serves
them under any ASGI server; ``atari-vec-serve`` hands WebSocket upgrades to the leaner
protocol in fastws.py instead (both answer through handling.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response

from .. import __version__
from .config import ServerConfig
from .handling import capacity_error, handle_message, token_allowed, validate
from .protocol import (
    AtariAction,
    AtariState,
    ErrorCode,
    ProtocolError,
    ResetRequest,
    StepRequest,
    dumps,
    mcp_error,
    schema,
)
from .sessions import NativeSessions, Session, awaited

WEB_DIR = Path(__file__).parent / "web"


def _json(data: Any, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json")


class Guard:
    """ASGI middleware: the token check (``Authorization: Bearer <token>``, or ``?token=`` for
    browsers, which cannot set headers on a page load or a WebSocket) on every route but
    /health, and the size limit of HTTP bodies (read here, at most `limit` bytes)."""

    pool: NativeSessions | None = None

    def __init__(self, app: Any, api_key: str | None, limit: int):
        self.app = app
        self.api_key = api_key
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        if not token_allowed(self.api_key, scope.get("path", ""), scope.get("headers", []),
                             scope.get("query_string", b"")):
            if scope["type"] == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})  # refused handshake (403)
                return
            response = JSONResponse({"detail": "missing or wrong token (Authorization: Bearer ...)"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        if scope["type"] == "http" and scope.get("method") in ("POST", "PUT", "PATCH"):
            body = b""
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if len(body) > self.limit:
                    response = JSONResponse(
                        {"detail": f"request body larger than {self.limit} bytes"}, status_code=413)
                    return await response(scope, receive, send)
                if not message.get("more_body", False):
                    break
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            return await self.app(scope, replay, send)
        return await self.app(scope, receive, send)


def create_app(config: ServerConfig | None = None) -> Any:
    """The ASGI app. Its pool is built here (all slots reset) and closed at shutdown."""
    config = config or ServerConfig.from_env()
    config.validate()
    pool = NativeSessions(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        pool.bind_loop(asyncio.get_running_loop())
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="atari_vec: OpenEnv-compatible Atari server",
        version="1.0.0",
        description=f"{config.game} on one native pool of {config.max_concurrent_envs} sessions "
        f"(atari_vec {__version__}). Sessions live on the WebSocket /ws; HTTP calls are stateless.",
        lifespan=lifespan,
    )
    app.state.pool = pool
    app.state.config = config

    # -- HTTP ---------------------------------------------------------------------------------

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "healthy"})

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ProtocolError(ErrorCode.INVALID_JSON, f"Invalid JSON: {e}") from None

    def http_error(e: ProtocolError) -> Response:
        detail: Any = e.extra.get("errors", e.message)
        return _json({"detail": detail, "code": e.code.value}, e.http_status)

    @app.post("/reset", openapi_extra={"requestBody": {"required": False, "content": {
        "application/json": {"schema": ResetRequest.model_json_schema()}}}})
    async def http_reset(request: Request) -> Response:
        try:
            body = await body_of(request)
            req = validate(ResetRequest, body)
            async with pool.http_lock:
                data = await pool.http_session.areset(req.seed, req.episode_id)
        except ProtocolError as e:
            return http_error(e)
        return _json(data)

    @app.post("/step", openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": StepRequest.model_json_schema()}}}})
    async def http_step(request: Request) -> Response:
        try:
            body = await body_of(request)
            req = validate(StepRequest, body)
            action = validate(AtariAction, req.action)
            async with pool.http_lock:
                await pool.http_session.areset()
                data = await pool.http_session.astep(action.action_id)
        except ProtocolError as e:
            return http_error(e)
        return _json(data)

    @app.get("/state", response_model=AtariState)
    async def http_state() -> Response:
        return _json(Session(pool, pool.http_slot).state().model_dump())

    @app.get("/metadata")
    async def metadata() -> Response:
        return _json({
            "name": "atari_vec",
            "description": f"Atari {config.game} ({config.obs_type} observations) on atari_vec's "
            "native pool, OpenEnv-compatible",
            "readme_content": None,
            "version": __version__,
            "author": None,
            "documentation_url": None,
        })

    @app.get("/schema")
    async def get_schema() -> Response:
        return _json(schema())

    @app.post("/mcp")
    async def mcp(request: Request) -> Response:
        raw = await request.body()
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _json({"jsonrpc": "2.0", "id": None,
                          "error": {"code": -32700, "message": "Parse error", "data": None}})
        return _json(mcp_error(message))

    # -- the WebSocket sessions ----------------------------------------------------------------

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        session = pool.open()
        if session is None:
            await websocket.send_text(capacity_error(pool).decode())
            await websocket.close(code=1000)
            return
        try:
            await _serve_session(websocket, session, config)
        except WebSocketDisconnect:
            pass
        finally:
            pool.release(session)

    # -- the web page ----------------------------------------------------------------------------

    @app.get("/web", include_in_schema=False)
    async def web_page() -> Response:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/web/api/info", include_in_schema=False)
    async def web_info() -> Response:
        s = pool.encoder
        return _json({"game": config.game, "obs_type": config.obs_type,
                      "screen_shape": s.screen_shape, "action_meanings": s.metadata["action_meanings"],
                      "max_sessions": pool.max_sessions})

    @app.get("/web/api/sessions", include_in_schema=False)
    async def web_sessions() -> Response:
        return _json([{"id": s.id, "episode_id": s.episode_id, "step_count": s.step_count,
                       "lives": s.last.lives if s.last else 0,
                       "done": bool(s.last and s.last.terminated)}
                      for s in pool.sessions()])

    @app.get("/web/api/screen/{session_id}", include_in_schema=False)
    async def web_screen(session_id: str) -> Response:
        s = pool.get(session_id)
        if s is None or s.last is None:
            return _json({"detail": "no such session, or nothing to show yet"}, 404)
        return Response(s.last.screen.tobytes(), media_type="application/octet-stream")

    guard = Guard(app, config.api_key, config.max_message_bytes)
    guard.pool = pool  # for fastws.protocol_class
    return guard


async def _serve_session(websocket: WebSocket, session: Session, config: ServerConfig) -> None:
    """One session's loop on the ASGI route: one reply per request, in order; `close` ends it
    without one."""
    while True:
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout=config.idle_timeout_s)
        except asyncio.TimeoutError:
            await websocket.close(code=1001, reason=f"idle for {config.idle_timeout_s:g} s")
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        received = text if text is not None else message.get("bytes") or b""
        reply = await awaited(lambda done: handle_message(session, received, done))
        if reply is None:  # close
            await websocket.close(code=1000)
            return
        await websocket.send_text(reply.decode())
