"""HTTP transports for the API backends: async JSON POSTs over a pooled connection set.

The default is the lean client in ``rawhttp``. aiohttp and httpx are kept for what it
does not do (proxies from the environment); on a loopback benchmark httpx's async
client manages only tens of requests per second at hundreds in flight, aiohttp
thousands (see ``benchmarks/generate_bench.py``).
"""

from __future__ import annotations

from typing import Any

from gradeset.generate.backends.base import RequestError


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Any, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body


class AiohttpTransport:
    name = "aiohttp"

    def __init__(self, concurrency: int, timeout: float):
        import aiohttp

        self._aiohttp = aiohttp
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=timeout), trust_env=True,
        )

    async def post(self, url: str, payload: bytes, headers: dict[str, str]) -> Response:
        aiohttp = self._aiohttp
        try:
            async with self._session.post(url, data=payload, headers=headers) as r:
                body = await r.read()
                return Response(r.status, r.headers, body)
        except TimeoutError as exc:
            raise RequestError("timeout: no complete answer within the time limit") from exc
        except aiohttp.ClientError as exc:
            raise RequestError(f"connection error: {type(exc).__name__}: {exc}",
                               unreachable=isinstance(exc, aiohttp.ClientConnectorError)) from exc

    async def get(self, url: str, headers: dict[str, str]) -> Response:
        try:
            async with self._session.get(url, headers=headers) as r:
                return Response(r.status, r.headers, await r.read())
        except (TimeoutError, self._aiohttp.ClientError) as exc:
            raise RequestError(f"connection error: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._session.close()


class HttpxTransport:
    name = "httpx"

    def __init__(self, concurrency: int, timeout: float):
        import httpx

        self._httpx = httpx
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=httpx.Timeout(timeout),
        )

    async def post(self, url: str, payload: bytes, headers: dict[str, str]) -> Response:
        httpx = self._httpx
        try:
            r = await self._client.post(url, content=payload, headers=headers)
            return Response(r.status_code, r.headers, r.content)
        except httpx.TimeoutException as exc:
            raise RequestError("timeout: no complete answer within the time limit") from exc
        except httpx.TransportError as exc:
            raise RequestError(f"connection error: {type(exc).__name__}: {exc}",
                               unreachable=isinstance(exc, httpx.ConnectError)) from exc

    async def get(self, url: str, headers: dict[str, str]) -> Response:
        try:
            r = await self._client.get(url, headers=headers)
            return Response(r.status_code, r.headers, r.content)
        except self._httpx.HTTPError as exc:
            raise RequestError(f"connection error: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()


def make_transport(concurrency: int, timeout: float, prefer: str | None = None):
    """The transport for a run: ``raw`` (lean, the default), ``aiohttp`` or ``httpx``.

    ``auto`` picks raw unless a proxy is configured in the environment; then aiohttp
    (if installed) or httpx, which honour proxy settings.
    """
    from gradeset.generate.backends.rawhttp import RawTransport, proxy_configured

    if prefer == "raw" or (prefer in (None, "auto") and not proxy_configured()):
        return RawTransport(concurrency, timeout)
    if prefer != "httpx":
        try:
            return AiohttpTransport(concurrency, timeout)
        except ImportError:
            if prefer == "aiohttp":
                raise
    return HttpxTransport(concurrency, timeout)
