"""Generation building blocks: prompts, MCQ options, config, cache, limiter, back-off."""

from __future__ import annotations

import asyncio
import os
import random
import time

import orjson
import pytest
from pydantic import ValidationError

from gradeset.formats import read_groups
from gradeset.generate import GenerateConfig, RequestCache, build_prompt, sample_key
from gradeset.generate.limits import RateLimiter, backoff_delay, parse_retry_after
from gradeset.generate.prompts import append_options, needs_stage2, with_think_end
from gradeset.steps import build_step


def test_build_prompt_adds_and_replaces_system_prompt():
    p = build_prompt({"prompt": "What is 2+3?"}, system_prompt="Reason step by step.")
    assert p.messages == [{"role": "system", "content": "Reason step by step."},
                          {"role": "user", "content": "What is 2+3?"}]
    chat = [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}]
    p = build_prompt({"prompt": chat}, system_prompt="new")
    assert p.messages[0] == {"role": "system", "content": "new"}
    assert len(p.messages) == 2
    assert chat[0]["content"] == "old"  # the input record is not modified
    p = build_prompt({"prompt": chat})
    assert p.system == "old" and p.turns == [{"role": "user", "content": "hi"}]


def test_mcq_options_modes(data_dir):
    groups = list(read_groups(data_dir / "generate" / "mcq.jsonl"))
    q = groups[0]
    assert append_options(q["prompt"], q, "newlines").endswith("\n\nA. Mars\nB. Jupiter\nC. Venus\nD. Earth")
    assert append_options(q["prompt"], q, "inline") == (
        "Which planet is largest? Options: (A) Mars (B) Jupiter (C) Venus (D) Earth")
    assert append_options(q["prompt"], q, "none") == q["prompt"]
    assert append_options(q["prompt"], q, "auto") == append_options(q["prompt"], q, "newlines")
    # choices given as a JSON string (how CSV carries a list)
    assert "C. Carbon dioxide" in append_options(groups[1]["prompt"], groups[1], "auto")
    # auto does not repeat options the question already lists
    assert append_options(groups[2]["prompt"], groups[2], "auto") == groups[2]["prompt"]
    assert append_options(groups[2]["prompt"], groups[2], "newlines").count("C. 7") == 2
    # no options: nothing appended
    assert append_options("plain", {"prompt": "plain"}, "newlines") == "plain"
    p = build_prompt(q, mcq_options="inline")
    assert p.messages[-1]["content"].endswith("(D) Earth")


def test_two_step_marker_helpers():
    assert needs_stage2("thinking...", "</think>")
    assert not needs_stage2("a</think>b", "</think>")
    assert with_think_end("abc", "</think>") == "abc\n</think>\n\n"
    assert with_think_end("abc\n", "</think>") == "abc\n</think>\n\n"


def test_config_is_strict_and_checks_two_step():
    with pytest.raises(ValidationError):
        GenerateConfig(model="m", temprature=0.5)
    with pytest.raises(ValidationError, match="stage2_tokens"):
        GenerateConfig(model="m", two_step=True, max_tokens=100, stage2_tokens=100)
    cfg = GenerateConfig(model="m", two_step=True, max_tokens=100, stage2_tokens=30)
    assert cfg.stage1_tokens == 70
    assert GenerateConfig(model="m", max_tokens=100).stage1_tokens == 100


def test_fingerprint_changes_with_sampling_not_throughput():
    a = GenerateConfig(model="m", base_url="http://x/v1")
    assert a.sampling_fingerprint() == GenerateConfig(model="m", base_url="http://x/v1",
                                                      concurrency=999, rpm=5).sampling_fingerprint()
    for change in ({"temperature": 0.5}, {"model": "m2"}, {"base_url": "http://y/v1"}, {"max_tokens": 7},
                   {"system_prompt": "s"}, {"top_p": 0.9}, {"two_step": True, "stage2_tokens": 5}):
        b = GenerateConfig(**{"model": "m", "base_url": "http://x/v1", **change})
        assert b.sampling_fingerprint() != a.sampling_fingerprint(), change


def test_request_cache_survives_torn_line_and_keeps_last(tmp_path):
    path = tmp_path / "c.jsonl"
    k0, k1 = sample_key("g", 0, "f"), sample_key("g", 1, "f")
    assert k0 != k1 and sample_key("g", 0, "f") == k0
    with RequestCache(path) as c:
        c.put(k0, "g", 0, {"text": "a", "failed": True})
        c.put(k1, "g", 1, {"text": "b"})
        c.put(k0, "g", 0, {"text": "a2"})
    with open(path, "ab") as fh:
        fh.write(b'{"key": "torn", "resp')  # a crash mid-write
    c = RequestCache(path)
    assert c.torn_lines == 1
    assert c.get(k0) == {"text": "a2"} and c.done(k0) and c.done(k1)
    c.put(sample_key("g", 2, "f"), "g", 2, {"text": "c"})  # appends on a fresh line
    c.close()
    lines = path.read_bytes().splitlines()
    assert orjson.loads(lines[-1])["response"] == {"text": "c"}
    assert len(RequestCache(path)) == 3


def test_request_cache_reads_responses_back_from_disk(tmp_path):
    path = tmp_path / "c.jsonl"
    texts = {f"{i:024x}": "x" * (i * 37) + '"failed":true \n é' for i in range(50)}
    with RequestCache(path) as c:
        for i, (k, t) in enumerate(texts.items()):
            c.put(k, "g", i, {"text": t, "meta": {"sample_index": i}})
        c.put("f" * 24, "g", 99, {"text": "", "failed": True})
        c.release(next(iter(texts)))  # released from memory, still readable from disk
        assert c.get(next(iter(texts)))["text"] == texts[next(iter(texts))]
    c = RequestCache(path)
    assert len(c) == 51 and c.torn_lines == 0
    for i, (k, t) in enumerate(texts.items()):
        assert c.done(k) and c.get(k) == {"text": t, "meta": {"sample_index": i}}
    assert not c.done("f" * 24) and c.get("f" * 24)["failed"] is True
    assert c.get("missing") is None
    c.close()


def test_failed_samples_are_not_done(tmp_path):
    c = RequestCache(tmp_path / "c.jsonl")
    c.put("k", "g", 0, {"text": "", "failed": True})
    assert not c.done("k") and c.get("k")["failed"]
    c.close()


class VirtualClock:
    """Time that moves only when the limiter sleeps: pacing is checked exactly, whatever the load."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


def test_rpm_limiter_paces_requests():
    clock = VirtualClock()

    async def go():
        lim = RateLimiter(rpm=1200, clock=clock, sleep=clock.sleep)  # one every 50 ms
        stamps = []

        async def one():
            await lim.acquire()
            stamps.append(clock())

        await asyncio.gather(*(one() for _ in range(21)))
        return stamps

    stamps = asyncio.run(go())
    assert stamps == pytest.approx([i * 0.05 for i in range(21)])  # 20 intervals of 50 ms, no more


def test_tpm_limiter_waits_for_tokens_and_refunds():
    clock = VirtualClock()

    async def go():
        lim = RateLimiter(tpm=6000, clock=clock, sleep=clock.sleep)  # 100 tokens/s, bucket of 6000
        await lim.acquire(6000)  # the full bucket at once
        first = clock()
        lim.settle(6000, 5950)  # 50 unused tokens come back
        await lim.acquire(100)  # the other 50 take 0.5 s to refill
        return first, clock()

    first, second = asyncio.run(go())
    assert first == 0.0 and second == pytest.approx(0.5)


def test_pause_holds_every_request():
    clock = VirtualClock()

    async def go():
        lim = RateLimiter(clock=clock, sleep=clock.sleep)
        lim.pause(0.3)
        done = []

        async def one():
            await lim.acquire()
            done.append(clock())

        await asyncio.gather(one(), one())
        return done

    assert asyncio.run(go()) == [pytest.approx(0.3)] * 2


def test_real_clock_limiter_never_runs_early():
    """The default clock and sleep: a lower bound only (a loaded machine can only be later)."""
    async def go():
        lim = RateLimiter(rpm=1200)
        t0 = time.monotonic()
        await asyncio.gather(*(lim.acquire() for _ in range(5)))
        return time.monotonic() - t0

    assert asyncio.run(go()) >= 4 * 0.05 * 0.95


def test_backoff_is_exponential_jittered_and_capped():
    rng = random.Random(0)
    d = [backoff_delay(a, 1.0, 8.0, rng) for a in range(6)]
    assert 0.5 <= d[0] <= 1.0 and 1.0 <= d[1] <= 2.0 and 2.0 <= d[2] <= 4.0
    assert all(x <= 8.0 for x in d) and d[5] >= 4.0
    assert len({round(backoff_delay(3, 1.0, 60, rng), 6) for _ in range(20)}) > 10


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_generate_step_is_registered_and_validates():
    step = build_step("generate", {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "n": 2})
    assert step.cfg.n == 2
    import pickle

    assert pickle.loads(pickle.dumps(step)).cfg == step.cfg
    from gradeset.errors import GradesetError

    with pytest.raises((GradesetError, ValidationError)):
        build_step("generate", {"model": "m", "nn": 3})


def test_vllm_backend_reports_missing_extra_or_gpu():
    from gradeset.errors import GradesetError
    from gradeset.generate.backends import get_backend

    if os.environ.get("GRADESET_TEST_VLLM"):
        pytest.skip("vLLM is exercised for real in test_generate_local")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(GradesetError, match=r"gradeset\[vllm\]"):
            get_backend(GenerateConfig(backend="vllm", model="/nonexistent"))
    else:
        with pytest.raises(GradesetError):
            get_backend(GenerateConfig(backend="vllm", model="/nonexistent"))
