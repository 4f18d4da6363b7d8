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
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
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


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its children (the grading workers): a cost per
    reward that does not depend on how loaded the machine is."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def with_cpu(pid: int, fn, *args, **kw) -> dict:
    c0 = tree_cpu(pid)
    out = fn(*args, **kw)
    out["server_cpu_us_per_reward"] = round((tree_cpu(pid) - c0) / max(1, out["rewards"]) * 1e6, 1)
    return out


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
    ap.add_argument("--workers", type=int, default=2, help="gradeset serve --workers")
    ap.add_argument("--chunk", type=int, nargs="+", default=[128], help="gradeset serve --chunk value(s)")
    ap.add_argument("--also-workers", type=int, nargs="*", default=[4],
                    help="further gradeset servers with these --workers, measured in the same rounds")
    ap.add_argument("--hostile-every", type=int, default=10000,
                    help="1 in this many completions is hostile in the hostile row (each holds a worker --timeout s)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve.json"))
    args = ap.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    reps = 10 if args.quick else 40
    from serve_process import ServeProcess

    rows = []
    rounds = 1 if args.quick else 3
    servers = {}
    with contextlib.ExitStack() as stack:
        for w in sorted({args.workers, *args.also_workers}):
            for chunk in args.chunk:
                srv = stack.enter_context(ServeProcess("--task", "math", "--workers", str(w), "--timeout", "5",
                                                       "--chunk", str(chunk)))
                label = f"gradeset serve ({w} workers)" if len(args.chunk) == 1 else \
                    f"gradeset serve ({w} workers, chunk {chunk})"
                servers[label] = (srv.proc.pid, srv.url)
        proc, url = start_incumbent()
        stack.callback(lambda: (proc.terminate(), proc.wait(timeout=30)))
        servers["incumbent: ThreadingHTTPServer + verifier in threads"] = (proc.pid, url)
        # rounds alternate between the servers so that a change in the machine's load hits all alike;
        # each server's median round is reported
        runs: dict[str, list[dict]] = {name: [] for name in servers}
        for _ in range(rounds):
            for name, (pid, u) in servers.items():
                runs[name].append(with_cpu(pid, lambda u=u: asyncio.run(
                    throughput(u, args.clients, args.batch, seconds / rounds))))
                runs[name][-1].update({f"batch256_{k}": v for k, v in asyncio.run(
                    batch_latency(u, 256, max(3, reps // rounds))).items() if k in ("p50_s", "p99_s")})
        for name, rs in runs.items():
            rs.sort(key=lambda r: r["rewards_per_s"])
            rows.append({"server": name, **rs[len(rs) // 2], "rounds_rewards_per_s": [r["rewards_per_s"] for r in rs]})
        name = next(n for n in servers if n.startswith(f"gradeset serve ({args.workers} workers"))
        pid, u = servers[name]
        h = asyncio.run(throughput(u, args.clients, args.batch, seconds / rounds, hostile_every=args.hostile_every))
        with urllib.request.urlopen(f"{u}/health", timeout=30) as resp:
            timeouts = json.loads(resp.read())["timeouts"]
        rows.append({"server": f"{name}, 1 in {args.hostile_every} hostile", **h, "grader_timeouts": timeouts})

    cols = ["server", "rewards_per_s", "server_cpu_us_per_reward", "request_p99_s", "batch256_p50_s",
            "batch256_p99_s", "rewards", "seconds"]
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
