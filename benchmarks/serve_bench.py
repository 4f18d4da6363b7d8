"""Online reward throughput and latency of ``gradeset serve`` against a hand-written reward server.

Both servers answer OpenRLHF's ``POST /get_reward`` with the math verifier:

- **gradeset serve** (``--workers 2``): asyncio HTTP, lanes of killable worker processes;
- **incumbent**: what a hand-written reward server usually is — ``http.server.ThreadingHTTPServer``
  calling the same verifier in its request threads (no process pool, no time limit: one
  hostile completion hangs its request forever, so the hostile row is gradeset's only).

Each server runs in its own process; the client is asyncio + aiohttp in this process. On
the 2-core machine client and server share the cores, as a trainer's driver and its reward
server would.

Measured:

- rewards/s with 64 concurrent clients, each posting batches of ``--batch`` completions;
- latency (p50/p99) of one batch of 256 completions, sequential requests;
- rewards/s with 64 clients when 1 in 10000 completions is hostile (``\\boxed{9^{9^{9^{9}}}}``).

    python benchmarks/serve_bench.py            # full run, writes benchmarks/results/serve.json
    python benchmarks/serve_bench.py --quick    # small smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("GRADESET_NO_PROGRESS", "1")

import aiohttp  # noqa: E402

HOSTILE = r"\boxed{9^{9^{9^{9}}}}"

INCUMBENT = r'''
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from gradeset.verify import get_verifier
verify = get_verifier("math")

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rewards = []
        for q, p, label in zip(body["query"], body["prompts"], body["labels"]):
            resp = q[len(p):] if q.startswith(p) else q
            rewards.append(float(verify(resp, label).score))
        out = json.dumps({"rewards": rewards}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
print(srv.server_address[1], flush=True)
srv.serve_forever()
'''


def start_incumbent() -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", INCUMBENT], stdout=subprocess.PIPE, text=True, env=env)
    port = int(proc.stdout.readline())
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    return proc, url


def wait_ready(url: str, deadline_s: float = 120.0) -> None:
    host, port = url.rsplit("/", 1)[1].split(":")
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} never came up")


def batch(k: int, offset: int, hostile_every: int = 0) -> dict:
    prompts, queries, labels = [], [], []
    for j in range(k):
        i = offset + j
        p = f"<|im_start|>user\nWhat is {i} / 2?<|im_end|>\n<|im_start|>assistant\n"
        answer = f"\\frac{{{i}}}{{2}}" if i % 3 else f"{i + 1}"
        text = HOSTILE if hostile_every and i % hostile_every == hostile_every - 1 else f"So it is \\boxed{{{answer}}}."
        prompts.append(p)
        queries.append(p + text)
        labels.append(f"{i / 2:g}")
    return {"query": queries, "prompts": prompts, "labels": labels}


async def throughput(url: str, clients: int, batch_size: int, seconds: float, hostile_every: int = 0) -> dict:
    done = 0
    requests = 0
    offset = 0  # one numbering across clients, so 1 in ``hostile_every`` completions overall is hostile
    latencies: list[float] = []
    end = time.monotonic() + seconds
    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=600)) as session:
        async def client(c: int) -> None:
            nonlocal done, requests, offset
            while time.monotonic() < end:
                payload = batch(batch_size, offset, hostile_every)
                offset += batch_size
                t0 = time.monotonic()
                async with session.post(f"{url}/get_reward", json=payload) as resp:
                    out = await resp.json()
                latencies.append(time.monotonic() - t0)
                assert len(out["rewards"]) == batch_size
                done += batch_size
                requests += 1

        t0 = time.monotonic()
        await asyncio.gather(*(client(c) for c in range(clients)))
        elapsed = time.monotonic() - t0
    latencies.sort()
    return {"rewards": done, "requests": requests, "seconds": round(elapsed, 2),
            "rewards_per_s": round(done / elapsed, 1),
            "request_p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3)}


async def batch_latency(url: str, size: int, reps: int) -> dict:
    lat = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        for r in range(reps):
            payload = batch(size, r * size)
            t0 = time.monotonic()
            async with session.post(f"{url}/get_reward", json=payload) as resp:
                out = await resp.json()
            lat.append(time.monotonic() - t0)
            assert len(out["rewards"]) == size
    lat.sort()
    return {"batch": size, "reps": reps, "p50_s": round(lat[len(lat) // 2], 3),
            "p99_s": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3), "max_s": round(lat[-1], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16, help="completions per request in the throughput runs")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--hostile-every", type=int, default=10000,
                    help="1 in this many completions is hostile in the hostile row (each holds a worker --timeout s)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve.json"))
    args = ap.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    reps = 10 if args.quick else 40
    from serve_process import ServeProcess

    rows = []
    with ServeProcess("--task", "math", "--workers", "2", "--timeout", "5") as srv:
        t = asyncio.run(throughput(srv.url, args.clients, args.batch, seconds))
        lat = asyncio.run(batch_latency(srv.url, 256, reps))
        rows.append({"server": "gradeset serve (2 workers)", **t, "batch256_p50_s": lat["p50_s"],
                     "batch256_p99_s": lat["p99_s"]})
        h = asyncio.run(throughput(srv.url, args.clients, args.batch, seconds, hostile_every=args.hostile_every))
        rows.append({"server": f"gradeset serve, 1 in {args.hostile_every} hostile", **h, "batch256_p50_s": None,
                     "batch256_p99_s": None, "grader_timeouts": srv.health()["timeouts"]})
    proc, url = start_incumbent()
    try:
        t = asyncio.run(throughput(url, args.clients, args.batch, seconds))
        lat = asyncio.run(batch_latency(url, 256, reps))
        rows.append({"server": "incumbent: ThreadingHTTPServer + verifier in threads", **t,
                     "batch256_p50_s": lat["p50_s"], "batch256_p99_s": lat["p99_s"]})
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    cols = ["server", "rewards_per_s", "request_p99_s", "batch256_p50_s", "batch256_p99_s", "rewards", "seconds"]
    widths = [max(len(c), *(len(str(r.get(c))) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r.get(c)).ljust(w) for c, w in zip(cols, widths, strict=True)))
    result = {"benchmark": "serve", "clients": args.clients, "batch": args.batch, "seconds": seconds,
              "quick": args.quick, "cpus": os.cpu_count(), "python": platform.python_version(),
              "machine": platform.machine(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
