#!/usr/bin/env python3
"""Opens a page in headless Chromium, waits until it is ready, clicks an element with a
real mouse event, waits until the page is ready again, then saves the DOM and a screenshot
and prints the page's URL (the page keeps its selection there).

    click.py CHROMIUM URL CSS_SELECTOR DONE_JS DOM_OUT PNG_OUT

DONE_JS is a JavaScript expression that is true once the click's result is on the page.
Speaks the DevTools protocol over --remote-debugging-pipe (file descriptors 3 and 4,
NUL-terminated JSON messages), so it needs nothing but the Python standard library.
Called by tests/dashboard/run-chromium (CLICK=…).
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 60


class Browser:
    def __init__(self, binary: str, profile: str) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire() -> None:  # runs in the child: Chromium reads fd 3 and writes fd 4
            # Copies first: a pipe end may itself be fd 3 or 4 (and Python's are close-on-exec).
            read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,2300",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=wire, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._buf = b""
        self.session = None

    def call(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._from_chrome, 65536)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def eval(self, expression: str):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression: str, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not self.eval(expression):
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what} ({expression})")
            time.sleep(0.2)


def main() -> int:
    binary, url, selector, done_js, dom_out, png_out = sys.argv[1:7]
    profile = tempfile.mkdtemp(prefix="fleetline-chromium-")
    b = Browser(binary, profile)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        b.session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                           session=False)["sessionId"]
        b.call("Page.enable")
        b.call("Page.navigate", {"url": url})
        ready = "document.body && document.body.dataset.state === 'ready'"
        b.wait_for(ready, "the page to load")
        box = b.eval(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return null;
            e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2];
        }})()""")
        if not box:
            raise RuntimeError(f"nothing matches {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            b.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                "button": "left", "clickCount": 1})
        b.wait_for(f"({done_js}) && {ready}", "the click's result")
        with open(dom_out, "w", encoding="utf-8") as f:
            f.write(b.eval("document.documentElement.outerHTML"))
        b.eval("window.scrollTo(0, 0)")
        png = b.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(png_out, "wb") as f:
            f.write(base64.b64decode(png))
        print(b.eval("location.href"))
        return 0
    finally:
        try:
            b.call("Browser.close", session=False)
        except (OSError, RuntimeError):
            pass
        try:
            b.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            b.proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
