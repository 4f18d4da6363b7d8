"""The reward service: routes, limits and the lanes behind them.

Routes:

- ``POST /get_reward`` — OpenRLHF's remote reward protocol (``query``/``prompts``/``labels``
  in, ``rewards`` out, plus ``scores`` and ``extra_logs`` for newer OpenRLHF).
- ``POST /v1/grade`` — gradeset's own batch endpoint: ``[{completion, gold, task?}]`` in,
  ``{"verdicts": [{score, correct, parsed, detail}]}`` out.
- ``GET /health`` — liveness plus the counters a trainer's operator wants.

The verifiers are built once, at start-up, from the command line; a request can only pick
among them by name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from gradeset import __version__
from gradeset.serve.lanes import Lanes, Ticket
from gradeset.serve.protocol import (
    Item,
    RequestError,
    grade_items,
    grade_response,
    openrlhf_items,
    openrlhf_response,
    parse_json,
)
from gradeset.verify.registry import accepted_options, canonical_task, get_verifier

log = logging.getLogger("gradeset.serve")


@dataclass
class ServeConfig:
    tasks: list[str] = field(default_factory=lambda: ["math"])
    options: dict[str, Any] = field(default_factory=dict)
    workers: int = 2
    timeout: float = 5.0  # per completion, enforced by killing the worker
    request_timeout: float = 120.0  # per request: what is not graded by then scores 0 (timeout)
    max_request_bytes: int = 32 << 20
    max_items: int = 65536  # completions per request
    max_concurrency: int = 64  # requests graded at once; more wait
    max_waiting: int = 1024  # requests waiting beyond that are answered 503
    chunk: int = 128  # completions a worker takes at once


def build_verifiers(tasks: list[str], options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Verifiers keyed by the name given at start-up, and every name a request may use for each.

    With several tasks, each gets only the options it accepts (``-O mode=strict`` meant for
    math must not break mcq). Raises GradesetError for an unknown name or bad option.
    """
    verifiers: dict[str, Any] = {}
    names: dict[str, str] = {}
    for task in tasks:
        opts = options
        if len(tasks) > 1:
            ok = accepted_options(task)
            opts = options if ok is None else {k: v for k, v in options.items() if k in ok}
        verifiers[task] = get_verifier(task, **opts)
        names[task] = task
        names.setdefault(canonical_task(task), task)
    return verifiers, names


class RewardApp:
    def __init__(self, config: ServeConfig):
        self.config = config
        self.verifiers, self.names = build_verifiers(config.tasks, config.options)
        self.default = config.tasks[0]
        budgets = {k: v.time_budget(config.timeout) for k, v in self.verifiers.items() if hasattr(v, "time_budget")}
        self.lanes = Lanes(self.verifiers, workers=config.workers, timeout=config.timeout, budgets=budgets,
                           chunk=config.chunk)
        self.slots = asyncio.Semaphore(max(1, config.max_concurrency))
        self.waiting = 0
        self.in_flight = 0
        self.requests = 0
        self.errors = 0
        self.request_timeouts = 0
        self.unmatched_prompts = 0
        self.started = time.monotonic()

    def close(self) -> None:
        self.lanes.close()

    async def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        self.requests += 1
        try:
            return await self._route(method, path, body)
        except RequestError as exc:
            self.errors += 1
            return exc.status, {"error": exc.message}

    async def _route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        routes = {"/get_reward": "POST", "/v1/grade": "POST", "/health": "GET"}
        if path not in routes:
            raise RequestError(404, f"no route {path[:100]!r}; routes: POST /get_reward, POST /v1/grade, GET /health")
        if method != routes[path]:
            raise RequestError(405, f"{path} takes {routes[path]}, not {method[:10]}")
        if path == "/health":
            return 200, self.health()
        data = parse_json(body)
        if path == "/get_reward":
            items, unmatched = openrlhf_items(data, self.default)
            if unmatched:
                self.unmatched_prompts += unmatched
                log.warning("/get_reward: %d of %d queries do not contain their prompt; graded the whole query",
                            unmatched, len(items))
            return 200, openrlhf_response(await self.grade(items))
        return 200, grade_response(await self.grade(grade_items(data, self.names, self.default)))

    async def grade(self, items: list[Item]) -> list:
        """Verdicts for items, under the concurrency bound and the request time limit."""
        if len(items) > self.config.max_items:
            raise RequestError(413, f"{len(items)} completions in one request; the limit is {self.config.max_items}")
        if self.waiting >= self.config.max_waiting:
            raise RequestError(503, f"{self.waiting} requests already waiting; retry later")
        deadline = time.monotonic() + self.config.request_timeout
        self.waiting += 1
        try:
            await asyncio.wait_for(self.slots.acquire(), self.config.request_timeout)
        except TimeoutError:
            self.request_timeouts += 1
            raise RequestError(503, "no grading slot within the request time limit; retry later") from None
        finally:
            self.waiting -= 1
        self.in_flight += 1
        ticket = Ticket(items, asyncio.get_running_loop())
        try:
            self.lanes.submit(ticket)
            left = max(0.0, deadline - time.monotonic())
            try:
                return await asyncio.wait_for(asyncio.shield(ticket.future), left)
            except TimeoutError:
                self.request_timeouts += 1
                log.warning("request of %d completions hit the request time limit (%.1fs); ungraded ones score 0",
                            len(items), self.config.request_timeout)
                return ticket.cancel()
        finally:
            self.in_flight -= 1
            self.slots.release()

    def health(self) -> dict:
        return {"status": "ok", "version": __version__, "tasks": list(self.verifiers), "default_task": self.default,
                "timeout": self.config.timeout, "request_timeout": self.config.request_timeout,
                "max_request_bytes": self.config.max_request_bytes, "max_concurrency": self.config.max_concurrency,
                "requests": self.requests, "client_errors": self.errors, "in_flight": self.in_flight,
                "waiting": self.waiting, "request_timeouts": self.request_timeouts,
                "unmatched_prompts": self.unmatched_prompts, "uptime_s": round(time.monotonic() - self.started, 1),
                **self.lanes.stats()}
