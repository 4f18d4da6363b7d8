"""HTTP backends against a real OpenAI/Anthropic-compatible server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from loopback_server import Fault, LoopbackServer

from gradeset.generate import GenerateConfig, Stats, complete, complete_full, generate_groups
from gradeset.records import validate_group

META_KEYS = {"model", "temperature", "top_p", "finish_reason", "prompt_tokens", "completion_tokens",
             "generation_time_ms", "sample_index", "two_step_applied", "error"}


def echo(req, choice):
    return f"[{choice}] {req.prompt_text}"


def cfg_for(srv, **kw) -> GenerateConfig:
    base = {"backend": "openai", "model": "loop", "base_url": srv.base_url, "n": 4, "max_tokens": 64,
            "retries": 3, "backoff_base": 0.05, "timeout": 10}
    base.update(kw)
    return GenerateConfig(**base)


def prompts(k: int) -> list[dict]:
    return [{"prompt": f"question {i}", "answer": str(i)} for i in range(k)]


def test_n_samples_per_group_with_meta_in_one_request_each():
    with LoopbackServer(reply=echo) as srv:
        stats = Stats()
        out = generate_groups(prompts(3), cfg_for(srv, system_prompt="Be brief.", temperature=0.7, top_p=0.9),
                              stats=stats)
        reqs = srv.generation_requests()
    assert len(reqs) == 3 and all(r.body["n"] == 4 for r in reqs)
    assert reqs[0].body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert reqs[0].body["temperature"] == 0.7 and reqs[0].body["top_p"] == 0.9
    for i, g in enumerate(out):
        assert validate_group(g) == []
        assert [r["meta"]["sample_index"] for r in g["responses"]] == [0, 1, 2, 3]
        assert [r["text"] for r in g["responses"]] == [f"[{c}] question {i}" for c in range(4)]
        for r in g["responses"]:
            assert set(r["meta"]) >= META_KEYS
            assert r["meta"]["model"] == "loop" and r["meta"]["finish_reason"] == "stop"
            assert r["meta"]["temperature"] == 0.7 and r["meta"]["error"] is None
            assert r["meta"]["completion_tokens"] >= 1 and r["meta"]["prompt_tokens"] >= 2
            assert "failed" not in r
    assert stats.generated == 12 and stats.failed == 0 and stats.requests == 3


@pytest.mark.parametrize("mode", [False, "reject"])
def test_falls_back_to_one_request_per_sample(mode):
    with LoopbackServer(reply=echo, support_n=mode) as srv:
        out = generate_groups(prompts(3), cfg_for(srv, concurrency=1))
        reqs = srv.generation_requests()
    assert all(len(g["responses"]) == 4 for g in out)
    texts = [r["text"] for g in out for r in g["responses"]]
    assert len(texts) == 12
    # The first request tries n; after the server ignores or refuses it, single requests only.
    assert reqs[0].body.get("n") == 4
    assert all("n" not in r.body for r in reqs[1:])
    wasted = 1 if mode == "reject" else 0  # an ignored n still yields one sample
    assert len(reqs) == 12 + wasted


def test_429_waits_for_retry_after_then_succeeds():
    with LoopbackServer(reply="ok", faults=[Fault("429", retry_after=0.6)]) as srv:
        stats = Stats()
        out = generate_groups(prompts(1), cfg_for(srv, n=1), stats=stats)
        reqs = srv.generation_requests()
    assert [r.fault for r in reqs] == ["429", None]
    assert reqs[1].time - reqs[0].time >= 0.55  # honoured Retry-After, not the 50 ms back-off
    assert out[0]["responses"][0]["text"] == "ok" and stats.retries == 1 and stats.failed == 0


def test_429_pauses_other_requests_too():
    with LoopbackServer(reply="ok", faults=[Fault("429", retry_after=0.5)], latency=0.05) as srv:
        generate_groups(prompts(6), cfg_for(srv, n=1, concurrency=1))
        reqs = srv.generation_requests()
    assert reqs[0].fault == "429"
    assert all(r.time - reqs[0].time >= 0.45 for r in reqs[1:])


def test_500_and_dropped_connection_are_retried():
    faults = [Fault("drop"), Fault("500"), Fault("500")]
    with LoopbackServer(reply="fine", faults=faults) as srv:
        stats = Stats()
        out = generate_groups(prompts(1), cfg_for(srv, n=1), stats=stats)
        reqs = srv.generation_requests()
    assert [r.fault for r in reqs] == ["drop", "500", "500", None]
    assert out[0]["responses"][0]["text"] == "fine"
    assert stats.retries == 3 and stats.errors == 3 and stats.failed == 0


def test_drop_on_a_kept_alive_connection_is_resent_at_once():
    # After the 500 the connection is reused; the server then closes it without a byte of
    # answer (as servers do with idle keep-alive connections): resent on a new connection
    # without spending a retry or a back-off.
    with LoopbackServer(reply="fine", faults=[Fault("500"), Fault("drop")]) as srv:
        stats = Stats()
        out = generate_groups(prompts(1), cfg_for(srv, n=1, transport="raw"), stats=stats)
        reqs = srv.generation_requests()
    assert [r.fault for r in reqs] == ["500", "drop", None]
    assert out[0]["responses"][0]["text"] == "fine" and stats.retries == 1


def test_slow_response_times_out_and_is_retried():
    # each answer names the request it answers: the text proves which one the client used,
    # so no clock is needed (the slow answer would only come after 60 s)
    with LoopbackServer(reply=lambda r: f"answer to request {r.index}", faults=[Fault("slow", delay=60.0)]) as srv:
        out = generate_groups(prompts(1), cfg_for(srv, n=1, timeout=0.4))
        reqs = srv.generation_requests()
    assert [r.fault for r in reqs] == ["slow", None]
    assert out[0]["responses"][0]["text"] == f"answer to request {reqs[1].index}"


def test_malformed_json_is_recorded_as_failure_not_dropped():
    with LoopbackServer(reply="x", faults=[Fault("malformed", times=100)]) as srv:
        stats = Stats()
        out = generate_groups(prompts(2), cfg_for(srv, n=2, retries=2), stats=stats)
        n_requests = len(srv.generation_requests())
    assert n_requests == 2 * 3  # each request tried 1 + 2 times
    for g in out:
        assert len(g["responses"]) == 2
        for r in g["responses"]:
            assert r["failed"] is True and r["text"] == ""
            assert "malformed" in r["meta"]["error"]
        assert validate_group(g) == []
    assert stats.failed == 4 and stats.generated == 0


def test_answer_without_choices_is_a_failure_not_a_loop():
    import json as _json

    from loopback_server import _http

    class NoChoices(LoopbackServer):
        def _answer(self, req, path, body, n):
            return _http(200, _json.dumps({"id": "x", "choices": [], "usage": {}}).encode())

    with NoChoices(reply=echo) as srv:
        stats = Stats()
        out = generate_groups(prompts(1), cfg_for(srv, n=3, retries=1), stats=stats)
        sent = len(srv.generation_requests())
    assert sent == 2 and stats.failed == 3
    assert all("no choices" in r["meta"]["error"] for r in out[0]["responses"])


def test_client_errors_fail_at_once_and_rerun_retries_only_failures(tmp_path):
    cache = tmp_path / "c.jsonl"
    faults = [Fault("400", times=1, match=lambda r: r.prompt_text == "question 1")]
    with LoopbackServer(reply=echo, faults=faults) as srv:
        stats = Stats()
        out = generate_groups(prompts(3), cfg_for(srv, n=2), cache_path=cache, stats=stats)
        first = len(srv.generation_requests())
        assert first == 3  # 400 is not retried
        assert [r.get("failed", False) for r in out[1]["responses"]] == [True, True]
        assert stats.failed == 2 and stats.generated == 4
        stats2 = Stats()
        out2 = generate_groups(prompts(3), cfg_for(srv, n=2), cache_path=cache, stats=stats2)
        again = srv.generation_requests()[first:]
    assert [r.prompt_text for r in again] == ["question 1"]
    assert stats2.cached == 4 and stats2.generated == 2 and stats2.failed == 0
    assert [r["text"] for r in out2[1]["responses"]] == ["[0] question 1", "[1] question 1"]
    assert out2[0]["responses"] == out[0]["responses"]


def test_run_stops_when_every_request_is_refused(tmp_path):
    from gradeset.errors import GradesetError

    with LoopbackServer(reply="x", faults=[Fault("401", times=10_000)]) as srv:
        with pytest.raises(GradesetError, match="every request is refused.*HTTP 401"):
            generate_groups(prompts(200), cfg_for(srv, n=1, concurrency=4))
        sent = len(srv.generation_requests())
    assert sent < 20  # stopped after a few refusals, not one per prompt
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_prompts(src, 30)
    with LoopbackServer(reply="x", faults=[Fault("404", times=10_000)]) as srv:
        r = subprocess.run(_gradeset("generate", str(src), "--out", str(out), "--model", "nope", "--base-url",
                                     srv.base_url, "-n", "1", "-q"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "every request is refused (HTTP 404" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_changed_sampling_parameters_do_not_reuse_cache(tmp_path):
    cache = tmp_path / "c.jsonl"
    with LoopbackServer(reply=echo) as srv:
        generate_groups(prompts(2), cfg_for(srv, n=2), cache_path=cache)
        generate_groups(prompts(2), cfg_for(srv, n=2, concurrency=3), cache_path=cache)  # same samples
        assert len(srv.generation_requests()) == 2
        generate_groups(prompts(2), cfg_for(srv, n=2, temperature=0.3), cache_path=cache)
        assert len(srv.generation_requests()) == 4
        # n grows from 2 to 3: only sample 2 of each group is new
        stats = Stats()
        out = generate_groups(prompts(2), cfg_for(srv, n=3), cache_path=cache, stats=stats)
        new = srv.generation_requests()[4:]
    assert stats.cached == 4 and stats.generated == 2
    assert all(r.body.get("n", 1) == 1 for r in new)
    assert [r["meta"]["sample_index"] for r in out[0]["responses"]] == [0, 1, 2]


def test_rerun_on_own_output_adds_only_missing_samples(tmp_path):
    faults = [Fault("500", times=100, match=lambda r: r.prompt_text == "question 1")]
    with LoopbackServer(reply=echo, faults=faults) as srv:
        first = generate_groups(prompts(2), cfg_for(srv, n=2, retries=0))  # no cache file at all
        assert [r.get("failed", False) for r in first[1]["responses"]] == [True, True]
        sent = len(srv.generation_requests())
        srv.faults.clear()
        # same config on its own output: nothing new for group 0, the failures of group 1 are redone
        again = generate_groups(first, cfg_for(srv, n=2, retries=0))
        redo = srv.generation_requests()[sent:]
        assert [r.prompt_text for r in redo] == ["question 1"]
        assert again[0]["responses"] == first[0]["responses"]
        assert [r["text"] for r in again[1]["responses"]] == ["[0] question 1", "[1] question 1"]
        # asking for more samples adds only the new sample indices
        more = generate_groups(again, cfg_for(srv, n=3, retries=0))
        assert [r["meta"]["sample_index"] for r in more[0]["responses"]] == [0, 1, 2]
        assert len(srv.generation_requests()) == sent + 1 + 2


def test_duplicate_prompts_get_their_own_samples():
    with LoopbackServer(reply=lambda r, c: f"s{r.index}-{c}") as srv:
        out = generate_groups([{"prompt": "same"}, {"prompt": "same"}], cfg_for(srv, n=2))
    a, b = ([r["text"] for r in g["responses"]] for g in out)
    assert len(a) == len(b) == 2 and set(a).isdisjoint(b)


def test_two_step_continues_without_marker_over_chat_and_completions():
    def reply(req):
        body = req.body
        prefill = body["messages"][-1]["content"] if body.get("continue_final_message") else None
        if body.get("prompt", "").endswith("</think>\n\n"):
            prefill = "completion-prefill"
        if prefill is not None:
            return {"text": "Final: \\boxed{5}", "completion_tokens": 4}
        if "thinks" in req.prompt_text:
            return {"text": "hmm</think>answer 5", "completion_tokens": 5}
        return {"text": "still thinking", "completion_tokens": 30, "finish_reason": "length"}

    groups = [{"prompt": "never stops"}, {"prompt": "thinks"}]
    for endpoint in ("chat", "completions"):
        with LoopbackServer(reply=reply) as srv:
            stats = Stats()
            out = generate_groups(groups, cfg_for(srv, n=1, two_step=True, max_tokens=40, stage2_tokens=10,
                                                  endpoint=endpoint), stats=stats)
            reqs = srv.generation_requests()
        assert len(reqs) == 3
        stage1 = [r for r in reqs if r.body["max_tokens"] == 30]
        stage2 = [r for r in reqs if r.body["max_tokens"] == 10]
        assert len(stage1) == 2 and len(stage2) == 1
        if endpoint == "chat":
            assert stage2[0].body["messages"][-1] == {"role": "assistant", "content": "still thinking\n</think>\n\n"}
            assert stage2[0].body["add_generation_prompt"] is False
        else:
            assert stage2[0].body["prompt"] == "never stops" + "still thinking\n</think>\n\n"
        forced, natural = out[0]["responses"][0], out[1]["responses"][0]
        assert forced["text"] == "still thinking\n</think>\n\nFinal: \\boxed{5}"
        assert forced["meta"]["two_step_applied"] is True
        assert forced["meta"]["stage1_tokens"] == 30 and forced["meta"]["stage2_tokens"] == 4
        assert forced["meta"]["completion_tokens"] == 34 and forced["meta"]["finish_reason"] == "stop"
        assert natural["text"] == "hmm</think>answer 5" and natural["meta"]["two_step_applied"] is False
        assert stats.two_step == 1


def test_complete_returns_one_text_per_prompt_in_order():
    with LoopbackServer(reply=lambda r: r.prompt_text.upper(), faults=[Fault("500", times=10,
                        match=lambda r: r.prompt_text == "broken")]) as srv:
        cfg = cfg_for(srv, n=8, retries=1)
        texts = complete(["alpha", [{"role": "user", "content": "beta"}], "broken", "gamma"], cfg)
        full = complete_full(["broken"], cfg)
        reqs = srv.generation_requests()
    assert texts == ["ALPHA", "BETA", "", "GAMMA"]
    assert full[0]["failed"] is True and "500" in full[0]["meta"]["error"]
    assert all("n" not in r.body for r in reqs)  # one completion each, whatever cfg.n says


def test_concurrency_cap_is_respected():
    with LoopbackServer(reply="ok", latency=0.05) as srv:
        t0 = time.monotonic()
        generate_groups(prompts(40), cfg_for(srv, n=1, concurrency=8))
        elapsed = time.monotonic() - t0
        assert srv.max_connections <= 8
    assert elapsed >= 40 / 8 * 0.05 * 0.9


def test_rpm_limit_paces_real_requests():
    with LoopbackServer(reply="ok") as srv:
        t0 = time.monotonic()
        generate_groups(prompts(11), cfg_for(srv, n=1, concurrency=16, rpm=1200))
        elapsed = time.monotonic() - t0
        reqs = srv.generation_requests()
    span = reqs[-1].time - reqs[0].time
    assert span >= 0.45 and elapsed >= span  # 10 gaps of 50 ms at least (load only widens them)


def test_httpx_transport_works_too():
    with LoopbackServer(reply=echo, faults=[Fault("drop"), Fault("500")]) as srv:
        out = generate_groups(prompts(2), cfg_for(srv, n=2, transport="httpx"))
    assert [r["text"] for r in out[1]["responses"]] == ["[0] question 1", "[1] question 1"]


def test_anthropic_backend_over_messages_api():
    pytest.importorskip("anthropic")
    faults = [Fault("429", retry_after=0.3), Fault("malformed")]
    with LoopbackServer(reply=lambda r: f"A: {r.prompt_text}", faults=faults) as srv:
        cfg = GenerateConfig(backend="anthropic", model="claude-x", base_url=srv.root_url, n=2, max_tokens=32,
                             system_prompt="sys", retries=3, backoff_base=0.05, concurrency=1)
        stats = Stats()
        out = generate_groups(prompts(1), cfg, stats=stats)
        reqs = srv.generation_requests()
    assert all(r.path == "/v1/messages" for r in reqs)
    assert reqs[-1].body["system"] == "sys" and reqs[-1].body["messages"] == [{"role": "user", "content": "question 0"}]
    assert reqs[1].time - reqs[0].time >= 0.25
    assert [r["text"] for r in out[0]["responses"]] == ["A: question 0"] * 2
    assert out[0]["responses"][0]["meta"]["finish_reason"] == "stop"
    assert stats.retries == 2 and stats.failed == 0


# -- the command, killed and resumed ---------------------------------------------------------

def _gradeset(*args: str) -> list[str]:
    return [sys.executable, "-m", "gradeset", *args]


def _write_prompts(path: Path, k: int) -> None:
    path.write_text("".join(orjson.dumps({"prompt": f"question {i}", "answer": str(i)}).decode() + "\n"
                            for i in range(k)))


def test_cli_generate_then_rerun_sends_nothing(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_prompts(src, 5)
    with LoopbackServer(reply=echo) as srv:
        cmd = _gradeset("generate", str(src), "--out", str(out), "--model", "loop", "--base-url", srv.base_url,
                        "-n", "3", "--max-tokens", "16", "--system-prompt", "S", "-q")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert len(srv.generation_requests()) == 5
        r2 = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r2.returncode == 0 and len(srv.generation_requests()) == 5
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(rows) == 5 and all(len(g["responses"]) == 3 for g in rows)
    assert "read 5, written 5, rejected 0" in r.stderr
    assert "15 samples = 15 cached + 0 generated + 0 failed" in r2.stderr


def test_cli_writes_shard_folder_with_parameters(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "gen"
    _write_prompts(src, 4)
    with LoopbackServer(reply=echo) as srv:
        r = subprocess.run(_gradeset("generate", str(src), "--out", str(out) + "/", "--model", "loop", "--base-url",
                                     srv.base_url, "-n", "2", "--temperature", "0.6", "-q"),
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["parameters"]["generate"]["temperature"] == 0.6
    rows = [orjson.loads(x) for x in (out / "shard-00000.jsonl").read_bytes().splitlines()]
    assert len(rows) == 4 and all(len(g["responses"]) == 2 for g in rows)


def test_cli_bad_options_exit_2(tmp_path):
    src = tmp_path / "in.jsonl"
    _write_prompts(src, 1)
    r = subprocess.run(_gradeset("generate", str(src), "--out", str(tmp_path / "o.jsonl"), "--model", "m",
                                 "--two-step", "--max-tokens", "10", "--stage2-tokens", "20"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "stage2_tokens" in r.stderr and "Traceback" not in r.stderr


def test_kill_9_and_resume_sends_no_request_twice(tmp_path):
    groups, n, conc = 60, 2, 4
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_prompts(src, groups)
    with LoopbackServer(reply=echo, latency=0.03) as srv:
        cmd = _gradeset("generate", str(src), "--out", str(out), "--model", "loop", "--base-url", srv.base_url,
                        "-n", str(n), "--max-tokens", "16", "--concurrency", str(conc), "-q")
        env = {**os.environ, "GRADESET_NO_PROGRESS": "1"}
        # answer a third of the run, then hold: once every slot of the client is held it can
        # send nothing more, so the kill lands at a known point however loaded the machine is
        srv.hold_after(groups // 3)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert srv.wait_held(conc, timeout=120), "the client never filled its slots"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        srv.release()
        run1 = [r.headers.get("x-client-request-id") for r in srv.generation_requests()]
        assert len(run1) == groups // 3 + conc, "the kill must land mid-run"
        assert not out.exists()  # nothing half-written
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        run2 = [r.headers.get("x-client-request-id") for r in srv.generation_requests()][len(run1):]
    assert all(run1) and all(run2)
    assert len(set(run1)) == len(run1) and len(set(run2)) == len(run2)
    resent = set(run1) & set(run2)
    # Only requests in flight at the kill may be sent again: at most `conc`, all among the last sent.
    assert len(resent) <= conc
    assert resent <= set(run1[-conc:])
    assert len(run1) + len(run2) - len(resent) == groups
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(rows) == groups and len({g["id"] for g in rows}) == groups
    for i, g in enumerate(rows):
        assert [r["meta"]["sample_index"] for r in g["responses"]] == list(range(n))
        assert [r["text"] for r in g["responses"]] == [f"[{c}] question {i}" for c in range(n)]


def test_ctrl_c_stops_gracefully_and_keeps_finished_work(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    n, answered, conc = 200, 10, 4
    _write_prompts(src, n)
    with LoopbackServer(reply=echo) as srv:
        cmd = _gradeset("generate", str(src), "--out", str(out), "--model", "loop", "--base-url", srv.base_url,
                        "-n", "1", "--max-tokens", "16", "--concurrency", str(conc), "-q")
        # the server answers 10 requests and then holds every answer: Ctrl-C is sent while the
        # client is provably mid-run (all its slots waiting), not after a guessed delay
        srv.hold_after(answered)
        # faulthandler: if the client ever hangs after Ctrl-C, SIGABRT dumps where every thread is
        # SIGINT back to its default in the child: a suite started in the background (`cmd &`
        # in a script) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        assert srv.wait_held(conc, timeout=120), "the client never filled its slots"
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            srv.release()
            pytest.fail(f"generate did not stop within 60 s of Ctrl-C; its threads:\n{err}")
        srv.release()
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "re-run resumes" in err
        cache = Path(str(out) + ".gencache.jsonl")
        kept = len(cache.read_bytes().splitlines())
        assert kept == answered  # every finished answer kept, nothing unanswered recorded
        before = len(srv.generation_requests())
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert len(srv.generation_requests()) - before == n - kept
    assert len(out.read_bytes().splitlines()) == n


# -- the lean HTTP client against hand-written wire answers ----------------------------------

def _raw_server(answers: list[bytes], split: int = 7):
    """A server that answers the k-th request on any connection with answers[k], in small pieces."""
    import asyncio
    import threading

    state = {"k": 0, "port": None, "loop": None}
    ready = threading.Event()

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                data = answers[min(state["k"], len(answers) - 1)]
                state["k"] += 1
                for i in range(0, len(data), split):
                    writer.write(data[i:i + split])
                    await writer.drain()
                    await asyncio.sleep(0)
                if b"Connection: close" in data or b"HTTP/1.0" in data:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def run():
        loop = asyncio.new_event_loop()
        state["loop"] = loop
        srv = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        state["port"] = srv.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(5)
    return state


def _chat_json(text: str) -> bytes:
    return orjson.dumps({"choices": [{"index": 0, "message": {"content": text}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 2}})


def test_raw_transport_reads_chunked_close_delimited_and_connection_close():
    body = _chat_json("chunked answer")
    half = len(body) // 2
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
               + f"{half:x}\r\n".encode() + body[:half] + b"\r\n"
               + f"{len(body) - half:x};ext=1\r\n".encode() + body[half:] + b"\r\n0\r\nX-Trailer: y\r\n\r\n")
    b2 = _chat_json("closing answer")
    close = (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " + str(len(b2)).encode() + b"\r\n\r\n" + b2)
    b3 = _chat_json("http10 answer")
    http10 = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b3
    import gzip

    b4 = gzip.compress(_chat_json("gzipped answer"))
    gz = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + str(len(b4)).encode() + b"\r\n\r\n" + b4
    st = _raw_server([chunked, chunked, close, http10, gz])
    cfg = GenerateConfig(model="m", base_url=f"http://127.0.0.1:{st['port']}/v1", n=1, concurrency=1,
                         transport="raw", retries=0, timeout=5)
    texts = complete(["a", "b", "c", "d", "e"], cfg)
    st["loop"].call_soon_threadsafe(st["loop"].stop)
    assert texts == ["chunked answer", "chunked answer", "closing answer", "http10 answer", "gzipped answer"]


def test_raw_transport_garbage_is_a_retryable_failure():
    st = _raw_server([b"NOT HTTP AT ALL\r\n\r\n"])
    cfg = GenerateConfig(model="m", base_url=f"http://127.0.0.1:{st['port']}/v1", n=1, transport="raw",
                         retries=1, backoff_base=0.01, timeout=5)
    full = complete_full(["a"], cfg)
    st["loop"].call_soon_threadsafe(st["loop"].stop)
    assert full[0]["failed"] and "malformed HTTP response" in full[0]["meta"]["error"]
    assert st["k"] == 2  # tried twice


def test_unreachable_server_is_a_recorded_failure():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    stats = Stats()
    out = generate_groups(prompts(1), GenerateConfig(model="m", base_url=f"http://127.0.0.1:{port}/v1", n=2,
                                                     retries=1, backoff_base=0.01), stats=stats)
    assert stats.failed == 2 and all(r["failed"] for r in out[0]["responses"])
    assert "cannot connect" in out[0]["responses"][0]["meta"]["error"]


def test_aiohttp_transport_if_installed():
    pytest.importorskip("aiohttp")
    with LoopbackServer(reply=echo, faults=[Fault("drop"), Fault("429", retry_after=0.1)]) as srv:
        out = generate_groups(prompts(2), cfg_for(srv, n=2, transport="aiohttp"))
    assert [r["text"] for r in out[0]["responses"]] == ["[0] question 0", "[1] question 0"]


def test_rpm_pacing_carries_across_chunks():
    from gradeset.generate import RequestCache
    from gradeset.generate.engine import Engine

    with LoopbackServer(reply="ok") as srv:
        engine = Engine(cfg_for(srv, n=1, rpm=600), RequestCache(None))  # one request per 100 ms
        engine.run(prompts(3))
        engine.run([{"prompt": f"more {i}"} for i in range(3)])  # a second chunk, a new event loop
        reqs = srv.generation_requests()
    gaps = [b.time - a.time for a, b in zip(reqs, reqs[1:])]
    assert len(reqs) == 6 and min(gaps) >= 0.08, gaps


def test_raw_transport_speaks_tls(tmp_path, monkeypatch):
    import shutil
    import ssl

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {r.stderr[-200:]!r}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate (verification stays on)
    with LoopbackServer(reply=echo, ssl=ctx) as srv:
        assert srv.base_url.startswith("https://")
        out = generate_groups(prompts(2), cfg_for(srv, n=2, transport="raw"))
    assert [r["text"] for r in out[1]["responses"]] == ["[0] question 1", "[1] question 1"]
