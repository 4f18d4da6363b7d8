"""A lean HTTP/1.1 keep-alive client for JSON POSTs, on a bare asyncio protocol.

Generation runs are thousands of identical small POSTs to one host. General-purpose
clients spend most of their per-request CPU on features these requests never use
(cookies, redirects, hooks, per-request task plumbing); at hundreds of requests in
flight that overhead, not the server, caps throughput. This client does only what the
API calls need: keep-alive connections to one origin, ``Content-Length`` and chunked
response bodies, TLS, and a per-request deadline. It is the default when no proxy is
configured (proxies go through aiohttp/httpx, which implement them).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import ssl
import zlib
from urllib.parse import urlsplit

from gradeset.generate.backends.base import RequestError


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body


class _Conn(asyncio.Protocol):
    """One connection; one request at a time (no pipelining)."""

    __slots__ = ("body", "buf", "chunked", "closed", "headers", "keep", "length", "status", "transport", "waiter")

    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] | None = None
        self.length: int | None = None
        self.chunked = False
        self.keep = True
        self.body = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            if self.headers is not None and self.length is None and not self.chunked:
                w.set_result(Response(self.status, self.headers, bytes(self.body + self.buf)))  # close-delimited
            else:
                w.set_exception(RequestError("connection error: the server closed the connection "
                                             "before a complete answer"))
        self.waiter = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None:
            return
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            self._fail(RequestError(f"malformed HTTP response: {exc}"))

    def _fail(self, exc: Exception) -> None:
        w = self.waiter
        self.waiter = None
        if w is not None and not w.done():
            w.set_exception(exc)
        self.close()

    def _parse(self) -> None:
        buf = self.buf
        if self.headers is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 1 << 20:
                    raise ValueError("response headers larger than 1 MiB")
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[:end + 4]
            parts = lines[0].split(" ", 2)
            if not parts[0].startswith("HTTP/"):
                raise ValueError(f"not an HTTP status line: {lines[0][:80]!r}")
            self.status = int(parts[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            self.headers = headers
            if parts[0] == "HTTP/1.0":
                self.keep = "keep-alive" in headers.get("connection", "").lower()
            else:
                self.keep = headers.get("connection", "").lower() != "close"
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.chunked = True
            elif "content-length" in headers:
                self.length = int(headers["content-length"])
            elif self.status in (204, 304) or 100 <= self.status < 200:
                self.length = 0
            else:
                self.keep = False  # body runs to the end of the connection
        if self.chunked:
            while True:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    return
                size = int(bytes(buf[:eol]).split(b";")[0].strip() or b"0", 16)
                if size == 0:  # last chunk: optional trailer lines, then a blank line
                    if len(buf) < eol + 4:
                        return
                    if buf[eol + 2:eol + 4] == b"\r\n":
                        end = eol + 4
                    else:
                        t = buf.find(b"\r\n\r\n", eol + 2)
                        if t < 0:
                            return
                        end = t + 4
                    del buf[:end]
                    self._done()
                    return
                if len(buf) < eol + 2 + size + 2:
                    return
                self.body += buf[eol + 2:eol + 2 + size]
                del buf[:eol + 2 + size + 2]
        elif self.length is not None:
            if len(buf) < self.length:
                return
            self.body = buf[:self.length]
            del buf[:self.length]
            self._done()

    def _done(self) -> None:
        w = self.waiter
        self.waiter = None
        headers = self.headers or {}
        body = bytes(self.body)
        coding = headers.get("content-encoding", "").lower()
        if coding in ("gzip", "x-gzip", "deflate"):  # we asked for identity, but servers may still compress
            # left as is when it does not decompress: the JSON parse then reports a malformed answer
            with contextlib.suppress(OSError, zlib.error, EOFError):
                body = gzip.decompress(body) if "gzip" in coding else zlib.decompress(body)
        resp = Response(self.status, headers, body)
        keep = self.keep
        self._reset()
        if not keep:
            self.close()
        if w is not None and not w.done():
            w.set_result(resp)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Timeout(RequestError):
    """No complete answer before the request's deadline (retryable)."""


def proxy_configured() -> bool:
    return any(os.environ.get(k) for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                            "http_proxy", "https_proxy", "all_proxy"))


class RawTransport:
    name = "raw"

    def __init__(self, concurrency: int, timeout: float):
        self.timeout = timeout
        self.max_idle = max(1, concurrency)
        self._idle: dict[tuple, list[_Conn]] = {}
        self._urls: dict[str, tuple] = {}
        self._all: set[_Conn] = set()
        self._ssl: ssl.SSLContext | None = None
        self._inflight: dict[_Conn, float] = {}
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._tick = min(0.25, max(0.01, timeout / 10))

    def _target(self, url: str) -> tuple:
        t = self._urls.get(url)
        if t is None:
            u = urlsplit(url)
            if u.scheme not in ("http", "https"):
                raise RequestError(f"unsupported URL scheme in {url!r}", retryable=False)
            tls = u.scheme == "https"
            port = u.port or (443 if tls else 80)
            host = u.hostname or "localhost"
            default = (tls and port == 443) or (not tls and port == 80)
            host_header = host if default else f"{host}:{port}"
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            t = (host, port, tls, host_header, path)
            self._urls[url] = t
        return t

    async def _connect(self, host: str, port: int, tls: bool, deadline: float) -> _Conn:
        loop = asyncio.get_running_loop()
        ctx = None
        if tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            ctx = self._ssl
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(_Conn, host, port, ssl=ctx,
                                                       server_hostname=host if tls else None)
        except TimeoutError as exc:
            raise _Timeout(f"timeout: no connection to {host}:{port} within the time limit") from exc
        except OSError as exc:
            raise RequestError(f"connection error: cannot connect to {host}:{port}: {exc}", unreachable=True) from exc
        self._all.add(conn)
        return conn

    async def _request(self, method: str, url: str, payload: bytes, headers: dict[str, str]) -> Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        host, port, tls, host_header, path = self._target(url)
        key = (host, port, tls)
        idle = self._idle.setdefault(key, [])
        conn = None
        while idle:
            c = idle.pop()
            if not c.closed:
                conn = c
                break
            self._all.discard(c)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}", f"Content-Length: {len(payload)}",
                 "Accept: application/json", "Accept-Encoding: identity", "User-Agent: gradeset"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + payload
        try:
            reused = conn is not None
            if conn is None:
                conn = await self._connect(host, port, tls, deadline)
            try:
                resp = await self._exchange(loop, conn, raw, deadline)
            except _Timeout:
                raise
            except RequestError:
                # A kept-alive connection the server closed while idle fails before any
                # answer byte: send once more on a fresh connection (what browsers do).
                if not (reused and conn.closed and conn.headers is None and not conn.buf):
                    raise
                self._all.discard(conn)
                conn = await self._connect(host, port, tls, deadline)
                resp = await self._exchange(loop, conn, raw, deadline)
        except BaseException:
            if conn is not None:
                conn.waiter = None
                conn.close()
            raise
        if not conn.closed and len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()
        return resp

    async def _exchange(self, loop, conn: _Conn, raw: bytes, deadline: float) -> Response:
        if conn.closed:
            raise RequestError("connection error: the connection closed before the request was sent")
        fut = loop.create_future()
        conn.waiter = fut
        self._inflight[conn] = deadline
        if self._sweep_handle is None:
            self._sweep_handle = loop.call_later(self._tick, self._sweep, loop)
        try:
            conn.transport.write(raw)
            return await fut
        finally:
            self._inflight.pop(conn, None)

    def _sweep(self, loop) -> None:
        """Fail requests past their deadline: one timer for all of them, not one per request
        (a per-request timer costs more CPU than the rest of the request at high rates)."""
        now = loop.time()
        for conn, deadline in list(self._inflight.items()):
            if deadline <= now:
                del self._inflight[conn]
                w = conn.waiter
                conn.waiter = None
                if w is not None and not w.done():
                    w.set_exception(_Timeout("timeout: no complete answer within the time limit"))
                conn.close()
        self._sweep_handle = loop.call_later(self._tick, self._sweep, loop) if self._inflight else None

    async def post(self, url: str, payload: bytes, headers: dict[str, str]) -> Response:
        return await self._request("POST", url, payload, headers)

    async def get(self, url: str, headers: dict[str, str]) -> Response:
        return await self._request("GET", url, b"", headers)

    async def close(self) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        for c in list(self._all):
            c.close()
        self._all.clear()
        self._idle.clear()
