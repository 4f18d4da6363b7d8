"""Start ``gradeset serve`` as a real subprocess on 127.0.0.1 for tests and benchmarks.

The port is the one the server prints (``--port 0``); readiness is ``GET /health``
answering, polled against a deadline (no fixed sleeps).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ServeProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None, startup: float = 120.0):
        self.args = list(args)
        self.env = env
        self.startup = startup
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> ServeProcess:
        env = dict(os.environ)
        extra = dict(self.env or {})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), extra.pop("PYTHONPATH", None),
                                                         env.get("PYTHONPATH")) if p)
        env.update(extra)
        self.errfile = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server never blocks on it
        self.proc = subprocess.Popen([sys.executable, "-m", "gradeset", "serve", "--host", "127.0.0.1", "--port", "0",
                                      *self.args], stdout=subprocess.PIPE, stderr=self.errfile, env=env)
        deadline = time.monotonic() + self.startup
        line = self._read_line(deadline)
        marker = "listening on "
        if marker not in line:
            self.__exit__()
            raise RuntimeError(f"gradeset serve did not start: {line!r}")
        self.url = line.split(marker, 1)[1].split()[0]
        while time.monotonic() < deadline:
            try:
                self.health()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)  # polling a condition (the server answering) under a deadline
        self.__exit__()
        raise RuntimeError("gradeset serve never answered /health")

    def _read_line(self, deadline: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        while time.monotonic() < deadline and b"\n" not in buf:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                self.proc.wait(timeout=30)
                return buf.decode(errors="replace") + self.stderr_text()
            buf += chunk
        return buf.decode(errors="replace")

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/health", timeout=10) as resp:
            return json.loads(resp.read())

    def post(self, path: str, payload=None, *, data: bytes | None = None, headers: dict | None = None,
             timeout: float = 120.0) -> tuple[int, dict]:
        body = data if data is not None else json.dumps(payload).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def stderr_text(self) -> str:
        self.errfile.seek(0)
        return self.errfile.read().decode(errors="replace")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
