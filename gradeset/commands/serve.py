"""``gradeset serve --task math``: serve verifiers over HTTP as online rewards for RL trainers."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gradeset.errors import GradesetError


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve verifiers as online RL rewards over HTTP (OpenRLHF, verl, TRL)",
        description="Serve gradeset verifiers over HTTP: POST /get_reward (OpenRLHF's remote reward protocol), "
                    "POST /v1/grade (gradeset's batch endpoint), GET /health. The verifiers are chosen here; "
                    "a request can only pick among them by name.")
    p.add_argument("--task", "-t", action="append", default=None, metavar="TASK",
                   help="verifier to serve (math, gsm8k, mcq, trivia, format, regex, code, python:module:function); "
                        "repeat to serve several, the first is the default (default: math)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one and prints it)")
    p.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE",
                   help="verifier option (JSON value or string), e.g. -O mode=strict")
    p.add_argument("--workers", "-w", type=int, default=None,
                   help="grading processes; each is killed and replaced when a completion runs past --timeout "
                        "(default: two per CPU, at most 8: a worker waits while the server hands it work)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds per completion before its worker is killed; it then scores 0 (default 5)")
    p.add_argument("--request-timeout", type=float, default=120.0,
                   help="seconds per request; completions not graded by then score 0 (default 120)")
    p.add_argument("--max-request-bytes", type=int, default=32 << 20,
                   help="larger request bodies are refused with 413 before they are read (default 32 MiB)")
    p.add_argument("--max-items", type=int, default=65536, help="completions per request (default 65536)")
    p.add_argument("--max-concurrency", type=int, default=64,
                   help="requests graded at once; more wait their turn (default 64)")
    p.add_argument("--chunk", type=int, default=128,
                   help="completions a worker takes at once: larger amortises the hand-over, smaller spreads a "
                        "batch over more workers (default 64)")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gradeset.commands.verify import parse_options
    from gradeset.serve.app import ServeConfig
    from gradeset.serve.server import serve

    if args.workers is None:
        args.workers = min(8, 2 * (os.cpu_count() or 1))
    for name, value in (("--workers", args.workers), ("--max-concurrency", args.max_concurrency),
                        ("--max-request-bytes", args.max_request_bytes), ("--max-items", args.max_items), ("--chunk", args.chunk)):
        if value < 1:
            raise GradesetError(f"{name} must be at least 1, got {value}")
    for name, value in (("--timeout", args.timeout), ("--request-timeout", args.request_timeout)):
        if not value > 0:
            raise GradesetError(f"{name} must be above 0, got {value}")
    if not 0 <= args.port <= 65535:
        raise GradesetError(f"--port must be 0..65535, got {args.port}")
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING), stream=sys.stderr,
                        format="gradeset serve: %(levelname)s %(message)s")
    config = ServeConfig(tasks=args.task or ["math"], options=parse_options(args.option), workers=args.workers,
                         timeout=args.timeout, request_timeout=args.request_timeout,
                         max_request_bytes=args.max_request_bytes, max_items=args.max_items,
                         max_concurrency=args.max_concurrency, chunk=args.chunk)
    try:
        return serve(config, args.host, args.port)
    except OSError as exc:
        raise GradesetError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
