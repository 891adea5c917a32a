"""A SCRIPTED Supabase Storage, not the real service: an HTTP server on 127.0.0.1 that
answers the object endpoints storage3 (Supabase's Python client) calls for export bundles,
following Storage's HTTP API (supabase/storage, src/http/routes/object: createObject,
getObject) and the requests storage3's SyncBucketActionsMixin builds (upload, download).
No Storage server can run on these machines, so the real client code path, storage3 over
HTTP, is tested against this exchange instead. It is never a claim that Storage itself ran.

What it scripts, under /storage/v1 with `apikey` and `Authorization: Bearer <key>`:
- `POST /object/<bucket>/<path>`: a multipart form (the `file` part with its content type,
  `cacheControl`); 200 `{"Key": "<bucket>/<path>", "Id": "<uuid>"}`; an existing object
  without `x-upsert: true` is 400 `{"statusCode": "409", "error": "Duplicate", "message":
  "The resource already exists"}`.
- `GET /object/<bucket>/<path>`: the object's bytes; 400 `{"statusCode": "404", "error":
  "not_found", "message": "Object not found"}` when missing.
- A bucket that does not exist: 400 `{"statusCode": "404", "error": "Bucket not found", ...}`;
  a wrong or missing key: 400 `{"statusCode": "403", "error": "Unauthorized", ...}`
  (Storage answers its errors with HTTP 400 and the status in the body).
Every request is recorded (method, path, x-upsert, content type of the file part), never the key.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest

PREFIX = "/storage/v1/object/"


@dataclass
class ScriptedStorage:
    key: str = "service-key-for-tests"
    buckets: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"exports": {}})
    requests: list[dict] = field(default_factory=list)

    def start(self) -> ScriptedStorage:
        storage = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: str, error: str, message: str) -> None:
                self._answer(400, json.dumps({"statusCode": status, "error": error, "message": message}).encode())

            def _target(self) -> tuple[str, str] | None:
                path = urlsplit(self.path).path
                if not path.startswith(PREFIX):
                    return None
                bucket, _, name = unquote(path.removeprefix(PREFIX)).partition("/")
                return bucket, name

            def _allowed(self) -> bool:
                good = (self.headers.get("apikey") == storage.key
                        and self.headers.get("Authorization") == f"Bearer {storage.key}")
                if not good:
                    self._error("403", "Unauthorized", "Invalid JWT")
                return good

            def do_GET(self):  # noqa: N802
                target = self._target()
                storage.requests.append({"method": "GET", "path": urlsplit(self.path).path})
                if target is None:
                    return self._error("404", "not_found", "Route not found")
                if not self._allowed():
                    return None
                bucket, name = target
                if bucket not in storage.buckets:
                    return self._error("404", "Bucket not found", "Bucket not found")
                if name not in storage.buckets[bucket]:
                    return self._error("404", "not_found", "Object not found")
                return self._answer(200, storage.buckets[bucket][name], "application/octet-stream")

            def do_POST(self):  # noqa: N802
                target = self._target()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = BytesParser(policy=HTTP).parsebytes(
                    f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode() + body)
                parts = {p.get_param("name", header="content-disposition"): p for p in form.iter_parts()} \
                    if form.is_multipart() else {}
                file_part = parts.get("file")
                storage.requests.append({
                    "method": "POST", "path": urlsplit(self.path).path, "upsert": self.headers.get("x-upsert"),
                    "content_type": file_part.get_content_type() if file_part else None,
                    "cache_control": parts["cacheControl"].get_payload() if "cacheControl" in parts else None,
                })
                if target is None:
                    return self._error("404", "not_found", "Route not found")
                if not self._allowed():
                    return None
                bucket, name = target
                if bucket not in storage.buckets:
                    return self._error("404", "Bucket not found", "Bucket not found")
                if file_part is None:
                    return self._error("400", "InvalidRequest", "No file in the request")
                if name in storage.buckets[bucket] and self.headers.get("x-upsert") != "true":
                    return self._error("409", "Duplicate", "The resource already exists")
                storage.buckets[bucket][name] = file_part.get_payload(decode=True)
                return self._answer(200, json.dumps({"Key": f"{bucket}/{name}", "Id": str(uuid.uuid4())}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted_storage():
    """A fresh scripted Storage per test, with an empty bucket "exports"."""
    storage = ScriptedStorage().start()
    yield storage
    storage.stop()
