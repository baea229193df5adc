"""The sessions' lean WebSocket protocol (atari_vec/server/fastws.py) at the frame level, on a
raw socket: the handshake and its refusals, fragments, ping/pong, binary messages, pipelined
requests (past the point where the server stops reading), the closing handshake, and every
protocol violation closing with its RFC 6455 code while other sessions go on."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import threading
import time

import pytest
from server_harness import serve

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Raw:
    """A WebSocket client written out by hand, so that it can also break the rules."""

    def __init__(self, url: str, path: str = "/ws", version: str = "13", key: str | None = None,
                 method: str = "GET", extra: str = ""):
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        request = (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Version: {version}\r\n"
                   + (f"Sec-WebSocket-Key: {self.key}\r\n" if self.key else "") + extra + "\r\n")
        self.sock.sendall(request.encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in
                        (line.decode().partition(":") for line in head.split(b"\r\n")[1:])}

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True,
             rsv: int = 0) -> None:
        n = len(payload)
        b0 = (0x80 if fin else 0) | rsv << 4 | opcode
        if n < 126:
            head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def text(self, message) -> None:
        self.send(0x1, (message if isinstance(message, str) else json.dumps(message)).encode())

    def frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = self._exactly(2)
        assert not b1 & 0x80, "server frames are not masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._exactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._exactly(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._exactly(n)

    def reply(self) -> dict:
        fin, opcode, payload = self.frame()
        assert (fin, opcode) == (True, 0x1), (fin, opcode, payload[:200])
        return json.loads(payload)

    def close_code(self) -> int:
        """The code of the server's close frame; then the server closes the connection."""
        while True:
            _, opcode, payload = self.frame()
            if opcode == 0x8:
                break
        self.send(0x8, payload[:2])
        assert self.sock.recv(1) == b"", "the server closes the TCP connection after closing"
        return struct.unpack("!H", payload[:2])[0]


@pytest.fixture(scope="module")
def server():
    with serve("native", game="pong", obs_type="ram", max_concurrent_envs=3,
               max_message_bytes=4096) as url:
        yield url


def test_handshake_accept_and_refusals(server):
    ws = Raw(server)
    assert ws.status == 101 and ws.headers["upgrade"].lower() == "websocket"
    expected = base64.b64encode(hashlib.sha1(ws.key.encode() + GUID).digest()).decode()
    assert ws.headers["sec-websocket-accept"] == expected
    assert "sec-websocket-extensions" not in ws.headers  # deflate offers are declined
    ws.text({"type": "reset"})
    assert ws.reply()["type"] == "observation"
    assert Raw(server, path="/nowhere").status == 404
    assert Raw(server, key="").status == 400
    assert Raw(server, key="c2hvcnQ=").status == 400  # not 16 bytes
    refused = Raw(server, version="8")
    assert refused.status == 426 and refused.headers["sec-websocket-version"] == "13"
    assert Raw(server, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n").status == 101


def test_fragments_ping_binary_and_close(server):
    ws = Raw(server)
    message = json.dumps({"type": "reset", "data": {"seed": 3}}).encode()
    ws.send(0x1, message[:5], fin=False)
    ws.send(0x9, b"are you there")  # a control frame between fragments
    ws.send(0x0, message[5:12], fin=False)
    ws.send(0x0, message[12:])
    assert ws.frame() == (True, 0xA, b"are you there")
    first = ws.reply()
    assert first["type"] == "observation" and first["data"]["reward"] == 0.0
    ws.send(0x2, message)  # a binary frame holding JSON is a request too
    assert ws.reply()["data"]["observation"]["screen"] == first["data"]["observation"]["screen"]
    ws.send(0x8, struct.pack("!H", 1000) + b"bye")
    assert ws.frame() == (True, 0x8, struct.pack("!H", 1000))
    assert ws.sock.recv(1) == b""


def test_pipelined_requests_are_answered_in_order(server):
    """2,000 steps sent before reading one reply: the server stops reading while its inbox is
    full and the socket's buffers fill up, then answers every one, in order."""
    ws = Raw(server)
    ws.text({"type": "reset", "data": {"seed": 1}})
    ws.reply()
    n = 2000
    batch = b"".join(_masked_text(json.dumps({"type": "step", "data": {"action_id": i % 6}}))
                     for i in range(n))
    sender = threading.Thread(target=ws.sock.sendall, args=(batch,))  # may block: replies wait
    sender.start()
    time.sleep(0.5)  # not needed for correctness: lets the requests pile up before reading
    frames = [ws.reply()["data"]["observation"]["episode_frame_number"] for _ in range(n)]
    sender.join(timeout=30)
    done_at = next((i for i in range(1, n) if frames[i] == frames[i - 1]), n)
    assert frames[:done_at] == [4 * (i + 1) for i in range(done_at)]
    ws.text({"type": "state"})
    assert ws.reply()["data"]["step_count"] == n


def _masked_text(text: str) -> bytes:
    return _masked(0x1, text.encode())


@pytest.mark.parametrize("violation, code", [
    ("unmasked", 1002), ("reserved bits", 1002), ("unknown opcode", 1002),
    ("continuation first", 1002), ("long ping", 1002), ("fragmented ping", 1002),
    ("new message inside fragments", 1002), ("bad close code", 1002),
    ("text not UTF-8", 1007), ("too large", 1009), ("too large in fragments", 1009),
])
def test_violations_close_with_their_code_and_others_go_on(server, violation, code):
    other = Raw(server)
    other.text({"type": "reset", "data": {"seed": 2}})
    other.reply()
    ws = Raw(server)
    if violation == "unmasked":
        ws.send(0x1, b'{"type":"state"}', mask=False)
    elif violation == "reserved bits":
        ws.send(0x1, b'{"type":"state"}', rsv=4)
    elif violation == "unknown opcode":
        ws.send(0x3, b"x")
    elif violation == "continuation first":
        ws.send(0x0, b'{"type":"state"}')
    elif violation == "long ping":
        ws.send(0x9, b"x" * 126)
    elif violation == "fragmented ping":
        ws.send(0x9, b"x", fin=False)
    elif violation == "new message inside fragments":
        ws.send(0x1, b'{"type":', fin=False)
        ws.send(0x1, b'{"type":"state"}')
    elif violation == "bad close code":
        ws.send(0x8, struct.pack("!H", 1005))
    elif violation == "text not UTF-8":
        ws.send(0x1, b'{"type":"\xff"}')
    elif violation == "too large":
        ws.send(0x1, b" " * 5000)  # over max_message_bytes=4096
    elif violation == "too large in fragments":
        for _ in range(5):
            ws.send(0x1 if _ == 0 else 0x0, b" " * 1000, fin=False)
    assert ws.close_code() == code
    other.text({"type": "step", "data": {"action_id": 1}})
    assert other.reply()["data"]["observation"]["episode_frame_number"] == 4


def test_close_codes_a_client_may_send_are_echoed(server):
    for code in (1000, 1001, 1012, 1014, 3000, 4999):
        ws = Raw(server)
        ws.send(0x8, struct.pack("!H", code))
        assert ws.frame() == (True, 0x8, struct.pack("!H", code)), code
        assert ws.sock.recv(1) == b""


def test_a_key_outside_ascii_is_refused_with_400(server):
    assert Raw(server, key="\u00e9" * 24).status == 400


def test_endless_empty_fragments_are_refused(server):
    ws = Raw(server)
    ws.send(0x1, b"", fin=False)
    ws.sock.sendall(b"".join(_masked(0x0, b"", fin=False) for _ in range(2000)))
    assert ws.close_code() == 1009


def test_an_input_that_breaks_the_handler_fails_alone(server):
    """A reset whose data nests 1,020 lists deep (the JSON parser takes it; showing it in the
    error once recursed past Python's limit), sent right behind a step: both get a reply,
    and this session and the others go on (the pool is not taken for failed)."""
    other = Raw(server)
    other.text({"type": "reset", "data": {"seed": 4}})
    other.reply()
    ws = Raw(server)
    ws.text({"type": "reset", "data": {"seed": 4}})
    ws.reply()
    deep = '{"type":"reset","data":' + "[" * 1020 + "]" * 1020 + "}"
    ws.sock.sendall(_masked(0x1, b'{"type":"step","data":{"action_id":0}}') + _masked(0x1, deep.encode()))
    assert ws.reply()["type"] == "observation"
    error = ws.reply()
    assert error["type"] == "error" and error["data"]["code"] == "VALIDATION_ERROR", error
    ws.text({"type": "step", "data": {"action_id": 0}})
    assert ws.reply()["data"]["observation"]["episode_frame_number"] == 8
    other.text({"type": "step", "data": {"action_id": 0}})
    assert other.reply()["type"] == "observation"


def _masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    head = (struct.pack("!BB", b0, 0x80 | n) if n < 126 else struct.pack("!BBH", b0, 0x80 | 126, n)
            if n < 65536 else struct.pack("!BBQ", b0, 0x80 | 127, n))
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


STEP = {"type": "step", "data": {"action_id": 0}}


@pytest.fixture
def polled_reads(monkeypatch):
    """Every read of the lone-session poll: the byte count, or -1 for none waiting."""
    from atari_vec.server import fastws

    calls: list[int] = []
    real = fastws._read_fd

    def read(fd, n):
        try:
            data = real(fd, n)
        except BlockingIOError:
            calls.append(-1)
            raise
        calls.append(len(data))
        return data

    monkeypatch.setattr(fastws, "_read_fd", read)
    return calls


def test_a_lone_session_is_polled_and_two_are_not(polled_reads):
    """One session: its next request is read by the poll after each reply (a 50 ms window
    here; the client waits 5 ms before each request, so that the poll has begun and the
    request does not come through the transport's own read first). A second session open:
    no poll at all, and both go on being answered."""
    with serve("native", game="pong", obs_type="ram", max_concurrent_envs=2,
               poll_us=50_000) as url:
        a = Raw(url)
        a.text({"type": "reset"})
        a.reply()
        for _ in range(50):
            time.sleep(0.005)
            a.text(STEP)
            assert a.reply()["type"] == "observation"
        assert sum(n > 0 for n in polled_reads) >= 45  # the reset's reply starts the first
        b = Raw(url)
        b.text({"type": "reset"})
        assert b.reply()["type"] == "observation"
        time.sleep(0.1)  # a poll begun before b's session opened has ended by now
        before = len(polled_reads)
        for _ in range(30):
            a.text(STEP)
            b.text(STEP)
            assert a.reply()["type"] == b.reply()["type"] == "observation"
        assert len(polled_reads) == before


def test_no_poll_when_told_not_to(polled_reads):
    with serve("native", game="pong", obs_type="ram", max_concurrent_envs=1, poll_us=0) as url:
        a = Raw(url)
        a.text({"type": "reset"})
        a.reply()
        for _ in range(20):
            a.text(STEP)
            assert a.reply()["type"] == "observation"
        assert polled_reads == []


def test_a_client_gone_during_the_poll_frees_its_slot(polled_reads):
    """The poll reads the end of the stream: it leaves it to the transport, which ends the
    session and frees the only slot for the next client."""
    with serve("native", game="pong", obs_type="ram", max_concurrent_envs=1,
               poll_us=100_000) as url:
        for _ in range(3):
            a = Raw(url)
            a.text({"type": "reset"})
            assert a.reply()["type"] == "observation"
            a.text(STEP)
            assert a.reply()["type"] == "observation"
            time.sleep(0.005)  # the poll has begun
            a.sock.close()  # no close frame: the poll sees the end of the stream
            time.sleep(0.05)
        assert 0 in polled_reads
        b = Raw(url)
        b.text({"type": "reset"})
        assert b.reply()["type"] == "observation"  # not CAPACITY_REACHED
