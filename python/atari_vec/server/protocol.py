"""OpenEnv's wire protocol for Atari: the typed messages, the error codes and the JSON replies.

Shapes follow OpenEnv 0.10.0 and its Atari environment, so that OpenEnv's own clients work
unchanged: an observation reply is ``{"observation": {...}, "reward": r, "done": d,
"metadata": {...}}`` (wrapped in ``{"type": "observation", "data": ...}`` on the WebSocket),
errors are ``{"type": "error", "data": {"message": ..., "code": ...}}``. Replies are encoded
with orjson, which writes a NumPy screen as a JSON list without a Python int per pixel.
"""

from __future__ import annotations

import enum
import reprlib
from typing import Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

SEED_MAX = 2**31 - 1


class ErrorCode(str, enum.Enum):
    INVALID_JSON = "INVALID_JSON"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    CAPACITY_REACHED = "CAPACITY_REACHED"


class ProtocolError(Exception):
    """A request the server answers with an error message; the session goes on. Over HTTP
    the status is 422 for what the client sent wrong, else 500."""

    def __init__(self, code: ErrorCode, message: str, *, client_fault: bool | None = None,
                 **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra
        if client_fault is None:
            client_fault = code in (ErrorCode.INVALID_JSON, ErrorCode.VALIDATION_ERROR)
        self.http_status = 422 if client_fault else 500


# -- the models (their JSON schemas are what GET /schema serves) ----------------------------


class AtariAction(BaseModel):
    """An action: the index of one of the game's legal actions. The other fields are what
    OpenEnv's typed Atari client sends; like the reference server, the server's own game and
    observation type apply whatever they say."""

    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] = Field(default_factory=dict)
    action_id: int
    game_name: str = "pong"
    obs_type: Literal["rgb", "grayscale", "ram"] = "rgb"
    full_action_space: bool = False


class AtariObservation(BaseModel):
    """An observation: the full screen (or RAM), flattened row-major (HWC for RGB)."""

    model_config = ConfigDict(extra="forbid")
    done: bool = False
    reward: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    screen: list[int]
    screen_shape: list[int]
    legal_actions: list[int]
    lives: int = 0
    episode_frame_number: int = 0
    frame_number: int = 0


class AtariState(BaseModel):
    """A session's state: its episode and the server's game settings."""

    model_config = ConfigDict(extra="allow")
    episode_id: str | None = None
    step_count: int = Field(default=0, ge=0)
    game_name: str = "pong"
    obs_type: str = "rgb"
    full_action_space: bool = False
    mode: int | None = None
    difficulty: int | None = None
    repeat_action_probability: float = 0.0
    frameskip: int = 4


class ResetRequest(BaseModel):
    """POST /reset's body and a WebSocket reset's data. Other keys are ignored, as OpenEnv
    ignores what the environment's reset() does not take."""

    model_config = ConfigDict(extra="ignore")
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)
    episode_id: str | None = Field(default=None, max_length=255)


class StepRequest(BaseModel):
    """POST /step's body."""

    model_config = ConfigDict(extra="allow")
    action: dict[str, Any]
    timeout_s: float | None = Field(default=None, gt=0)
    request_id: str | None = Field(default=None, max_length=255)


class WSReset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["reset"]
    data: dict[str, Any] = Field(default_factory=dict)


class WSStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["step"]
    data: dict[str, Any]


class WSState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["state"]


class WSClose(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["close"]
    data: dict[str, Any] = Field(default_factory=dict)


class WSMcp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["mcp"]
    data: Any = None


WS_MESSAGES: dict[str, type[BaseModel]] = {
    "reset": WSReset, "step": WSStep, "state": WSState, "close": WSClose, "mcp": WSMcp,
}


def schema() -> dict[str, Any]:
    """GET /schema: the JSON schemas of the action, observation and state."""
    observation = AtariObservation.model_json_schema()
    return {
        "action": AtariAction.model_json_schema(),
        "observation": observation,
        "reset_observation": observation,
        "state": AtariState.model_json_schema(),
    }


_REPR = reprlib.Repr()
_REPR.maxlevel = 4
_REPR.maxstring = _REPR.maxother = 200


def short_repr(value: Any) -> str:
    """A client's input shown in an error: at most 200 characters and 4 levels of nesting
    (a plain repr of a deeply nested list recurses past Python's limit)."""
    return _REPR.repr(value)[:200]


def validation_errors(e: Any) -> list[dict[str, Any]]:
    """A pydantic ValidationError's entries, as JSON-safe dicts (inputs shown as text)."""
    out = []
    for err in e.errors(include_url=False):
        entry = {k: v for k, v in err.items() if k not in ("ctx", "input")}
        entry["input"] = short_repr(err.get("input"))
        out.append(entry)
    return out


# -- replies ---------------------------------------------------------------------------------


class ObservationEncoder:
    """Builds the JSON of observation replies for one game and observation type.

    Thread-safety: immutable after construction; any thread."""

    def __init__(self, screen_shape: tuple[int, ...], num_actions: int, metadata: dict[str, Any]):
        self.screen_shape = list(screen_shape)
        self.legal_actions = list(range(num_actions))
        self.metadata = metadata

    def payload(self, screen: np.ndarray, reward: float, done: bool, lives: int,
                episode_frame_number: int, frame_number: int) -> dict[str, Any]:
        """The reply's ``data``: OpenEnv's serialized observation."""
        return {
            "observation": {
                "metadata": self.metadata,
                "screen": screen.reshape(-1),
                "screen_shape": self.screen_shape,
                "legal_actions": self.legal_actions,
                "lives": int(lives),
                "episode_frame_number": int(episode_frame_number),
                "frame_number": int(frame_number),
            },
            "reward": float(reward),
            "done": bool(done),
            "metadata": self.metadata,
        }


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def ws_message(kind: str, data: Any) -> bytes:
    """A WebSocket text frame's UTF-8 text: ``{"type": kind, "data": data}``."""
    return dumps({"type": kind, "data": data})


def ws_error(code: ErrorCode, message: str, **extra: Any) -> bytes:
    return ws_message("error", {"message": message, "code": code.value, **extra})


def mcp_error(request: Any) -> dict[str, Any]:
    """The JSON-RPC reply to any MCP request: this environment has no MCP tools."""
    if not isinstance(request, dict):
        return {"jsonrpc": "2.0", "id": None,
                "error": {"code": -32600, "message": "Invalid request", "data": None}}
    rid = request.get("id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        rid = None
    if request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        return {"jsonrpc": "2.0", "id": rid,
                "error": {"code": -32600, "message": "Invalid request", "data": None}}
    return {"jsonrpc": "2.0", "id": rid,
            "error": {"code": -32603, "message": "Environment does not support MCP", "data": None}}
