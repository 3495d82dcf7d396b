"""A stand-in for a service process: serves /health (checking its database) and can crash on request.

Usage: ``python standin_service.py NAME``. ``GET /health`` answers 200 when the service's
database answers; ``GET /env`` shows the OMS_* environment it got; ``POST /crash`` exits with
code 3. ``STANDIN_IGNORE_SIGTERM=1`` makes it ignore SIGTERM (to test SIGKILL after the grace).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

from shared.db import libpq_url

NAME = sys.argv[1]
PORT = int(os.environ[f"OMS_{NAME.upper()}_HTTP_PORT"])
DATABASE_URL = os.environ[f"OMS_{NAME.upper()}_DATABASE_URL"]


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            try:
                with psycopg.connect(libpq_url(DATABASE_URL), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error as error:
                self._send(503, {"service": NAME, "error": str(error)})
                return
            self._send(200, {"service": NAME, "status": "ok", "pid": os.getpid()})
        elif self.path == "/env":
            self._send(200, {k: v for k, v in os.environ.items() if k.startswith("OMS_")})
        else:
            self._send(404, {"detail": "not found"})

    def do_POST(self) -> None:
        if self.path == "/crash":
            self._send(200, {"crashing": NAME})
            threading.Timer(0.05, os._exit, args=(3,)).start()
        else:
            self._send(404, {"detail": "not found"})

    def log_message(self, format: str, *args: object) -> None:
        print(f"{NAME}: {format % args}", flush=True)


if __name__ == "__main__":
    if os.environ.get("STANDIN_IGNORE_SIGTERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"stand-in {NAME} listening on {PORT}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
