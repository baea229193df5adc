"""What a WebSocket message gets, and who may connect: one home for both transports (the
lean protocol in fastws.py that ``atari-vec-serve`` runs, and the ASGI route in app.py that
any ASGI server can run).

Each message gets exactly one reply (a text frame's UTF-8 JSON) or, for ``close``, none; the
reply comes from a callback, at once or when the pool's result lands, and never raises
through it: a request that fails is answered with an error message and the session goes on.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import orjson
from pydantic import ValidationError

from .protocol import (
    WS_MESSAGES,
    short_repr,
    AtariAction,
    ErrorCode,
    ProtocolError,
    ResetRequest,
    mcp_error,
    validation_errors,
    ws_error,
    ws_message,
)
from .sessions import NativeSessions, Session

OPEN_PATHS = ("/health",)
log = logging.getLogger("atari_vec.server")

ReplyTo = Callable[[bytes | None], None]


def token_allowed(api_key: str | None, path: str, headers: Iterable[tuple[bytes, bytes]],
                  query_string: bytes) -> bool:
    """The token check of every route but /health: ``Authorization: Bearer <token>``, or
    ``?token=`` (browsers cannot set headers on a page load or a WebSocket)."""
    if api_key is None or path in OPEN_PATHS:
        return True
    expected = ("Bearer " + api_key).encode()
    for name, value in headers:
        if name == b"authorization" and hmac.compare_digest(value, expected):
            return True
    query = parse_qs(query_string.decode("latin-1"))
    return any(hmac.compare_digest(t.encode(), api_key.encode()) for t in query.get("token", []))


def capacity_error(pool: NativeSessions) -> bytes:
    """The reply of a connection past the session limit (the server then closes it)."""
    return ws_error(ErrorCode.CAPACITY_REACHED,
                    f"Server at capacity: {pool.active}/{pool.max_sessions} sessions active. "
                    "Cannot accept new connections.",
                    active_sessions=pool.active, max_sessions=pool.max_sessions)


def validate(model: Any, data: Any) -> Any:
    """`model` from `data`, or a VALIDATION_ERROR naming what is wrong."""
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.VALIDATION_ERROR, "Invalid message",
                            errors=[{"type": "model_type", "loc": [], "msg": "expected a JSON object",
                                     "input": short_repr(data)}])
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ProtocolError(ErrorCode.VALIDATION_ERROR, "Invalid message",
                            errors=validation_errors(e)) from None


def handle_message(session: Session, message: str | bytes, reply: ReplyTo) -> None:
    """Answers one WebSocket message (a text frame's str, a binary frame's bytes): calls
    `reply` exactly once, with the reply frame's text or None for ``close``. Raises nothing:
    whatever goes wrong is an error reply (and is logged if it is not the client's fault)."""
    replied = False

    def once(text: bytes | None) -> None:
        nonlocal replied
        if not replied:
            replied = True
            reply(text)

    def answer(outcome: dict | Exception) -> None:
        try:
            if isinstance(outcome, ProtocolError):
                once(ws_error(outcome.code, outcome.message, **outcome.extra))
            elif isinstance(outcome, Exception):
                once(ws_error(ErrorCode.EXECUTION_ERROR, str(outcome)))
            else:
                once(ws_message("observation", outcome))
        except Exception as e:  # noqa: BLE001 - never into the pool's callback
            _internal_error(e, once)

    try:
        _dispatch(session, message, once, answer)
    except ProtocolError as e:
        once(ws_error(e.code, e.message, **e.extra))
    except Exception as e:  # noqa: BLE001 - a bug or a hostile input: this request fails alone
        _internal_error(e, once)


def _internal_error(error: Exception, once: ReplyTo) -> None:
    log.error("a WebSocket request failed", exc_info=error)
    try:
        once(ws_error(ErrorCode.EXECUTION_ERROR, f"internal error ({type(error).__name__})"))
    except Exception:  # noqa: BLE001 - the transport is gone; nothing more to tell
        log.error("and its error reply could not be sent", exc_info=True)


def _dispatch(session: Session, message: str | bytes, reply: ReplyTo,
              answer: Callable[[dict | Exception], None]) -> None:
    limit = session.pool.config.max_message_bytes
    if len(message) > limit:
        raise ProtocolError(ErrorCode.VALIDATION_ERROR, f"message larger than {limit} bytes")
    if isinstance(message, bytes):
        try:
            message.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.INVALID_JSON, "Invalid JSON: not UTF-8") from None
    try:
        parsed = orjson.loads(message)
    except orjson.JSONDecodeError as e:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"Invalid JSON: {e}") from None
    kind = parsed.get("type") if isinstance(parsed, dict) else None
    action_id = _plain_step(parsed) if kind == "step" else None
    if action_id is not None:  # the common case, already known valid: no model to build
        return session.step(action_id, answer)
    model = WS_MESSAGES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE,
                            f"Unknown message type: {kind if isinstance(kind, str) else ''}")
    request = validate(model, parsed)
    if kind == "reset":
        req = validate(ResetRequest, request.data)
        return session.reset(req.seed, req.episode_id, answer)
    if kind == "step":
        return session.step(validate(AtariAction, request.data).action_id, answer)
    if kind == "state":
        return reply(ws_message("state", session.state().model_dump()))
    if kind == "mcp":
        return reply(ws_message("mcp", mcp_error(request.data)))
    return reply(None)  # close


_STEP_KEYS = frozenset({"type", "data"})
_ACTION_KEYS = frozenset(AtariAction.model_fields)


def _plain_step(message: dict) -> int | None:
    """The action_id of a step message that AtariAction would accept as it is (an int id,
    nothing else but known fields of the right types), else None: the models then decide."""
    data = message.get("data")
    if message.keys() != _STEP_KEYS or type(data) is not dict:
        return None
    action_id = data.get("action_id")
    if type(action_id) is not int or not data.keys() <= _ACTION_KEYS or len(data) > 1 and not (
            isinstance(data.get("game_name", ""), str)
            and data.get("obs_type", "rgb") in ("rgb", "grayscale", "ram")
            and type(data.get("full_action_space", False)) is bool
            and type(data.get("metadata", {})) is dict):
        return None
    return action_id
