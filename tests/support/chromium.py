"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol with websockets,
for the tests of the HTML pages cfgctl writes (tests/graph, tests/analytics): start a browser
on a free port, open a tab, evaluate, click, screenshot, and collect console errors."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request


class Page:
    """One Chromium tab over the DevTools protocol: evaluate, click, screenshot, console errors."""

    def __init__(self, ws):
        self.ws, self.next_id, self.errors = ws, 0, []

    async def send(self, method: str, **params):
        self.next_id += 1
        mine = self.next_id
        await self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("id") == mine:
                assert "error" not in message, message
                return message.get("result", {})
            self.note(message)

    def note(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"].get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(str(params.get("args")))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"])

    async def drain(self, quiet: float = 0.3) -> list:
        """Notes whatever arrives until nothing has for `quiet` seconds (errors logged late); the errors."""
        try:
            while True:
                self.note(json.loads(await asyncio.wait_for(self.ws.recv(), quiet)))
        except TimeoutError:
            return self.errors

    async def eval(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")


def open_in_chromium(tmp_path, page_file):
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [shutil.which("chromium"), "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--window-size=1200,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        assert time.monotonic() < deadline and proc.poll() is None, "chromium did not start"
        time.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    tabs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json").read())
    return proc, next(t for t in tabs if t["type"] == "page")["webSocketDebuggerUrl"]
