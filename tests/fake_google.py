"""A loopback HTTP server that speaks the parts of the Gemini API REST protocol the backends use, so that the
real google-genai SDK (pointed at it with HttpOptions(base_url=...)) can be tested with no network:
generateContent, the resumable Files API upload, files.get, Veo's predictLongRunning, operations.get and
files download. Replies are scripted per test; every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


def answer(payload: dict | str, prompt_tokens: int = 100, output_tokens: int = 20, thoughts: int = 5) -> tuple[int, dict]:
    """A generateContent reply whose text is `payload` (a dict is sent as its JSON)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return 200, {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
                 "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
                                   "thoughtsTokenCount": thoughts,
                                   "totalTokenCount": prompt_tokens + output_tokens + thoughts}}


def error(code: int, message: str = "scripted failure", status: str = "") -> tuple[int, dict]:
    status = status or {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 400: "INVALID_ARGUMENT",
                        403: "PERMISSION_DENIED"}.get(code, "UNKNOWN")
    return code, {"error": {"code": code, "message": message, "status": status}}


class FakeGoogleAPI:
    """Scripted replies: push onto `generate` (generateContent), `submit` (Veo predictLongRunning) and `polls`
    (operations.get, in order); put downloadable bytes in `files`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.generate: list[tuple[int, dict]] = []
        self.submit: list[tuple[int, dict]] = []
        self.polls: list[tuple[int, dict]] = []
        self.files: dict[str, bytes] = {}
        self.uploaded: dict[str, bytes] = {}
        self.file_states: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ----- scripting helpers -----------------------------------------------------------------------------
    def veo_done(self, video: bytes, name: str = "models/veo-3.1-fast-generate-preview/operations/op1") -> None:
        """A Veo operation that is pending once, then done with `video` to download."""
        file_id = uuid.uuid4().hex[:10]
        self.files[file_id] = video
        self.polls += [(200, {"name": name, "done": False}),
                       (200, {"name": name, "done": True, "response": {
                           "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                           "generateVideoResponse": {"generatedSamples": [{"video": {
                               "uri": f"https://generativelanguage.googleapis.com/v1beta/files/{file_id}:download?alt=media"}}]}}})]

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    def generate_calls(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(":generateContent")]

    # ----- the protocol -----------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append(Recorded(method, h.path, {k.lower(): v for k, v in h.headers.items()}, body))
            path = urlparse(h.path).path
            if method == "POST" and path.endswith(":generateContent"):
                return self._reply(h, *(self.generate.pop(0) if self.generate else error(500, "nothing scripted")))
            if method == "POST" and path.endswith(":predictLongRunning"):
                default = (200, {"name": f"models/{path.split('/')[-1].split(':')[0]}/operations/op1"})
                return self._reply(h, *(self.submit.pop(0) if self.submit else default))
            if method == "GET" and "/operations/" in path:
                return self._reply(h, *(self.polls.pop(0) if self.polls else error(500, "nothing scripted")))
            if method == "POST" and path == "/upload/v1beta/files":
                file_id = uuid.uuid4().hex[:10]
                self.file_states[file_id] = ["PROCESSING", "ACTIVE"]
                return self._reply(h, 200, {}, {"X-Goog-Upload-URL": f"{self.url}/upload-target/{file_id}",
                                                "X-Goog-Upload-Status": "active"})
            if method == "POST" and path.startswith("/upload-target/"):
                file_id = path.rsplit("/", 1)[-1]
                self.uploaded[file_id] = body
                return self._reply(h, 200, {"file": self._file(file_id, "PROCESSING")}, {"X-Goog-Upload-Status": "final"})
            download = re.fullmatch(r"/v1beta/files/([a-z0-9]+):download", path)
            if method == "GET" and download:
                data = self.files.get(download.group(1))
                if data is None:
                    return self._reply(h, *error(404, "no such file"))
                return self._raw(h, data, "video/mp4")
            got = re.fullmatch(r"/v1beta/files/([a-z0-9]+)", path)
            if method == "GET" and got:
                states = self.file_states.get(got.group(1), ["ACTIVE"])
                state = states.pop(0) if len(states) > 1 else states[0]
                return self._reply(h, 200, self._file(got.group(1), state))
        self._reply(h, *error(404, f"the fake server has no route {method} {path}"))

    def _file(self, file_id: str, state: str) -> dict:
        return {"name": f"files/{file_id}", "uri": f"https://generativelanguage.googleapis.com/v1beta/files/{file_id}",
                "mimeType": "video/mp4", "state": state}

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _raw(h: BaseHTTPRequestHandler, data: bytes, mime: str) -> None:
        h.send_response(200)
        h.send_header("Content-Type", mime)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
