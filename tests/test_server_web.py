"""The server's web page (/web) in a real headless browser.

Chromium (Debian's ``chromium``) runs headless and is driven over the Chrome DevTools Protocol
with the ``websockets`` package, so no browser-automation package is needed. The tests load
the page from an in-process server and check what a person would see: Pong on the canvas
(in a screenshot), the game moving on a key press, the grid of active sessions, and the page
behind a token. Chromium is required: without it the tests fail (CI installs it).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

try:
    import uvicorn
    import websockets.sync.client as ws_client
    from PIL import Image
    from websockets.exceptions import InvalidStatus

    from atari_vec.registration import make_raw_vec
    from atari_vec.server import ServerConfig, create_app
except ImportError as e:  # pragma: no cover - the [server] extra and pillow are test dependencies
    raise ImportError(f"test_server_web needs atari_vec[server], websockets and pillow: {e}") from e

pytestmark = pytest.mark.timeout(120)

FRAMESKIP = 4  # ServerConfig's default, used by every server here
WAIT_S = 10.0  # the longest any single condition is waited for
BROWSER_START_S = 30.0
TOKEN = "s3cret"


# -- Chromium over the DevTools Protocol ------------------------------------------------------


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("the web page tests need Debian's `chromium` on PATH (apt-get install chromium); "
                "it was not found. These tests are not skipped: CI must install it.", pytrace=False)


class CDP:
    """A minimal synchronous DevTools Protocol client on one target's WebSocket."""

    def __init__(self, url: str):
        # Entered as a context manager (websockets >= 17.1 deprecates plain connect()).
        self.conn = ws_client.connect(url, max_size=None, open_timeout=WAIT_S).__enter__()
        self.next_id = 0

    def call(self, method: str, timeout: float = WAIT_S, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        msg_id = self.next_id
        self.conn.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {method} within {timeout} s")
            message = json.loads(self.conn.recv(timeout=remaining))
            if message.get("id") != msg_id:
                continue  # an event, or a reply to an earlier call that timed out
            if "error" in message:
                raise RuntimeError(f"{method} failed: {message['error']}")
            return message.get("result", {})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class Browser:
    """Headless Chromium with remote debugging on a port it picks itself."""

    def __init__(self) -> None:
        exe = chromium_path()
        self.dir = tempfile.mkdtemp(prefix="atari_vec_chromium_")
        self.log = open(os.path.join(self.dir, "chromium.log"), "wb")  # noqa: SIM115 (closed in stop)
        profile = os.path.join(self.dir, "profile")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--disable-component-update", "--disable-default-apps", "--mute-audio",
             "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
             "--disable-backgrounding-occluded-windows", "--hide-scrollbars",
             "--window-size=1000,1100", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: stop() ends renderers too
        self.cdp: CDP | None = None
        try:
            active = os.path.join(profile, "DevToolsActivePort")
            deadline = time.monotonic() + BROWSER_START_S
            lines: list[str] = []
            while len(lines) < 2:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"chromium exited with {self.proc.returncode}: {self.output()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"chromium wrote no DevToolsActivePort within "
                                       f"{BROWSER_START_S} s: {self.output()}")
                with contextlib.suppress(FileNotFoundError), open(active) as f:
                    lines = f.read().split()
                time.sleep(0.05)
            self.port = int(lines[0])
            self.cdp = CDP(f"ws://127.0.0.1:{self.port}{lines[1]}")  # the browser target
        except BaseException:
            self.stop()
            raise

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")

    def targets(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json", timeout=WAIT_S) as r:
            return json.load(r)

    @contextlib.contextmanager
    def page(self, url: str) -> Iterator[Page]:
        """A new tab at about:blank, navigated to `url`; closed on exit (which ends its
        WebSocket session on the server)."""
        assert self.cdp is not None
        target_id = self.cdp.call("Target.createTarget", url="about:blank")["targetId"]
        page = None
        try:
            entry = next(t for t in self.targets() if t.get("id") == target_id)
            assert entry["type"] == "page", entry
            page = Page(entry["webSocketDebuggerUrl"])
            self.cdp.call("Target.activateTarget", targetId=target_id)
            page.open(url)
            yield page
        finally:
            if page is not None:
                page.close()
            with contextlib.suppress(Exception):
                self.cdp.call("Target.closeTarget", targetId=target_id)

    def stop(self) -> None:
        if self.cdp is not None:
            with contextlib.suppress(Exception):
                self.cdp.call("Browser.close", timeout=5)
            self.cdp.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # Renderers and helpers left in our own process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Page:
    """One tab: navigate, evaluate JavaScript, press keys, take screenshots."""

    def __init__(self, ws_url: str):
        self.cdp = CDP(ws_url)
        self.cdp.call("Page.enable")
        self.cdp.call("Runtime.enable")
        # A fixed viewport so the whole 480x630 play canvas is on screen.
        self.cdp.call("Emulation.setDeviceMetricsOverride", width=1000, height=1100,
                      deviceScaleFactor=1, mobile=False)

    def open(self, url: str) -> None:
        result = self.cdp.call("Page.navigate", url=url)
        assert not result.get("errorText"), f"navigating to {url}: {result}"
        self.wait_for("document.readyState === 'complete'", f"{url} to load")
        self.cdp.call("Page.bringToFront")

    def js(self, expression: str) -> Any:
        result = self.cdp.call("Runtime.evaluate", expression=expression, returnByValue=True,
                               awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = WAIT_S) -> Any:
        """Poll `expression` until it is truthy; fail with `what` and the page's status."""
        return wait_until(lambda: self.js(expression), what, timeout, self.status)

    def status(self) -> str:
        with contextlib.suppress(Exception):
            return str(self.js("({steps: document.getElementById('steps').textContent, "
                               "frame: document.getElementById('frame').textContent, "
                               "done: document.getElementById('done').textContent, "
                               "grid: document.querySelectorAll('#grid figure').length})"))
        return "(page status unavailable)"

    def text(self, element_id: str) -> str:
        return self.js(f"document.getElementById({json.dumps(element_id)}).textContent")

    def frame(self) -> int:
        """The episode frame number #frame shows."""
        text = self.text("frame")
        assert text.startswith("frame "), text
        return int(text.split()[1])

    def press(self, key: str = "ArrowUp", code: int = 38) -> None:
        common = {"key": key, "code": key, "windowsVirtualKeyCode": code,
                  "nativeVirtualKeyCode": code}
        self.cdp.call("Input.dispatchKeyEvent", type="keyDown", **common)
        self.cdp.call("Input.dispatchKeyEvent", type="keyUp", **common)

    def canvas_pixels(self, selector: str = "#screen") -> np.ndarray:
        """The canvas's own pixels (getImageData), as RGB height x width x 3."""
        value = self.js(f"""(() => {{
            const c = document.querySelector({json.dumps(selector)});
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height);
            let s = ""; for (let i = 0; i < d.data.length; i++) s += String.fromCharCode(d.data[i]);
            return [c.width, c.height, btoa(s)];
        }})()""")
        w, h, data = value
        rgba = np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)
        return rgba[..., :3].copy()

    def screenshot_of(self, selector: str) -> np.ndarray:
        """The element as the screen shows it: a PNG screenshot, cropped to its bounding rect
        (scaled by the screenshot's pixels per CSS pixel), as RGB."""
        rect = self.js(f"""(() => {{
            const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
            return {{x: r.left, y: r.top, w: r.width, h: r.height, iw: window.innerWidth,
                     dpr: window.devicePixelRatio}};
        }})()""")
        png = base64.b64decode(self.cdp.call("Page.captureScreenshot", format="png")["data"])
        image = Image.open(io.BytesIO(png)).convert("RGB")
        scale = image.width / rect["iw"]  # = devicePixelRatio when the viewport is not zoomed
        assert abs(scale - rect["dpr"]) < 0.01, (scale, rect)
        box = tuple(round(v * scale) for v in (rect["x"], rect["y"], rect["x"] + rect["w"],
                                                 rect["y"] + rect["h"]))
        assert 0 <= box[0] < box[2] <= image.width and 0 <= box[1] < box[3] <= image.height, \
            f"canvas {box} not inside the {image.size} screenshot"
        return np.asarray(image.crop(box))

    def close(self) -> None:
        self.cdp.close()


def wait_until(poll: Callable[[], Any], what: str, timeout: float = WAIT_S,
               describe: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = poll()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; {describe()}")
        time.sleep(0.05)


# -- the server ---------------------------------------------------------------------------------


class Server:
    """create_app on a uvicorn server in a thread, on a port the OS picks."""

    def __init__(self, **config: Any):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        cfg = ServerConfig(max_concurrent_envs=4, port=self.port, game="pong", **config)
        assert cfg.frameskip == FRAMESKIP
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(cfg), host="127.0.0.1", port=self.port, log_level="warning",
            lifespan="on", ws_max_size=cfg.max_message_bytes, timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True, name="uvicorn-web-test")
        self.thread.start()
        try:
            wait_until(lambda: self.server.started or not self.thread.is_alive(),
                       "the server to start")
            assert self.server.started, "the server thread ended before it started"
        except BaseException:
            self.stop()
            raise

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=WAIT_S) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the server did not stop within 15 s"
        self.sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def token_server() -> Iterator[Server]:
    s = Server(api_key=TOKEN)
    try:
        yield s
    finally:
        s.stop()


def main_colours(frame: np.ndarray) -> np.ndarray:
    """A frame's colours that cover at least 1% of it, most common first."""
    assert frame.shape == (210, 160, 3), frame.shape
    colours, counts = np.unique(frame.reshape(-1, 3), axis=0, return_counts=True)
    order = np.argsort(-counts)
    return colours[order][counts[order] >= 0.01 * counts.sum()]


@pytest.fixture(scope="module")
def pong_colours() -> dict[str, np.ndarray]:
    """Pong's playfield colours, most common first, from real frames: "reset" from the reset
    frame (Pong shows it in other colours, as ALE does) and "play" from the next step's."""
    env = make_raw_vec("pong", 1)
    try:
        reset = np.asarray(env.reset(seed=0)[0][0])
        play = np.asarray(env.step(np.zeros(1, np.int64))[0][0])
    finally:
        env.close()
    return {"reset": main_colours(reset), "play": main_colours(play)}


def wait_for_reset(page: Page) -> None:
    """The page has opened its session and drawn the reset's reply (#lives is only written
    from a reply; #frame reads 0 before and after it)."""
    page.wait_for("document.getElementById('lives').textContent.startsWith('lives ')",
                  "the reset's reply (#lives filled in)")
    assert page.frame() == 0, page.status()


def press_and_wait(page: Page) -> int:
    """Press ArrowUp once; wait until #frame shows its reply; return the new frame number."""
    before = page.frame()
    page.press("ArrowUp", 38)
    wait_until(lambda: page.frame() != before, "#frame to advance after a key press",
               WAIT_S, page.status)
    after = page.frame()
    assert after == before + FRAMESKIP, \
        f"one key press took #frame from {before} to {after}, not by one step of {FRAMESKIP}"
    return after


def colour_fractions(pixels: np.ndarray, colours: np.ndarray, tol: int = 6) -> np.ndarray:
    """The fraction of `pixels` within `tol` (per channel) of each of `colours`."""
    flat = pixels.reshape(-1, 1, 3).astype(np.int16)
    near = (np.abs(flat - colours.reshape(1, -1, 3).astype(np.int16)) <= tol).all(axis=2)
    return near.mean(axis=0)


# -- the tests ----------------------------------------------------------------------------------


def test_play_page_shows_pong(browser: Browser, server: Server,
                              pong_colours: dict[str, np.ndarray]) -> None:
    """/web?play=1 resets a session at load, and the screenshot shows Pong on the canvas."""
    with browser.page(server.url("/web?play=1")) as page:
        wait_for_reset(page)
        assert page.js("document.getElementById('game').textContent") == "pong (rgb)"
        assert page.js("[document.getElementById('screen').width, "
                       "document.getElementById('screen').height]") == [160, 210]
        shot = page.screenshot_of("#screen")
        # The play canvas is drawn 3x (480x630 CSS pixels).
        dpr = page.js("window.devicePixelRatio")
        assert abs(shot.shape[1] - 480 * dpr) <= 2 and abs(shot.shape[0] - 630 * dpr) <= 2, shot.shape
        colours = pong_colours["reset"]
        fractions = colour_fractions(shot, colours)
        # Pong's background fills most of the screen, its second colour (the bars) a tenth.
        assert fractions[0] > 0.5, f"Pong's background {colours[0]} covers {fractions[0]:.3f}"
        assert fractions[1] > 0.05, f"Pong's colour {colours[1]} covers {fractions[1]:.3f}"
        assert fractions.sum() > 0.95, \
            f"only {fractions.sum():.3f} of the canvas is in Pong's colours {colours.tolist()}"


def test_key_press_steps_the_game(browser: Browser, server: Server) -> None:
    """Each key press sends one step: #frame advances by the frameskip, and the canvas shows
    the session's new screen (the very pixels the server holds)."""
    with browser.page(server.url("/web?play=1")) as page:
        wait_for_reset(page)
        first = page.canvas_pixels()
        assert first.shape == (210, 160, 3), first.shape
        assert first.any(), "the canvas is black after the reset: the reset drew nothing"
        press_and_wait(page)
        # The canvas holds the session's last screen, exactly.
        sessions = json.loads(server.get("/web/api/sessions")[1])
        assert len(sessions) == 1 and sessions[0]["step_count"] == 1, sessions
        status, raw = server.get(f"/web/api/screen/{sessions[0]['id']}")
        assert status == 200
        expected = np.frombuffer(raw, np.uint8).reshape(210, 160, 3)
        np.testing.assert_array_equal(page.canvas_pixels(), expected, "canvas vs server screen")
        assert page.frame() == FRAMESKIP
        # Pong moves on: within a few more presses, the canvas's pixels change.
        for _ in range(30):
            if not np.array_equal(page.canvas_pixels(), first):
                break
            press_and_wait(page)
        assert not np.array_equal(page.canvas_pixels(), first), \
            f"the canvas did not change in 31 steps; {page.status()}"


def test_steps_counter_counts_replies(browser: Browser, server: Server) -> None:
    """#steps counts the replies drawn: 1 after the reset, one more per key press."""
    with browser.page(server.url("/web?play=1")) as page:
        wait_for_reset(page)
        assert page.text("steps") == "steps 1", f"after the reset: {page.status()}"
        press_and_wait(page)
        assert page.text("steps") == "steps 2", f"after one key press: {page.status()}"
        press_and_wait(page)
        assert page.text("steps") == "steps 3", f"after two key presses: {page.status()}"


def grid_figures(page: Page) -> list[str]:
    return page.js("[...document.querySelectorAll('#grid figure')].map((f) => f.id)")


def test_grid_shows_every_session(browser: Browser, server: Server,
                                  pong_colours: dict[str, np.ndarray]) -> None:
    """The grid shows the page's own session, then a second one opened over /ws."""
    with browser.page(server.url("/web?play=1")) as page:
        wait_for_reset(page)
        page.wait_for("document.querySelectorAll('#grid figure').length === 1 && "
                      "document.getElementById('count').textContent === '1'",
                      "the page's own session in the grid")
        sessions = json.loads(server.get("/web/api/sessions")[1])
        own = grid_figures(page)
        assert [f"s-{s['id']}" for s in sessions] == own
        with ws_client.connect(f"ws://127.0.0.1:{server.port}/ws", max_size=None,
                               open_timeout=WAIT_S) as other:
            other.send(json.dumps({"type": "reset", "data": {}}))
            reply = json.loads(other.recv(timeout=WAIT_S))
            assert reply["type"] == "observation", reply
            page.wait_for("document.querySelectorAll('#grid figure').length === 2 && "
                          "document.getElementById('count').textContent === '2'",
                          "the second session in the grid")
            sessions = json.loads(server.get("/web/api/sessions")[1])
            assert sorted(f"s-{s['id']}" for s in sessions) == sorted(grid_figures(page))
            (new,) = set(grid_figures(page)) - set(own)
            # Its canvas shows that session's screen (drawn from /web/api/screen).
            selector = f"#{new} canvas"
            page.wait_for(f"document.querySelector({json.dumps(selector)}).width === 160",
                          "the second session's screen drawn in the grid")
            pixels = page.canvas_pixels(selector)
            assert colour_fractions(pixels, pong_colours["reset"])[0] > 0.5, \
                "the second session's grid canvas does not show Pong's reset screen"
        # Its connection closed: it leaves the grid.
        page.wait_for("document.querySelectorAll('#grid figure').length === 1",
                      "the closed session to leave the grid")
        assert grid_figures(page) == own


def test_token_protected_page(browser: Browser, token_server: Server,
                              pong_colours: dict[str, np.ndarray]) -> None:
    """Behind a token, /web needs ?token=; with it the page plays."""
    status, body = token_server.get("/web")
    assert status == 401, (status, body[:200])
    assert token_server.get("/web?token=wrong")[0] == 401
    assert token_server.get("/web/api/sessions")[0] == 401
    assert token_server.get(f"/web?token={TOKEN}")[0] == 200
    with pytest.raises(InvalidStatus) as refused:  # the WebSocket handshake is refused
        ws_client.connect(f"ws://127.0.0.1:{token_server.port}/ws", open_timeout=WAIT_S).close()
    assert refused.value.response.status_code == 403, refused.value
    with browser.page(token_server.url(f"/web?play=1&token={TOKEN}")) as page:
        wait_for_reset(page)
        press_and_wait(page)
        assert colour_fractions(page.canvas_pixels(), pong_colours["play"])[0] > 0.5, \
            f"the canvas does not show Pong in play; {page.status()}"
        page.wait_for("document.querySelectorAll('#grid figure').length === 1",
                      "the session in the grid (its API calls carry the token)")
