"""The OpenEnv-compatible server over the wire: every message type and error code on a raw
WebSocket, the HTTP routes, the token, capacity, and 64 concurrent seeded sessions each equal
to a local reference (ale-py's emulator driven as OpenEnv's Atari server drives it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess

import ale_py
import httpx
import numpy as np
import pytest
import websockets
from server_harness import TRANSPORTS, serve
from websockets.sync.client import connect

ALL_ROUTES = [("GET", "/state"), ("POST", "/reset"), ("POST", "/step"), ("GET", "/metadata"),
              ("GET", "/schema"), ("GET", "/openapi.json"), ("POST", "/mcp"), ("GET", "/web"),
              ("GET", "/web/api/sessions"), ("GET", "/docs")]


def ws_url(url: str, query: str = "") -> str:
    return url.replace("http://", "ws://") + "/ws" + query


@contextlib.contextmanager
def fresh_session(url: str, attempts: int = 100):
    """A session, waiting (bounded) for a slot being freed: a slot is reset, then freed."""
    for _ in range(attempts):
        with connect(ws_url(url)) as ws:
            try:
                refused = json.loads(ws.recv(timeout=0.2))
            except TimeoutError:  # no capacity error: a session
                yield ws
                return
            assert refused["data"]["code"] == "CAPACITY_REACHED", refused
    raise AssertionError("no slot was freed")


def ask(ws, message) -> dict:
    ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))
    return json.loads(ws.recv(timeout=30))


@pytest.fixture(scope="module", params=TRANSPORTS)
def server(request):
    """Both transports of sessions: fastws.py (what atari-vec-serve runs) and the ASGI route."""
    with serve(request.param, game="pong", max_concurrent_envs=3, max_message_bytes=4096) as url:
        yield url


def test_every_message_type_and_error_code(server):
    with connect(ws_url(server), max_size=None) as ws:
        state = ask(ws, {"type": "state"})
        assert state["type"] == "state" and state["data"]["episode_id"] is None
        assert set(state["data"]) == {"episode_id", "step_count", "game_name", "obs_type",
                                      "full_action_space", "mode", "difficulty",
                                      "repeat_action_probability", "frameskip"}
        reply = ask(ws, {"type": "reset", "data": {"seed": 11}})
        assert reply["type"] == "observation"
        data = reply["data"]
        assert data["reward"] == 0.0 and data["done"] is False
        obs = data["observation"]
        assert obs["screen_shape"] == [210, 160, 3] and len(obs["screen"]) == 210 * 160 * 3
        assert obs["legal_actions"] == list(range(6))
        assert obs["metadata"] == data["metadata"] == {
            "game_name": "pong",
            "action_meanings": ["Action.NOOP", "Action.FIRE", "Action.RIGHT", "Action.LEFT",
                                "Action.RIGHTFIRE", "Action.LEFTFIRE"]}
        assert obs["episode_frame_number"] == 0
        reply = ask(ws, {"type": "reset"})  # data is optional
        assert reply["type"] == "observation"
        step = ask(ws, {"type": "step", "data": {"action_id": 2, "game_name": "ignored"}})
        assert step["type"] == "observation" and step["data"]["observation"]["episode_frame_number"] == 4
        assert ask(ws, {"type": "state"})["data"]["step_count"] == 1

        def error(message, code):
            reply = ask(ws, message)
            assert reply["type"] == "error", reply
            assert reply["data"]["code"] == code, reply
            return reply["data"]

        error("{not json", "INVALID_JSON")
        error(b"\xff\xfe", "INVALID_JSON")
        error("[1, 2]", "UNKNOWN_TYPE")
        error("3", "UNKNOWN_TYPE")
        error({"data": {}}, "UNKNOWN_TYPE")
        error({"type": "jump"}, "UNKNOWN_TYPE")
        error({"type": 7}, "UNKNOWN_TYPE")
        error({"type": "step"}, "VALIDATION_ERROR")
        error({"type": "step", "data": [1]}, "VALIDATION_ERROR")
        error({"type": "step", "data": {"action_id": "x"}}, "VALIDATION_ERROR")
        error({"type": "step", "data": {"action_id": 2.5}}, "VALIDATION_ERROR")
        error({"type": "step", "data": {"action_id": 1, "extra": 1}}, "VALIDATION_ERROR")
        error({"type": "step", "data": {"action_id": 1, "obs_type": "depth"}}, "VALIDATION_ERROR")
        error({"type": "state", "data": {}}, "VALIDATION_ERROR")
        error({"type": "reset", "data": {"seed": -1}}, "VALIDATION_ERROR")
        error({"type": "reset", "data": {"seed": 2**31}}, "VALIDATION_ERROR")
        error({"type": "reset", "data": {"seed": "abc"}}, "VALIDATION_ERROR")
        error({"type": "reset", "data": "seed"}, "VALIDATION_ERROR")
        error({"type": "reset", "x": 1}, "VALIDATION_ERROR")
        assert "Valid range: [0, 5]" in error({"type": "step", "data": {"action_id": 6}},
                                             "EXECUTION_ERROR")["message"]
        error({"type": "step", "data": {"action_id": -1}}, "EXECUTION_ERROR")
        error({"type": "step", "data": {"action_id": 10**30}}, "VALIDATION_ERROR")  # past int64
        error("[" * 1500 + "]" * 1500, "INVALID_JSON")  # nesting deeper than the parser takes
        # nothing above changed the session: it goes on from where it was
        state = ask(ws, {"type": "state"})["data"]
        assert state["step_count"] == 1
        step = ask(ws, {"type": "step", "data": {"action_id": "3"}})  # lax, as OpenEnv: "3" -> 3
        assert step["data"]["observation"]["episode_frame_number"] == 8
        mcp = ask(ws, {"type": "mcp", "data": {"jsonrpc": "2.0", "method": "tools/list", "id": 7}})
        assert mcp == {"type": "mcp", "data": {"jsonrpc": "2.0", "id": 7, "error": {
            "code": -32603, "message": "Environment does not support MCP", "data": None}}}
        ws.send(json.dumps({"type": "close"}))
        with pytest.raises(websockets.ConnectionClosedOK):  # no reply, a normal close
            ws.recv(timeout=30)
        assert ws.close_code == 1000


def test_oversized_message_closes_only_its_own_session(server):
    with connect(ws_url(server)) as other:
        ask(other, {"type": "reset", "data": {"seed": 1}})
        with connect(ws_url(server)) as ws:
            ws.send("x" * 5000)  # over max_message_bytes=4096
            with pytest.raises(websockets.ConnectionClosedError):
                ws.recv(timeout=30)
            assert ws.close_code == 1009  # message too big
        step = ask(other, {"type": "step", "data": {"action_id": 0}})
        assert step["type"] == "observation"
    r = httpx.post(server + "/reset", content=b"{" + b" " * 5000 + b"}",
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413


def test_http_routes(server):
    c = httpx.Client(base_url=server, timeout=30)
    assert c.get("/health").json() == {"status": "healthy"}
    r = c.post("/reset")  # no body at all
    assert r.status_code == 200 and r.json()["reward"] == 0.0 and r.json()["done"] is False
    assert r.json()["observation"]["screen_shape"] == [210, 160, 3]
    seeded = [c.post("/reset", json={"seed": 5}).json() for _ in range(2)]
    assert seeded[0] == seeded[1]
    # Stateless, as OpenEnv 0.10: each /step plays on a fresh game.
    steps = [c.post("/step", json={"action": {"action_id": 1}}).json() for _ in range(2)]
    assert [s["observation"]["episode_frame_number"] for s in steps] == [4, 4]
    state = c.get("/state").json()
    assert state["step_count"] == 0 and state["episode_id"] is None and state["frameskip"] == 4
    assert c.post("/step", json={"action": {"action_id": 9}}).status_code == 422
    assert c.post("/step", json={"action": {"bad": 1}}).status_code == 422
    assert c.post("/step", json={}).status_code == 422
    assert c.post("/reset", json={"seed": -3}).status_code == 422
    assert c.post("/reset", content=b"{oops", headers={"content-type": "application/json"}).status_code == 422
    assert c.post("/reset", json=[1]).status_code == 422
    meta = c.get("/metadata").json()
    assert isinstance(meta["name"], str) and isinstance(meta["description"], str)
    schema = c.get("/schema").json()
    assert schema["action"]["required"] == ["action_id"]
    assert {"screen", "screen_shape", "legal_actions"} <= set(schema["observation"]["properties"])
    assert "frameskip" in schema["state"]["properties"]
    api = c.get("/openapi.json").json()
    assert api["info"]["version"] == "1.0.0"
    assert {"/reset", "/step", "/state", "/health", "/schema", "/metadata", "/mcp"} <= set(api["paths"])
    mcp = c.post("/mcp", json={}).json()
    assert mcp["jsonrpc"] == "2.0" and mcp["error"]["code"] == -32600
    assert c.post("/mcp", content=b"{").json()["error"]["code"] == -32700
    assert "<canvas" in c.get("/web").text


def test_seed_readme_curl_commands():
    """The seed README's curl commands, against a server on this port, do what it says."""
    with serve(game="breakout", max_concurrent_envs=1) as url:
        health = subprocess.run(["curl", "-sS", url + "/health"], capture_output=True, text=True,
                                timeout=60, check=True)
        assert json.loads(health.stdout) == {"status": "healthy"}
        reset = subprocess.run(["curl", "-sS", "-X", "POST", url + "/reset"], capture_output=True,
                               text=True, timeout=60, check=True)
        body = json.loads(reset.stdout)
        assert body["observation"]["metadata"]["game_name"] == "breakout" and body["done"] is False


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_token_refuses_everyone_else(transport):
    with serve(transport, game="pong", max_concurrent_envs=1, api_key="s3cret") as url:
        c = httpx.Client(base_url=url, timeout=30)
        assert c.get("/health").status_code == 200
        for method, path in ALL_ROUTES:
            assert c.request(method, path).status_code == 401, path
            bad = c.request(method, path, headers={"Authorization": "Bearer wrong"})
            assert bad.status_code == 401, path
        good = {"Authorization": "Bearer s3cret"}
        assert c.post("/reset", headers=good).status_code == 200
        assert c.get("/web?token=s3cret").status_code == 200
        with pytest.raises(websockets.InvalidStatus) as refused:
            connect(ws_url(url))
        assert refused.value.response.status_code == 403
        with connect(ws_url(url), additional_headers=good) as ws:
            assert ask(ws, {"type": "reset"})["type"] == "observation"


def test_capacity_and_freed_slots(server):
    """Past max_concurrent_envs (3 here) a connection gets CAPACITY_REACHED and is closed;
    a session that ends frees its slot, and the next session starts on a fresh game."""
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(connect(ws_url(server))) for _ in range(3)]
        for ws in opened:
            ask(ws, {"type": "reset"})
        for _ in range(20):
            ask(opened[0], {"type": "step", "data": {"action_id": 0}})
        with connect(ws_url(server)) as extra:
            reply = json.loads(extra.recv(timeout=30))
            assert reply["data"]["code"] == "CAPACITY_REACHED"
            assert (reply["data"]["active_sessions"], reply["data"]["max_sessions"]) == (3, 3)
            with pytest.raises(websockets.ConnectionClosedOK):
                extra.recv(timeout=30)
        opened[0].close()
        with fresh_session(server) as ws:
            # Before its first reset it shows a fresh game, not the last session's.
            step = ask(ws, {"type": "step", "data": {"action_id": 0}})
            assert step["data"]["observation"]["episode_frame_number"] == 4


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_idle_sessions_are_closed(transport):
    with serve(transport, game="pong", max_concurrent_envs=1, idle_timeout_s=0.5) as url:
        with connect(ws_url(url)) as ws:
            ask(ws, {"type": "reset"})
            with pytest.raises(websockets.ConnectionClosed):
                ws.recv(timeout=30)
            assert ws.close_code == 1001
        with fresh_session(url) as ws:  # its slot is free again
            assert ask(ws, {"type": "reset"})["type"] == "observation"


class Reference:
    """One OpenEnv session as the reference server plays it: ale-py's emulator, each step the
    action repeated frameskip times, stopping at game over. Seeded resets seed as
    gym.make(<ale-py id>).reset(seed=s) does; unseeded ones continue the emulator's RNG."""

    def __init__(self, game, obs_type, frameskip, sticky):
        self.env = ale_py.AtariEnv(game, obs_type=obs_type, frameskip=1,
                                   repeat_action_probability=sticky, max_num_frames_per_episode=0)
        self.frameskip = frameskip
        self.obs_type = obs_type
        self.actions = self.env._action_set

    def observe(self, reward):
        ale = self.env.ale
        screen = ale.getRAM() if self.obs_type == "ram" else ale.getScreenRGB()
        return (screen.reshape(-1).tolist(), float(reward), ale.game_over(), ale.lives(),
                ale.getEpisodeFrameNumber(), ale.getFrameNumber())

    def reset(self, seed):
        if seed is None:
            self.env.ale.reset_game()
        else:
            self.env.reset(seed=seed)
        return self.observe(0.0)

    def step(self, a):
        total = 0
        if not self.env.ale.game_over():
            for _ in range(self.frameskip):
                total += self.env.ale.act(self.actions[a])
                if self.env.ale.game_over():
                    break
        return self.observe(total)


def as_tuple(reply):
    d = reply["data"]
    o = d["observation"]
    return (o["screen"], d["reward"], d["done"], o["lives"], o["episode_frame_number"],
            o["frame_number"])


def test_64_concurrent_seeded_sessions_match_the_reference():
    """64 sessions step at once (random actions, sticky actions on, seeded and unseeded
    resets, games played to their end and stepped past it); every reply of every session
    equals the reference's, field for field."""
    sessions, steps = 64, 260
    with serve(game="breakout", obs_type="ram", repeat_action_probability=0.25,
               max_concurrent_envs=sessions) as url:

        async def play(i):
            rng = np.random.default_rng(i)
            log = []
            async with websockets.connect(ws_url(url)) as ws:
                async def send(message):
                    await ws.send(json.dumps(message))
                    return json.loads(await asyncio.wait_for(ws.recv(), 60))

                seed = 1000 + i
                log.append(("reset", seed, await send({"type": "reset", "data": {"seed": seed}})))
                over = 0
                for _ in range(steps):
                    if over >= 2 or rng.random() < 0.01:
                        seed = int(rng.integers(0, 2**31 - 1)) if rng.random() < 0.5 else None
                        data = {} if seed is None else {"seed": seed}
                        log.append(("reset", seed, await send({"type": "reset", "data": data})))
                        over = 0
                        continue
                    a = int(rng.integers(0, 4))
                    reply = await send({"type": "step", "data": {"action_id": a}})
                    log.append(("step", a, reply))
                    over += reply["data"]["done"]
            return log

        async def main():
            return await asyncio.gather(*(play(i) for i in range(sessions)))

        logs = asyncio.run(main())
    ended = 0
    for i, log in enumerate(logs):
        ref = Reference("breakout", "ram", 4, 0.25)
        for t, (kind, arg, reply) in enumerate(log):
            assert reply["type"] == "observation", reply
            expected = ref.reset(arg) if kind == "reset" else ref.step(arg)
            assert as_tuple(reply) == expected, f"session {i}, event {t} ({kind} {arg})"
            ended += kind == "step" and reply["data"]["done"]
    assert ended >= 20, f"only {ended} game-over steps: the test would not see game over"
