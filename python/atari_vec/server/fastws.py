"""The sessions' WebSocket (``/ws``) as a lean asyncio protocol: what ``atari-vec-serve`` runs.

uvicorn keeps HTTP (and FastAPI every HTTP route); an upgrade request is handed to this class,
which uvicorn takes as its WebSocket protocol (``uvicorn.Config(ws=<a protocol class>)``).
Why: a RAM step's emulation takes about 0.16 ms, and the general stack (the websockets
package's frame parser, ASGI messages and their queue, Starlette's WebSocket, a task per
receive, reading paused and resumed per message) cost more than that again per message. Here
a frame is parsed in ``data_received``, its request goes to the pool with a callback, and the
reply is written from that callback: no task, no queue, no ASGI message.

RFC 6455, server side: the opening handshake (GET, ``Upgrade: websocket``, version 13, a
16-byte key), masked client frames, text and binary messages in fragments, ping/pong, the
closing handshake. No extensions (a client's permessage-deflate offer is declined; with
``ws_compression`` the server runs the ASGI route instead), no subprotocols. A message over
``max_message_bytes`` closes the connection with 1009, a protocol violation with 1002, text that
is not UTF-8 with 1007. Requests of one connection are answered one at a time, in order;
a client that sends without reading has its reading paused, so neither side buffers without
bound. uvicorn's shutdown closes these connections (1012) with the others.

A lone session (the only one open, nothing else in the pool) has its connection polled for
up to ``poll_us`` after each reply (non-blocking reads of its socket, on the loop's thread):
its next request is then read without the loop's thread going to sleep and being woken for
it, which on the 2-CPU machine this was measured on costs some 30 microseconds a round trip
(benchmarks/wakeup_pingpong.py, a socket ping-pong between two processes: 52.6 us with the
reader blocking, 23.3 us with it polling).
Anything read goes through ``data_received`` like the transport's own reads, in order (both
run on the loop's thread); an end of stream or an error is left for the transport to read
again. Not with TLS (the bytes on the socket are not the messages) or a blocking socket.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import logging
import os
import time
from os import read as _read_fd
from typing import Any

from .handling import capacity_error, handle_message, token_allowed
from .sessions import NativeSessions, Session

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HEAD = 64 * 1024  # request line and headers
_INBOX_HIGH = 16  # messages waiting for their turn before reading pauses
_MAX_FRAGMENTS = 1024  # frames of one message (empty ones would otherwise add up unchecked)
_CLOSE_WAIT_S = 5.0  # for the client's close frame after ours
_CONNECTING, _OPEN, _CLOSING, _CLOSED = range(4)
# Close codes a peer may send (RFC 6455 7.4, and the IANA registry's 1012-1014).
_VALID_CLOSE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))
log = logging.getLogger("atari_vec.server")


def protocol_class(pool: NativeSessions) -> type[SessionProtocol]:
    """The protocol class uvicorn instantiates per upgraded connection, bound to `pool`."""
    return type("BoundSessionProtocol", (SessionProtocol,), {"pool": pool})


def _unmask(data: bytearray, key: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return b""
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ mask).to_bytes(n, "little")


def _frame(opcode: int, payload: bytes) -> tuple[bytes, bytes]:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head, payload


class SessionProtocol(asyncio.Protocol):
    """One WebSocket connection and its session. Event loop thread only."""

    pool: NativeSessions  # bound by protocol_class

    def __init__(self, config: Any, server_state: Any, app_state: Any = None,
                 _loop: asyncio.AbstractEventLoop | None = None):
        self.connections = server_state.connections
        self.loop = _loop or asyncio.get_event_loop()
        self.settings = self.pool.config
        self.limit = self.settings.max_message_bytes
        self.transport: asyncio.Transport | None = None
        self.state = _CONNECTING
        self.buf = bytearray()
        self.skip = 0  # bytes of the current frame still to drop
        self.session: Session | None = None
        self.fragments: list[bytes] | None = None  # a fragmented message being received
        self.fragment_opcode = 0
        self.fragment_size = 0
        self.inbox: collections.deque[str | bytes] = collections.deque()
        self.busy = False  # a message is being answered
        self.dispatching = False
        self.read_paused = False
        self.write_paused = False
        self.last_seen = self.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.poll_s = self.settings.poll_us * 1e-6
        self.fd = -1  # the socket polled after replies (-1: none)

    # -- asyncio and uvicorn ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)
        sock = transport.get_extra_info("socket")
        if self.poll_s > 0 and sock is not None and transport.get_extra_info("sslcontext") is None:
            try:
                fd = sock.fileno()
                if fd >= 0 and not os.get_blocking(fd):
                    self.fd = fd
            except OSError:
                pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = _CLOSED
        self.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        self.inbox.clear()
        self._end_session()

    def shutdown(self) -> None:
        """uvicorn, when the server stops."""
        if self.state == _OPEN:
            self._close(1012, "server shutting down")
        elif self.state != _CLOSING:  # CLOSING: its close-wait timer ends it
            self.state = _CLOSED
            self.transport.abort()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._dispatch()
        self._flow()

    def _flow(self) -> None:
        """Reading pauses while replies cannot be written (a client that does not read, and
        pings: their pongs would pile up) or while requests wait in the inbox; it resumes
        when both have drained."""
        if self.state == _CLOSED:
            return
        if self.write_paused or len(self.inbox) >= _INBOX_HIGH:
            if not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()
        elif self.read_paused and len(self.inbox) < _INBOX_HIGH // 2:
            self.read_paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.state == _CLOSED:
            return
        self.buf += data
        try:
            if self.state == _CONNECTING:
                self._handshake()
            else:
                self._read_frames()
        except Exception:  # noqa: BLE001 - a bug must cost this connection only, cleanly
            log.exception("WebSocket connection failed")
            if self.state == _OPEN:
                self._close(1011, "internal error")
            else:
                self.state = _CLOSED
                self.transport.abort()

    # -- the opening handshake ----------------------------------------------------------------

    def _handshake(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > _MAX_HEAD:
                self._refuse(431, "request headers too large")
            return
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[0] != "GET":
            return self._refuse(400, "a WebSocket handshake is a GET request")
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                return self._refuse(400, "malformed header line")
            headers.append((name.strip().lower().encode("latin-1"), value.strip().encode("latin-1")))
        path, _, query = parts[1].partition("?")
        if path != "/ws":
            return self._refuse(404, "no WebSocket here (sessions are on /ws)")
        if not token_allowed(self.settings.api_key, path, headers, query.encode("latin-1")):
            return self._refuse(403, "missing or wrong token")
        fields = collections.defaultdict(list)
        for name, value in headers:
            fields[name].append(value.decode("latin-1"))

        def tokens(name: bytes) -> set[str]:
            return {t.strip().lower() for v in fields.get(name, []) for t in v.split(",")}

        if "websocket" not in tokens(b"upgrade") or "upgrade" not in tokens(b"connection"):
            return self._refuse(400, "not a WebSocket upgrade request")
        if fields.get(b"sec-websocket-version") != ["13"]:
            return self._refuse(426, "WebSocket version 13 only",
                                extra=b"Sec-WebSocket-Version: 13\r\n")
        key = fields.get(b"sec-websocket-key", [""])
        try:
            valid_key = len(key) == 1 and len(base64.b64decode(key[0], validate=True)) == 16
        except ValueError:  # binascii.Error, or characters outside ASCII
            valid_key = False
        if not valid_key:
            return self._refuse(400, "missing or malformed Sec-WebSocket-Key")
        accept = base64.b64encode(hashlib.sha1(key[0].encode("latin-1") + _GUID).digest())
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.state = _OPEN
        self.session = self.pool.open()
        if self.session is None:
            self._send(0x1, capacity_error(self.pool))
            return self._close(1000)
        self._arm_idle_timer(self.settings.idle_timeout_s)
        if self.buf:
            self._read_frames()

    def _refuse(self, status: int, reason: str, extra: bytes = b"") -> None:
        body = reason.encode()
        phrase = {400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                  426: "Upgrade Required", 431: "Request Header Fields Too Large"}[status]
        self.transport.write(
            f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n".encode() + extra + b"\r\n" + body)
        self.state = _CLOSED
        self.transport.close()

    # -- frames in --------------------------------------------------------------------------------

    def _read_frames(self) -> None:
        buf = self.buf
        pos = 0
        while self.state in (_OPEN, _CLOSING):
            avail = len(buf) - pos
            if self.skip:  # the rest of a frame that is not read (closing, or too large)
                n = min(self.skip, avail)
                pos += n
                self.skip -= n
                if self.skip:
                    break
                continue
            if avail < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 6
            if length == 126:
                if avail < 4:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 4], "big")
                head = 8
            elif length == 127:
                if avail < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = 14
            opcode = b0 & 0x0F
            fin = bool(b0 & 0x80)
            error = None
            if b0 & 0x70:
                error = (1002, "reserved bits set (no extension was agreed)")
            elif not b1 & 0x80:
                error = (1002, "client frames must be masked")
            elif opcode >= 0x8:
                if not fin or length > 125:
                    error = (1002, "control frames are short and unfragmented")
            elif length + (self.fragment_size if opcode == 0 else 0) > self.limit:
                error = (1009, f"message larger than {self.limit} bytes")
            if error is not None or self.state == _CLOSING and opcode != 0x8:
                if error is not None:
                    self._close(*error)
                # Not buffered: dropped as it arrives (an unmasked frame has no key).
                self.skip = head + length - (0 if b1 & 0x80 else 4)
                continue
            if avail < head + length:
                break
            start = pos + head
            payload = _unmask(buf[start:start + length], bytes(buf[start - 4:start]))
            pos = start + length
            self._on_frame(fin, opcode, payload)
        del buf[:pos]

    def _on_frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode == 0x8:
            return self._on_close(payload)
        if opcode == 0x9:
            return self._send(0xA, payload)
        if opcode == 0xA:
            return
        if opcode == 0x0:
            if self.fragments is None:
                return self._close(1002, "continuation frame without a message")
            self.fragments.append(payload)
            self.fragment_size += len(payload)
            if not fin:
                if len(self.fragments) > _MAX_FRAGMENTS:
                    return self._close(1009, f"message in more than {_MAX_FRAGMENTS} frames")
                return
            payload, opcode = b"".join(self.fragments), self.fragment_opcode
            self.fragments = None
            self.fragment_size = 0
        elif opcode in (0x1, 0x2):
            if self.fragments is not None:
                return self._close(1002, "a new message inside a fragmented one")
            if not fin:
                self.fragments = [payload]
                self.fragment_opcode = opcode
                self.fragment_size = len(payload)
                return
        else:
            return self._close(1002, f"unknown opcode {opcode}")
        if opcode == 0x1:
            try:
                message: str | bytes = payload.decode("utf-8")
            except UnicodeDecodeError:
                return self._close(1007, "text frame is not UTF-8")
        else:
            message = payload
        self.last_seen = self.loop.time()
        self.inbox.append(message)
        self._flow()
        self._dispatch()

    def _on_close(self, payload: bytes) -> None:
        if self.state == _CLOSING:  # the answer to ours: done
            self.state = _CLOSED
            self.transport.close()
            return
        code = 1000
        if len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            try:
                payload[2:].decode("utf-8")
                valid = 3000 <= code < 5000 or code in _VALID_CLOSE
            except UnicodeDecodeError:
                valid = False
            if not valid:
                return self._close(1002, "invalid close frame")
        elif payload:
            return self._close(1002, "invalid close frame")
        self._send(0x8, code.to_bytes(2, "big") if payload else b"")
        self._end_session()
        self.state = _CLOSED
        self.transport.close()
        # close() waits for the write buffer to drain: a client that stops reading would
        # hold the connection forever.
        self._set_timer(_CLOSE_WAIT_S, self.transport.abort)

    # -- requests and replies ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Answers waiting messages in order, one at a time. A reply given at once (state,
        errors) moves on in this loop; one from the pool calls back into it."""
        if self.dispatching:
            return
        self.dispatching = True
        try:
            while self.inbox and not self.busy and not self.write_paused and self.state == _OPEN:
                self.busy = True
                handle_message(self.session, self.inbox.popleft(), self._reply)
        finally:
            self.dispatching = False
        self._flow()

    def _reply(self, reply: bytes | None) -> None:
        self.busy = False
        if self.state != _OPEN:
            return
        if reply is None:  # a close message: no reply, a normal close
            return self._close(1000)
        self._send(0x1, reply)
        if self.inbox:
            self._dispatch()
        elif self.fd >= 0 and self.pool.lone():
            self.loop.call_soon(self._poll_next)

    def _poll_next(self) -> None:
        """Polls the socket of a lone session for its next request (see the module's text)."""
        if (self.state != _OPEN or self.busy or self.inbox or self.read_paused
                or self.write_paused or not self.pool.lone()):
            return
        end = time.perf_counter() + self.poll_s
        while True:
            try:
                data = _read_fd(self.fd, 262144)
            except (BlockingIOError, InterruptedError):
                if time.perf_counter() >= end:
                    return
                continue
            except OSError:
                return  # the transport's own read meets it
            if data:
                self.data_received(data)
            return  # b"": the end of the stream, which the transport's read sees too

    def _send(self, opcode: int, payload: bytes) -> None:
        head, payload = _frame(opcode, payload)
        if len(payload) < 4096:
            self.transport.write(head + payload)
        else:
            self.transport.writelines((head, payload))

    # -- closing ------------------------------------------------------------------------------------

    def _close(self, code: int, reason: str = "") -> None:
        """Starts the closing handshake: our close frame, then the client's (or a timeout)."""
        if self.state != _OPEN:
            return
        self._send(0x8, code.to_bytes(2, "big") + reason.encode()[:120])
        self.state = _CLOSING
        self.inbox.clear()
        self._end_session()  # its slot is free now (a request still out is dropped there)
        if self.read_paused:  # the client's close frame must be read
            self.read_paused = False
            self.transport.resume_reading()
        self._set_timer(_CLOSE_WAIT_S, self.transport.abort)

    def _set_timer(self, delay: float, callback: Any) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(delay, callback)

    def _end_session(self) -> None:
        if self.session is not None:
            self.pool.release(self.session)
            self.session = None

    def _arm_idle_timer(self, delay: float) -> None:
        self._set_timer(delay, self._idle_check)

    def _idle_check(self) -> None:
        if self.state != _OPEN:
            return
        idle = self.settings.idle_timeout_s
        quiet = self.loop.time() - self.last_seen
        if quiet >= idle and not self.busy:
            self._close(1001, f"idle for {idle:g} s")
        else:
            self._arm_idle_timer(max(idle - quiet, 0.05) if not self.busy else idle)
