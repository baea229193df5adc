"""The server's configuration: one home for every knob, its default, its environment variable
and its command-line flag.

The game settings read the variables of OpenEnv's Atari server, parsed the way it parses them
(``ATARI_FULL_ACTION_SPACE`` is true only for "true" in any case); the others are ours, plus
OpenEnv's ``MAX_CONCURRENT_ENVS``. A command-line flag overrides its variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

OBS_TYPES = ("rgb", "grayscale", "ram")


def _optional_int(text: str) -> int | None:
    return None if text.strip() == "" else int(text)


def _true(text: str) -> bool:
    return text.strip().lower() == "true"


@dataclasses.dataclass(frozen=True)
class Knob:
    """One setting: its field, environment variable, flag, parser and help."""

    field: str
    env: str | None
    parse: Callable[[str], Any]
    help: str


@dataclasses.dataclass
class ServerConfig:
    """Everything the server needs. Build it with :meth:`from_env` or :func:`parse_args`."""

    game: str = "pong"
    obs_type: str = "rgb"
    full_action_space: bool = False
    mode: int | None = None
    difficulty: int | None = None
    repeat_action_probability: float = 0.0
    frameskip: int = 4
    max_concurrent_envs: int = 64
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_message_bytes: int = 64 * 1024
    idle_timeout_s: float = 300.0
    num_threads: int = 0
    ws_compression: bool = False
    poll_us: int = 200

    def validate(self) -> None:
        """Raise ValueError for a setting the server cannot run with."""
        if self.obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {self.obs_type!r}")
        if self.frameskip < 1:
            raise ValueError(f"frameskip must be at least 1, got {self.frameskip}")
        if not 0.0 <= self.repeat_action_probability <= 1.0:
            raise ValueError(
                f"repeat_action_probability must be in [0, 1], got {self.repeat_action_probability}"
            )
        if not 1 <= self.max_concurrent_envs <= 65536:
            raise ValueError(
                f"max_concurrent_envs must be in [1, 65536], got {self.max_concurrent_envs}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if self.max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes must be at least 1024, got {self.max_message_bytes}")
        if not self.idle_timeout_s > 0:
            raise ValueError(f"idle_timeout_s must be positive, got {self.idle_timeout_s}")
        if not 0 <= self.poll_us <= 100_000:
            raise ValueError(f"poll_us must be in [0, 100000], got {self.poll_us}")
        if self.api_key is not None and self.api_key == "":
            raise ValueError("api_key must not be empty (unset it to serve without a token)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """The configuration the environment variables give, then ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for knob in KNOBS:
            if knob.env is not None and knob.env in environ:
                try:
                    values[knob.field] = knob.parse(environ[knob.env])
                except ValueError as e:
                    raise ValueError(f"{knob.env}={environ[knob.env]!r}: {e}") from None
        values.update(overrides)
        config = cls(**values)
        config.validate()
        return config


KNOBS = (
    Knob("game", "ATARI_GAME", str, "game (ROM id), e.g. pong, breakout, space_invaders"),
    Knob("obs_type", "ATARI_OBS_TYPE", str, "rgb, grayscale or ram"),
    Knob("full_action_space", "ATARI_FULL_ACTION_SPACE", _true, "all 18 actions: true/false"),
    Knob("mode", "ATARI_MODE", _optional_int, "game mode (game-specific)"),
    Knob("difficulty", "ATARI_DIFFICULTY", _optional_int, "game difficulty (game-specific)"),
    Knob("repeat_action_probability", "ATARI_REPEAT_ACTION_PROB", float, "sticky actions, 0-1"),
    Knob("frameskip", "ATARI_FRAMESKIP", int, "emulator frames per step"),
    Knob("max_concurrent_envs", "MAX_CONCURRENT_ENVS", int, "WebSocket sessions served at once"),
    Knob("host", "ATARI_VEC_HOST", str, "address to bind (0.0.0.0 serves every interface)"),
    Knob("port", "ATARI_VEC_PORT", int, "port to bind"),
    Knob("api_key", "ATARI_VEC_API_KEY", str, "token every route but /health requires "
         "(Authorization: Bearer <token>)"),
    Knob("max_message_bytes", "ATARI_VEC_MAX_MESSAGE_BYTES", int,
         "largest WebSocket message or HTTP body accepted"),
    Knob("idle_timeout_s", "ATARI_VEC_IDLE_TIMEOUT", float,
         "seconds a session may stay silent before it is closed and its env freed"),
    Knob("num_threads", "ATARI_VEC_THREADS", int, "emulator worker threads (0: one per CPU)"),
    Knob("ws_compression", "ATARI_VEC_WS_COMPRESSION", _true,
         "accept permessage-deflate on /ws: true/false (off: deflating a 345 kB RGB reply costs "
         "more than the step; turn it on for slow links)"),
    Knob("poll_us", "ATARI_VEC_POLL_US", int,
         "microseconds the server polls a lone session's connection for its next request "
         "after a reply, before it sleeps (0: never); saves a thread wake-up per step at the "
         "cost of up to that much CPU per step"),
)


def parse_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
               prog: str = "atari-vec-serve") -> ServerConfig:
    """The configuration from the environment, overridden by command-line flags."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve Atari over OpenEnv's HTTP/WebSocket protocol from one native pool.",
    )
    for knob in KNOBS:
        flag = "--" + knob.field.replace("_", "-")
        env_note = f" [env {knob.env}]" if knob.env else ""
        parser.add_argument(flag, dest=knob.field, type=knob.parse, default=None,
                            help=knob.help + env_note)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        return ServerConfig.from_env(environ, **overrides)
    except ValueError as e:
        parser.error(str(e))
        raise  # unreachable: parser.error exits
