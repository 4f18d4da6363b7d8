"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks HTTP/1.1 with keep-alive over a raw asyncio protocol (no web framework, so it
needs nothing beyond the standard library and stays cheap enough to serve thousands of
requests per second to a benchmark), and answers:

- ``POST /v1/chat/completions`` and ``POST /v1/completions`` (OpenAI shape, with ``n``),
- ``POST /v1/messages`` (Anthropic Messages shape),
- ``GET /v1/models``.

Use it as a context manager; it runs in a background thread with its own event loop::

    with LoopbackServer(reply="The answer is \\\\boxed{5}.", latency=0.05) as srv:
        client(base_url=srv.base_url)            # http://127.0.0.1:PORT/v1
        assert len(srv.requests) == 3

``reply`` is a string or a callable ``reply(request) -> str | dict`` where ``request`` is
a :class:`Request` (path, body, headers, index) and a dict may give ``text``,
``finish_reason`` and ``completion_tokens``; a callable may also be given ``choice``
(the index of the choice when ``n`` > 1) by accepting a second argument.

Faults are injected in arrival order: each :class:`Fault` applies to the next ``times``
matching generation requests. Kinds: ``429`` (with ``Retry-After``), ``500``, ``slow``
(adds ``delay`` seconds), ``drop`` (closes the connection without answering),
``malformed`` (200 with a truncated JSON body), ``400``.

``support_n``: True answers ``n`` choices; False ignores ``n`` (one choice, as some
servers do); ``"reject"`` answers 400 to ``n`` > 1.

``hold_after(n)`` answers the next ``n`` generation requests and holds every later one
unanswered until ``release()``; ``wait_held(k, timeout)`` returns once ``k`` requests are
held. Tests use it to act (SIGINT, kill -9) at a point chosen from progress, with the
client provably mid-run, instead of sleeping and hoping.

``reject_fields``: request fields the server refuses with 422 "Unexpected fields in the
request: {...}", as ``transformers serve`` does for vLLM's ``continue_final_message`` /
``add_generation_prompt`` (use :data:`VLLM_ONLY_FIELDS`). ``usage``: False leaves the
``usage`` object out of answers (servers that do not count tokens).

Run as a script to serve from a separate process (benchmarks)::

    python tests/loopback_server.py --latency 0.05 --reply "ok"   # prints the port
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 422: "Unprocessable Entity",
            429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}
GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/messages")
VLLM_ONLY_FIELDS = ("continue_final_message", "add_generation_prompt")


@dataclass
class Fault:
    """One injected fault for the next ``times`` matching generation requests."""

    kind: str  # an HTTP status ("429", "500", "401", ...) | "slow" | "drop" | "malformed"
    times: int = 1
    retry_after: float | None = 1.0
    delay: float = 5.0
    match: Callable[[Request], bool] | None = None
    message: str | None = None  # the error message (default "injected KIND")

    def matches(self, req: Request) -> bool:
        return self.times > 0 and (self.match is None or bool(self.match(req)))


@dataclass
class Request:
    """What the server received (recorded in ``server.requests`` in arrival order)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    index: int
    time: float = field(default_factory=time.monotonic)
    fault: str | None = None

    @property
    def prompt_text(self) -> str:
        """The prompt as one string: the last user message, or the raw completion prompt."""
        b = self.body if isinstance(self.body, dict) else {}
        if "messages" in b:
            msgs = [m for m in b["messages"] if m.get("role") == "user"] or b["messages"]
            content = msgs[-1].get("content") if msgs else ""
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
        return str(b.get("prompt", ""))


def _words(text: Any) -> int:
    return len(str(text).split())


def _prompt_tokens(body: dict) -> int:
    if "messages" in body:
        return sum(_words(m.get("content", "")) for m in body["messages"]) + _words(body.get("system", ""))
    return _words(body.get("prompt", ""))


def _http(status: int, payload: bytes, extra: dict[str, str] | None = None,
          content_type: str = "application/json") -> bytes:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}",
            f"Content-Length: {len(payload)}", "Connection: keep-alive"]
    for k, v in (extra or {}).items():
        head.append(f"{k}: {v}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


class _Conn(asyncio.Protocol):
    """One keep-alive connection; requests on it are answered in order."""

    def __init__(self, server: LoopbackServer):
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        self.server.open_connections += 1
        self.server.max_connections = max(self.server.max_connections, self.server.open_connections)

    def connection_lost(self, exc):
        self.closed = True
        self.server.open_connections -= 1

    def data_received(self, data: bytes):
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0") or 0)
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4:end + 4 + length])
        del self.buf[:end + 4 + length]
        parts = head[0].split(" ")
        method, path = parts[0], parts[1] if len(parts) > 1 else "/"
        self.busy = True
        self.server._dispatch(self, method, path.split("?")[0], headers, body)

    def send(self, data: bytes | None) -> None:
        """Write a response (None closes the connection unanswered) and read the next request."""
        if self.closed or self.transport is None:
            return
        if data is None:
            self.transport.abort()
            return
        self.transport.write(data)
        self.busy = False
        if self.buf:
            self._next()


class LoopbackServer:
    """OpenAI-compatible server on 127.0.0.1 in a background thread (see module docstring)."""

    def __init__(self, reply: str | Callable[..., Any] = "ok", *, latency: float = 0.0,
                 faults: list[Fault] | None = None, support_n: bool | str = True,
                 model: str = "loopback", port: int = 0, record: bool = True, ssl=None,
                 reject_fields: tuple[str, ...] | list[str] | None = None, usage: bool = True):
        self.reply = reply
        self.latency = latency
        self.faults = list(faults or [])
        self.support_n = support_n
        self.model = model
        self.port = port
        self.record = record
        self.ssl = ssl  # an ssl.SSLContext serves https
        self.reject_fields = set(reject_fields or ())
        self.usage = usage
        self.requests: list[Request] = []
        self.count = 0
        self.open_connections = 0
        self.max_connections = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._started = threading.Event()
        self._reply_arity = self._arity(reply)
        self._encoded: dict[tuple, bytes] = {}
        self._hold_budget: int | None = None  # answers left before holding; None: never hold
        self._held: list[tuple[_Conn, bytes]] = []
        self._held_cond = threading.Condition(self._lock)

    @staticmethod
    def _arity(reply) -> int:
        if not callable(reply):
            return 0
        try:
            return len(inspect.signature(reply).parameters)
        except (TypeError, ValueError):
            return 1

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (ends in /v1)."""
        return f"{self.scheme}://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """The bare origin (what the Anthropic client wants as base_url)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.ssl is not None else "http"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._run, name="loopback-server", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("loopback server did not start")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = loop.run_until_complete(
            loop.create_server(lambda: _Conn(self), sock=sock, backlog=4096, ssl=self.ssl))
        self._started.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._server.wait_closed())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread (the script entry point)."""
        self._run()

    # -- holding answers ---------------------------------------------------------------------
    def hold_after(self, n: int) -> None:
        """Answer the next n generation requests, then hold the rest until ``release()``."""
        with self._lock:
            self._hold_budget = int(n)

    def wait_held(self, k: int = 1, timeout: float = 60.0) -> bool:
        """Block until at least k requests are held (False if the timeout passed first)."""
        with self._held_cond:
            return self._held_cond.wait_for(lambda: len(self._held) >= k, timeout)

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def release(self) -> None:
        """Stop holding; answer what was held (connections a killed client closed are skipped)."""
        with self._lock:
            self._hold_budget = None
            held, self._held = self._held, []
        if self._loop is not None:
            for conn, data in held:
                self._loop.call_soon_threadsafe(conn.send, data)

    def _deliver(self, conn: _Conn, data: bytes, delay: float) -> None:
        """Send an answer after delay, or hold it (see ``hold_after``); runs on the loop thread."""
        with self._lock:
            if self._hold_budget is not None:
                if self._hold_budget <= 0:
                    self._held.append((conn, data))
                    self._held_cond.notify_all()
                    return
                self._hold_budget -= 1
        if delay > 0:
            assert self._loop is not None
            self._loop.call_later(delay, conn.send, data)
        else:
            conn.send(data)

    # -- request handling --------------------------------------------------------------------
    def generation_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path in GENERATION_PATHS]

    def _take_fault(self, req: Request) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.matches(req):
                    f.times -= 1
                    return f
        return None

    def _dispatch(self, conn: _Conn, method: str, path: str, headers: dict, raw: bytes) -> None:
        loop = self._loop
        assert loop is not None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            req = Request(method, path, headers, body, self.count)
            self.count += 1
            if self.record:
                self.requests.append(req)
        if method == "GET" and path.rstrip("/") == "/v1/models":
            payload = {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "loopback"}]}
            conn.send(_http(200, json.dumps(payload).encode()))
            return
        if method != "POST" or path not in GENERATION_PATHS:
            conn.send(_http(404, b'{"error": {"message": "not found"}}'))
            return
        if not isinstance(body, dict):
            conn.send(_http(400, b'{"error": {"message": "request body is not JSON"}}'))
            return
        unexpected = self.reject_fields & set(body)
        if unexpected:
            req.fault = "422"
            msg = json.dumps({"detail": f"Unexpected fields in the request: {unexpected}"})
            conn.send(_http(422, msg.encode()))
            return
        fault = self._take_fault(req)
        delay = self.latency
        if fault is not None:
            req.fault = fault.kind
            if fault.kind == "slow":
                delay += fault.delay
            elif fault.kind == "drop":
                loop.call_later(delay, conn.send, None)
                return
            elif fault.kind.isdigit():
                extra = {}
                if fault.kind == "429" and fault.retry_after is not None:
                    extra["Retry-After"] = f"{fault.retry_after:g}"
                text = fault.message or f"injected {fault.kind}"
                msg = json.dumps({"error": {"message": text, "type": "loopback"}})
                loop.call_later(delay, conn.send, _http(int(fault.kind), msg.encode(), extra))
                return
            elif fault.kind == "malformed":
                loop.call_later(delay, conn.send, _http(200, b'{"id": "x", "choices": [{"index": 0, "mess'))
                return
        n = int(body.get("n") or 1)
        if n > 1 and self.support_n == "reject":
            msg = b'{"error": {"message": "n > 1 is not supported", "param": "n"}}'
            loop.call_later(delay, conn.send, _http(400, msg))
            return
        if n > 1 and not self.support_n:
            n = 1
        if isinstance(self.reply, str):
            # Constant replies (benchmarks) reuse the encoded answer: the server must not be
            # the bottleneck of a client benchmark.
            key = (path, n, body.get("model"), _prompt_tokens(body))
            data = self._encoded.get(key)
            if data is None:
                data = self._encoded[key] = self._answer(req, path, body, n)
            self._deliver(conn, data, delay)
            return
        if callable(self.reply) and getattr(self.reply, "blocking", False):
            # Slow callables (a real model) run off the loop so other connections proceed.
            fut = loop.run_in_executor(None, self._answer, req, path, body, n)
            fut.add_done_callback(lambda f: loop.call_soon_threadsafe(self._deliver, conn, f.result(), delay))
            return
        self._deliver(conn, self._answer(req, path, body, n), delay)

    def _reply_for(self, req: Request, choice: int) -> dict:
        r = self.reply
        if callable(r):
            out = r(req, choice) if self._reply_arity >= 2 else r(req)
        else:
            out = r
        if isinstance(out, dict):
            return out
        return {"text": "" if out is None else str(out)}

    def _answer(self, req: Request, path: str, body: dict, n: int) -> bytes:
        try:
            replies = [self._reply_for(req, i) for i in range(n)]
        except Exception as exc:  # a broken test callable becomes a 500, visible to the client
            return _http(500, json.dumps({"error": {"message": f"reply failed: {exc}"}}).encode())
        ptoks = _prompt_tokens(body)
        created = int(time.time())
        model = body.get("model", self.model)
        usage_completion = 0
        choices = []
        for i, rep in enumerate(replies):
            text = rep.get("text", "")
            ctoks = int(rep.get("completion_tokens", _words(text)))
            usage_completion += ctoks
            finish = rep.get("finish_reason", "stop")
            if path == "/v1/completions":
                choices.append({"index": i, "text": text, "finish_reason": finish, "logprobs": None})
            else:
                choices.append({"index": i, "message": {"role": "assistant", "content": text},
                                "finish_reason": finish})
        if path == "/v1/messages":
            rep = replies[0]
            stop = {"stop": "end_turn", "length": "max_tokens"}.get(rep.get("finish_reason", "stop"), "end_turn")
            payload = {"id": f"msg_{req.index}", "type": "message", "role": "assistant", "model": model,
                       "content": [{"type": "text", "text": rep.get("text", "")}], "stop_reason": stop,
                       "stop_sequence": None,
                       "usage": {"input_tokens": ptoks, "output_tokens": usage_completion}}
        else:
            obj = "text_completion" if path == "/v1/completions" else "chat.completion"
            payload = {"id": f"cmpl-{req.index}", "object": obj, "created": created, "model": model,
                       "choices": choices}
            if self.usage:
                payload["usage"] = {"prompt_tokens": ptoks, "completion_tokens": usage_completion,
                                    "total_tokens": ptoks + usage_completion}
        return _http(200, json.dumps(payload).encode())


def model_reply(model_dir: str, max_new_tokens: int = 16) -> Callable[[Request], dict]:
    """A reply callable that runs a local transformers model (e.g. the tiny test model).

    The chat template of the model's tokenizer is applied to chat requests, so the server
    behaves like a real vLLM server for that model (slowly).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    lock = threading.Lock()

    def reply(req: Request) -> dict:
        body = req.body
        if "messages" in body:
            text = tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        else:
            text = body.get("prompt", "")
        enc = tok(text, return_tensors="pt")
        limit = min(int(body.get("max_tokens") or max_new_tokens), max_new_tokens)
        with lock, torch.no_grad():
            out = model.generate(**enc, max_new_tokens=limit, do_sample=True, temperature=1.0,
                                 pad_token_id=tok.pad_token_id)
        new = out[0, enc["input_ids"].shape[1]:]
        finish = "stop" if len(new) and int(new[-1]) == tok.eos_token_id else "length"
        return {"text": tok.decode(new, skip_special_tokens=True), "completion_tokens": len(new),
                "finish_reason": finish}

    reply.blocking = True  # type: ignore[attr-defined]
    return reply


def main(argv: list[str] | None = None) -> None:
    import argparse
    import sys

    p = argparse.ArgumentParser(description="OpenAI-compatible loopback server")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--reply", default="ok")
    p.add_argument("--no-record", action="store_true", help="do not keep requests in memory")
    args = p.parse_args(argv)
    srv = LoopbackServer(reply=args.reply, latency=args.latency, port=args.port, record=not args.no_record)

    def announce():
        srv._started.wait()
        print(srv.port, flush=True)

    threading.Thread(target=announce, daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        srv.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
