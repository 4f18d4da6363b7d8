"""A small HTTP/1.1 JSON server on asyncio streams (standard library only).

Enough HTTP for reward clients (``requests``, ``aiohttp``, ``httpx``, ``curl``): keep-alive,
``Content-Length`` bodies, ``Expect: 100-continue``. Limits are enforced before the body
is read: a declared size over the limit is answered 413 and the connection closed, so a
client cannot make the server buffer a gigabyte. Header and body reads have deadlines, so
a client that stops sending (slowloris) holds one connection, not a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

log = logging.getLogger("gradeset.serve")

REASONS = {200: "OK", 100: "Continue", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
           415: "Unsupported Media Type", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout"}

Handler = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, Any]]]

MAX_HEADER_BYTES = 64 * 1024
HEADER_TIMEOUT = 75.0  # idle keep-alive connections are closed after this
BODY_TIMEOUT = 60.0


def encode_response(status: int, payload: Any, *, keep_alive: bool, extra: dict[str, str] | None = None) -> bytes:
    body = orjson.dumps(payload)
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    head += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def parse_head(raw: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers (names lower-cased); ValueError when it is not HTTP."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x request line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"malformed header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return parts[0].upper(), parts[1], parts[2], headers


class HTTPServer:
    """Serve ``handler(method, path, headers, body) -> (status, json)`` on host:port."""

    def __init__(self, handler: Handler, max_body: int):
        self.handler = handler
        self.max_body = int(max_body)
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._connection, host, port, limit=MAX_HEADER_BYTES)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception:  # a bug in one connection must not stop the server
            log.exception("connection failed")
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _reply(self, writer, status: int, payload: Any, keep_alive: bool, extra=None) -> bool:
        writer.write(encode_response(status, payload, keep_alive=keep_alive, extra=extra))
        await writer.drain()
        return keep_alive

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; True to keep the connection for the next."""
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEADER_TIMEOUT)
        except asyncio.LimitOverrunError:
            return await self._reply(writer, 431, {"error": f"request head over {MAX_HEADER_BYTES} bytes"}, False)
        except asyncio.IncompleteReadError:
            return False
        try:
            method, path, version, headers = parse_head(raw)
        except ValueError as exc:
            return await self._reply(writer, 400, {"error": str(exc)}, False)
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await self._reply(writer, 411, {"error": "chunked bodies are not accepted: send Content-Length"},
                                     False)
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            return await self._reply(writer, 400, {"error": f"bad Content-Length {length_text[:40]!r}"}, False)
        length = int(length_text)
        if length > self.max_body:
            # refuse before reading: the body is never buffered; the connection is closed
            await self._reply(writer, 413, {"error": f"request body of {length} bytes is over the limit of "
                                                     f"{self.max_body} bytes (--max-request-bytes)"}, False)
            await _linger(reader, writer)
            return False
        if length and headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await asyncio.wait_for(reader.readexactly(length), BODY_TIMEOUT) if length else b""
        try:
            status, payload = await self.handler(method, path.split("?", 1)[0], headers, body)
        except Exception as exc:
            log.exception("handler failed on %s %s", method, path[:200])
            status, payload = 500, {"error": f"internal error: {type(exc).__name__}"}
        return await self._reply(writer, status, payload, keep)


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float = 5.0,
                  cap: int = 256 << 20) -> None:
    """Discard what the client is still sending before closing, for a while: closing a socket
    with unread input resets it, and the client would see a reset instead of our 413."""
    with contextlib.suppress(Exception):
        writer.write_eof()
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    seen = 0
    with contextlib.suppress(Exception):
        while seen < cap and (left := end - loop.time()) > 0:
            chunk = await asyncio.wait_for(reader.read(1 << 16), left)
            if not chunk:
                return
            seen += len(chunk)
