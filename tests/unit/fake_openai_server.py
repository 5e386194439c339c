"""A real local HTTP server speaking just enough of the chat-completions API for client mechanics.

Real sockets (not a mocked transport), so connection refusals, timeouts, status codes and headers
reach the backend exactly as they would from vLLM. Each POST takes the next scripted reply; the
request line, headers and JSON body of every call are recorded.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; None -> a valid completion built from the request
    delay_s: float = 0.0
    texts: list[str] | None = None  # choice texts for the default completion
    finish_reason: str = "stop"
    #: read the request, then close the connection without a word: what a client sees when it sends
    #: on a kept-alive connection the server has just closed
    drop: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeOpenAI:
    script: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    model: str = "fake-model"
    seen: list[Seen] = field(default_factory=list)
    #: the most POSTs that were being served at one time (requests that overlapped, not a timing)
    max_in_flight: int = 0
    #: like a server's max-num-seqs: at most this many POSTs generate at once, the rest wait their
    #: turn (each then takes its full delay); None: no limit
    capacity: int | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._seats = threading.BoundedSemaphore(self.capacity) if self.capacity else None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, so only if it runs
            self._server.shutdown()
        self._server.server_close()

    def posts(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST"]

    def duplicates(self) -> int:
        """POSTs whose body this server had already received (the same generation sent twice)."""
        bodies = [json.dumps(p.body, sort_keys=True) for p in self.posts()]
        return len(bodies) - len(set(bodies))

    def _next(self) -> Reply:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def completion(self, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
        n = int(request.get("n", 1))
        texts = reply.texts or [json.dumps({"answer": str(i)}) for i in range(n)]
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": self.model,
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": reply.finish_reason}
                for i, t in enumerate(texts)
            ],
            "usage": {
                "prompt_tokens": 40,
                "completion_tokens": 7 * len(texts),
                "total_tokens": 40 + 7 * len(texts),
                "prompt_tokens_details": {"cached_tokens": 32},
            },
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.seen.append(Seen("GET", self.path, dict(self.headers), None))
                if self.path.endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": fake.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                fake.seen.append(Seen("POST", self.path, dict(self.headers), body))
                reply = fake._next()
                if reply.drop:
                    self.close_connection = True
                    return
                with fake._lock:
                    fake._in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
                try:
                    if fake._seats is not None:
                        fake._seats.acquire()
                    try:
                        if reply.delay_s:
                            time.sleep(reply.delay_s)
                    finally:
                        if fake._seats is not None:
                            fake._seats.release()
                finally:
                    with fake._lock:
                        fake._in_flight -= 1
                if reply.status != 200:
                    self._send(reply.status, reply.body if reply.body is not None else {"error": {"message": "boom"}})
                else:
                    self._send(200, reply.body if reply.body is not None else fake.completion(body, reply))

        return Handler


def closed_port_url() -> str:
    """A URL where nothing listens: the port was bound, then released."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
