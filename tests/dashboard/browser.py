"""A real headless Chromium, driven over the DevTools protocol with `websockets`.

Just enough of the protocol for the dashboard's tests: open a page, evaluate JavaScript in it,
click where an element is with real mouse events, type into the focused field, and take a
screenshot. Chromium is the distribution's package (`.ci/run` installs it when missing).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
from typing import Any

import websockets

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless browser process and one page in it."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self._proc: asyncio.subprocess.Process | None = None
        self._ws: Any = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._profile = tempfile.TemporaryDirectory(prefix="hip3-chromium-")
        self.session: str | None = None
        self.console: list[str] = []

    async def __aenter__(self) -> Chromium:
        args = [
            self.executable,
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._profile.name}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--mute-audio",
            "--window-size=1400,1000",
        ]
        if os.geteuid() == 0:  # Chromium refuses to run its sandbox as root
            args.append("--no-sandbox")
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        url = await asyncio.wait_for(self._devtools_url(), 20)
        self._ws = await websockets.connect(url, max_size=None, ping_interval=None)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _devtools_url(self) -> str:
        assert self._proc is not None and self._proc.stderr is not None
        seen = []
        while True:
            line = await self._proc.stderr.readline()
            if not line:
                raise BrowserError("chromium exited before listening: " + " | ".join(seen[-5:]))
            text = line.decode(errors="replace").strip()
            seen.append(text)
            found = _LISTENING.search(text)
            if found:
                # keep draining stderr so the browser never blocks on a full pipe
                asyncio.get_running_loop().create_task(self._drain_stderr())
                return found.group(1)

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while await self._proc.stderr.readline():
            pass

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call("Browser.close", session=False), 5)
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._proc is not None:
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        self._profile.cleanup()

    async def _read(self) -> None:
        async for raw in self._ws:
            msg = json.loads(raw)
            fut = self._waiting.pop(msg.get("id", -1), None)
            if fut is not None and not fut.done():
                if "error" in msg:
                    fut.set_exception(BrowserError(str(msg["error"])))
                else:
                    fut.set_result(msg.get("result", {}))
            elif msg.get("method") == "Runtime.consoleAPICalled":
                args = msg["params"].get("args", [])
                self.console.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in args)
                )
            elif msg.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + json.dumps(msg["params"]["exceptionDetails"]))

    async def call(self, method: str, params: dict | None = None, *, session: bool = True) -> Any:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session and self.session is not None:
            msg["sessionId"] = self.session
        fut = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        await self._ws.send(json.dumps(msg))
        return await asyncio.wait_for(fut, 15)

    async def open(self, url: str, width: int = 1400, height: int = 1000) -> None:
        target = await self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = await self.call(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self.session = attached["sessionId"]
        await self.call("Runtime.enable")
        await self.call("Page.enable")
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        await self.call("Page.navigate", {"url": url})

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(json.dumps(result["exceptionDetails"])[:500])
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float, step_s: float = 0.05) -> Any:
        """Evaluate until the value is truthy; return it (or raise naming the expression)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        value = None
        while loop.time() < end:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(step_s)
        raise BrowserError(
            f"not true after {timeout_s} s: {expression} (last {value!r}; console {self.console})"
        )

    async def click(self, selector: str) -> None:
        """A real left click at the middle of the element, as a person's mouse would."""
        box = await self.evaluate(
            "(() => { const el = document.querySelector(" + json.dumps(selector) + ");"
            " if (!el) return null; el.scrollIntoView({block: 'center'});"
            " const r = el.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        if box is None:
            raise BrowserError(f"no element {selector}")
        for kind in ("mousePressed", "mouseReleased"):
            await self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
            )

    async def type_text(self, text: str) -> None:
        await self.call("Input.insertText", {"text": text})

    async def screenshot(self) -> bytes:
        shot = await self.call("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(shot["data"])
