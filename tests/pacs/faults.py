"""A fault-injecting HTTP proxy in front of a DICOMweb server, for the tests of a PACS that is slow, fails or cuts
answers short. Each rule applies to requests whose path contains ``match`` (and whose query contains ``query``),
``times`` times (-1: always): ``status`` answers that HTTP status instead, ``delay`` waits that many seconds first,
``truncate`` sends only the first part of the answer's body (with the full length announced), ``empty`` answers an
empty JSON list. Every request's path is recorded (``seen``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


@dataclass
class Rule:
    match: str
    action: str  # "status", "delay", "truncate" or "empty"
    value: float = 0
    times: int = -1
    query: str = ""


class FaultProxy:
    """``with FaultProxy(upstream) as proxy:`` forwards to ``upstream`` (http://host:port) on ``proxy.base``."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.seen: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                proxy.handle(self, "GET")

            def do_POST(self):
                proxy.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _rule(self, path: str) -> Rule | None:
        with self.lock:
            self.seen.append(path)
            for rule in self.rules:
                base, _, query = path.partition("?")
                if rule.match in base and rule.query in query and rule.times != 0:
                    if rule.times > 0:
                        rule.times -= 1
                    return rule
        return None

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        rule = self._rule(handler.path)
        if rule is not None and rule.action == "delay":
            time.sleep(rule.value)
        if rule is not None and rule.action == "status":
            body = b"injected failure"
            handler.send_response(int(rule.value))
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        if rule is not None and rule.action == "empty":
            body = b"[]"
            handler.send_response(200)
            handler.send_header("Content-Type", "application/dicom+json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        length = int(handler.headers.get("Content-Length", 0) or 0)
        data = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("accept", "content-type")}
        answer = requests.request(method, self.upstream + handler.path, data=data, headers=headers, timeout=60)
        body = answer.content
        handler.send_response(answer.status_code)
        for key in ("Content-Type",):
            if key in answer.headers:
                handler.send_header(key, answer.headers[key])
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if rule is not None and rule.action == "truncate":
            handler.wfile.write(body[: int(len(body) * rule.value)])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body)
