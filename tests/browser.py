"""A headless Chromium session for tests that must read, click and photograph a page an app renders (MLflow's UI
is a React app: its rows exist only after scripts ran, its nested runs only after a click).

Chromium's DevTools protocol over ``--remote-debugging-pipe``: JSON messages, each ended by a NUL byte, on the
browser's file descriptors 3 (commands) and 4 (replies) — no port, no websocket, no package beyond Chromium.
``--dump-dom`` (the report's HTML test) is enough where nothing needs to be clicked.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

#: the report test's flags, and those that keep a headless browser from reaching anything but the page
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Browser:
    """One headless Chromium with one tab; ``log`` receives the browser's own output."""

    def __init__(self, chromium: str, profile: Path, log: Path, size: tuple[int, int] = (1440, 560)):
        flags = [*FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", "--remote-debugging-pipe"]
        # the shell puts our pipes where Chromium looks for them (3: commands in, 4: replies out)
        launch = ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2', chromium, *flags]
        self._log = open(log, "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(launch, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)
        self._replies: queue.Queue = queue.Queue()
        self._last_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def _read(self) -> None:
        pending = b""
        while chunk := self.proc.stdout.read1(1 << 16):
            *messages, pending = (pending + chunk).split(b"\0")
            for message in messages:
                self._replies.put(json.loads(message))

    def _send(self, method: str, params: dict[str, Any], session: str | None = None, timeout: float = 60) -> dict:
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.proc.stdin.write(json.dumps(message).encode() + b"\0")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:  # events arrive in between: only the reply counts
            reply = self._replies.get(timeout=max(0.1, deadline - time.monotonic()))
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def command(self, method: str, **params: Any) -> dict:
        """A DevTools command to the tab (``Page.navigate``, …); its result."""
        return self._send(method, params, self._session)

    def open(self, url: str) -> None:
        self.command("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        found = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in found:
            raise RuntimeError(f"{expression}: {found['exceptionDetails']}")
        return found["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, what: str = "") -> Any:
        """The first truthy value of ``expression``, polled until ``timeout``; the page's text in the error if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"not seen within {timeout} s: {what or expression}\npage text:\n{self.text()[:3000]}")

    def wait_for_text(self, *needles: str, timeout: float = 60) -> str:
        """The page's text once it shows every one of ``needles`` (React renders rows, then their cells)."""
        test = " && ".join(f"document.body.innerText.includes({json.dumps(n)})" for n in needles)
        self.wait_for(f"document.body && {test}", timeout, what=", ".join(needles))
        return self.text()

    def text(self) -> str:
        """What a person reads on the page."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def click_all(self, selector: str) -> int:
        """Click every element ``selector`` matches; how many."""
        return self.evaluate(
            f"(() => {{ const all = [...document.querySelectorAll({json.dumps(selector)})];"
            " all.forEach(e => e.click()); return all.length })()"
        )

    def screenshot(self, path: Path) -> Path:
        data = self.command("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, queue.Empty, OSError):
            self._send("Browser.close", {}, timeout=10)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
