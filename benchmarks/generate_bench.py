"""Generation throughput against a loopback OpenAI-compatible server with 50 ms latency.

Measures requests/s of ``gradeset.generate.generate_groups`` (one request per sample,
with its request cache on disk, i.e. everything a real run does) at concurrency
64 / 256 / 1024 against the ideal ``concurrency / latency``, and against the incumbents:

- a plain sequential loop like seed 001's (one blocking request after another),
- ``openai.AsyncOpenAI`` + ``asyncio.Semaphore`` (what most hand-written async scripts do),
- gradeset with its aiohttp and httpx transports (used when a proxy is configured).

The server runs in its own process so that client and server do not share one core.

    python benchmarks/generate_bench.py            # full run, writes benchmarks/results/generate.json
    python benchmarks/generate_bench.py --quick    # small smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADESET_NO_PROGRESS", "1")

import httpx  # noqa: E402  (imported here so that import time is not counted as request CPU)

from gradeset.generate import GenerateConfig, Stats, generate_groups  # noqa: E402

LATENCY = 0.05


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "loopback_server.py"), "--latency", str(latency),
                             "--no-record", "--reply", "The answer is \\boxed{5}."],
                            stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def groups_for(k: int, tag: str) -> list[dict]:
    return [{"prompt": f"{tag} question {i}: what is {i} + 1?", "answer": str(i + 1)} for i in range(k)]


def measured(fn):
    """Adds the client's CPU time per request (insensitive to other load on the machine)."""
    def wrap(*a, **kw):
        c0 = time.process_time()
        out = fn(*a, **kw)
        out["client_cpu_us_per_req"] = round((time.process_time() - c0) / out["requests"] * 1e6)
        return out
    return wrap


@measured
def bench_gradeset(url: str, conc: int, requests: int, transport: str = "auto") -> dict:
    cfg = GenerateConfig(backend="openai", model="bench", base_url=url, n=1, max_tokens=64, concurrency=conc,
                         transport=transport, timeout=60)
    stats = Stats()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = generate_groups(groups_for(requests, f"{transport}-{conc}"), cfg,
                              cache_path=Path(tmp) / "cache.jsonl", stats=stats)
        secs = time.perf_counter() - t0
    assert stats.failed == 0 and all(len(g["responses"]) == 1 for g in out)
    return {"requests": stats.requests, "seconds": round(secs, 3), "req_per_s": round(stats.requests / secs, 1)}


@measured
def bench_sequential(url: str, requests: int) -> dict:
    """Seed 001's shape: for each prompt, for each sample, one blocking call."""
    with httpx.Client(timeout=60) as client:
        t0 = time.perf_counter()
        for g in groups_for(requests, "seq"):
            r = client.post(url + "/chat/completions", json={
                "model": "bench", "max_tokens": 64, "temperature": 1.0,
                "messages": [{"role": "user", "content": g["prompt"]}]})
            r.raise_for_status()
            r.json()["choices"][0]["message"]["content"]
        secs = time.perf_counter() - t0
    return {"requests": requests, "seconds": round(secs, 3), "req_per_s": round(requests / secs, 1)}


@measured
def bench_openai_sdk(url: str, conc: int, requests: int, aiohttp: bool = False) -> dict:
    """The usual hand-written async script: AsyncOpenAI + a semaphore + gather
    (with the SDK's default httpx client, or its aiohttp client)."""
    import httpx
    import openai

    async def run() -> float:
        if aiohttp:
            http_client = openai.DefaultAioHttpClient(timeout=60)
        else:
            http_client = httpx.AsyncClient(limits=httpx.Limits(max_connections=conc,
                                                                max_keepalive_connections=conc), timeout=60)
        client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, http_client=http_client)
        sem = asyncio.Semaphore(conc)

        async def one(g):
            async with sem:
                r = await client.chat.completions.create(model="bench", max_tokens=64,
                                                         messages=[{"role": "user", "content": g["prompt"]}])
                return r.choices[0].message.content

        t0 = time.perf_counter()
        await asyncio.gather(*(one(g) for g in groups_for(requests, f"sdk-{conc}")))
        secs = time.perf_counter() - t0
        await client.close()
        return secs

    secs = asyncio.run(run())
    return {"requests": requests, "seconds": round(secs, 3), "req_per_s": round(requests / secs, 1)}


def _has_sdk_aiohttp() -> bool:
    try:
        import openai

        openai.DefaultAioHttpClient()
        return True
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small run (smoke test)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--rounds", type=int, default=30,
                   help="gradeset requests per run = rounds x concurrency (more rounds amortise connection set-up)")
    p.add_argument("--no-incumbents", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "generate.json"))
    args = p.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    seq_requests = 20 if args.quick else 60

    proc, url = start_server(LATENCY)
    rows = []
    try:
        bench_gradeset(url, 16, 64)  # warm-up: imports, first connections
        seq = bench_sequential(url, seq_requests)
        rows.append({"system": "sequential loop (seed 001)", "concurrency": 1, "ideal_req_per_s": 1 / LATENCY, **seq})
        for conc in args.concurrency:
            n_req = conc * rounds
            ideal = conc / LATENCY
            g = bench_gradeset(url, conc, n_req)
            rows.append({"system": "gradeset", "concurrency": conc, "ideal_req_per_s": ideal, **g})
            if not args.no_incumbents:
                mid_req = min(n_req, conc * 8)  # the slower incumbents: enough rounds, shorter runs
                try:
                    import aiohttp  # noqa: F401
                except ImportError:
                    pass
                else:
                    a = bench_gradeset(url, conc, mid_req, transport="aiohttp")
                    rows.append({"system": "gradeset (aiohttp transport)", "concurrency": conc,
                                 "ideal_req_per_s": ideal, **a})
                # httpx-based clients manage tens of requests/s here: fewer requests keep the run short.
                slow_req = min(n_req, max(conc, 400))
                h = bench_gradeset(url, conc, slow_req, transport="httpx")
                rows.append({"system": "gradeset (httpx transport)", "concurrency": conc, "ideal_req_per_s": ideal,
                             **h})
                s = bench_openai_sdk(url, conc, slow_req)
                rows.append({"system": "AsyncOpenAI + Semaphore", "concurrency": conc, "ideal_req_per_s": ideal, **s})
                if _has_sdk_aiohttp():
                    s = bench_openai_sdk(url, conc, mid_req, aiohttp=True)
                    rows.append({"system": "AsyncOpenAI(aiohttp) + Semaphore", "concurrency": conc,
                                 "ideal_req_per_s": ideal, **s})
    finally:
        proc.kill()
        proc.wait()

    for r in rows:
        r["pct_of_ideal"] = round(100 * r["req_per_s"] / r["ideal_req_per_s"], 1)
        r["x_sequential"] = round(r["req_per_s"] / seq["req_per_s"], 1)
    load = [round(x, 2) for x in os.getloadavg()]
    header = (f"{'system':<34} {'conc':>5} {'requests':>8} {'req/s':>9} {'ideal':>8} {'% ideal':>8} {'x seq':>7} "
              f"{'CPU us/req':>10}")
    print(f"loopback server latency {LATENCY * 1000:.0f} ms; {os.cpu_count()} CPUs; load average {load}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['system']:<34} {r['concurrency']:>5} {r['requests']:>8} {r['req_per_s']:>9.1f} "
              f"{r['ideal_req_per_s']:>8.0f} {r['pct_of_ideal']:>7.1f}% {r['x_sequential']:>7.1f} "
              f"{r['client_cpu_us_per_req']:>10}")
    at256 = [r for r in rows if r["system"] == "gradeset" and r["concurrency"] == 256]
    verdict = None
    if at256:
        verdict = at256[0]["pct_of_ideal"] >= 80.0
        print(f"gradeset at concurrency 256: {at256[0]['pct_of_ideal']}% of ideal "
              f"({'meets' if verdict else 'MISSES'} the 80% target)")
    result = {"benchmark": "generate", "latency_s": LATENCY, "cpus": os.cpu_count(), "load_average": load,
              "python": platform.python_version(),
              "quick": args.quick, "rows": rows, "meets_80pct_at_256": verdict}
    if not args.quick:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
