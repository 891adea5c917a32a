"""A SCRIPTED Supabase Realtime, not a real one: a WebSocket server on 127.0.0.1 that
follows Realtime's Phoenix protocol (JSON serializer vsn 1.0.0, as supabase-py's `realtime`
client speaks it) for the frames `cfgctl watch` exchanges. No Realtime server can be
installed on these machines, so the real client code path, the `realtime` package over a
real WebSocket, is tested against this exchange instead. It is never a claim that
Realtime itself was run; who may join is tested against the real policies, the way
Realtime checks them, in tests/realtime/test_realtime_authorization.py.

What it scripts:
- the socket at `/realtime/v1/websocket?apikey=<anon key>&vsn=1.0.0`; another key: HTTP 403;
- `{"topic": "phoenix", "event": "heartbeat", "ref": R}` -> `phx_reply` `{"status": "ok", "response": {}}`;
- `phx_join` on `realtime:<topic>` with `payload.config.private` and `payload.access_token`:
  for a private join with a token allowed on that topic, `phx_reply` `{"status": "ok",
  "response": {"postgres_changes": []}}`, then each broadcast scripted for the topic as
  `{"event": "broadcast", "payload": {"type": "broadcast", "event": E, "payload": P}, "ref": null}`;
  otherwise `phx_reply` `{"status": "error", "response": {"reason": "Unauthorized: ..."}}`,
  as Realtime answers a join its RLS check refused;
- `phx_leave` -> `phx_reply` ok. Every frame received is recorded (`frames`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import serve
from websockets.http11 import Response


class ScriptedRealtime:
    def __init__(self, anon_key: str, tokens: dict[str, set[str]]):
        self.anon_key = anon_key
        self.tokens = tokens  # access token -> topics it may join
        self.broadcasts: dict[str, list[tuple[str, dict]]] = {}
        self.frames: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def broadcast(self, topic: str, event: str, payload: dict) -> None:
        """Sent on `topic` once a client has joined it."""
        self.broadcasts.setdefault(topic, []).append((event, payload))

    @property
    def url(self) -> str:
        """The project URL, as CFGCTL_SUPABASE_URL gives it."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptedRealtime:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0, process_request=self._check_request) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._started.set()
            await self._stop

    def _check_request(self, connection, request) -> Response | None:
        url = urlparse(request.path)
        query = parse_qs(url.query)
        if url.path != "/realtime/v1/websocket" or query.get("apikey") != [self.anon_key] or \
                query.get("vsn") != ["1.0.0"]:
            return connection.respond(403, "Forbidden\n")
        return None

    async def _reply(self, ws, frame: dict, status: str, response: dict) -> None:
        await ws.send(json.dumps({"topic": frame["topic"], "event": "phx_reply", "ref": frame.get("ref"),
                                  "payload": {"status": status, "response": response}}))

    async def _handle(self, ws) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            self.frames.append(frame)
            event, topic = frame["event"], frame["topic"]
            if event == "heartbeat":
                await self._reply(ws, frame, "ok", {})
            elif event == "phx_join":
                name = topic.removeprefix("realtime:")
                payload = frame["payload"]
                private = payload.get("config", {}).get("private") is True
                if private and name in self.tokens.get(payload.get("access_token"), set()):
                    await self._reply(ws, frame, "ok", {"postgres_changes": []})
                    for sent, body in self.broadcasts.get(name, []):
                        await ws.send(json.dumps({"topic": topic, "event": "broadcast", "ref": None,
                                                  "payload": {"type": "broadcast", "event": sent, "payload": body}}))
                else:
                    reason = f"Unauthorized: You do not have permissions to read from this Channel topic: {name}"
                    await self._reply(ws, frame, "error", {"reason": reason})
            elif event == "phx_leave":
                await self._reply(ws, frame, "ok", {})
