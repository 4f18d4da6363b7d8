"""Two-step (budget-forced) generation against servers without vLLM's extra fields (issue 16 item 7).

The loopback server refuses ``continue_final_message`` / ``add_generation_prompt`` with 422
exactly as ``transformers serve`` does, so CI covers the fallback without a heavy server;
the last test runs the real ``transformers serve`` when it is installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from loopback_server import VLLM_ONLY_FIELDS, LoopbackServer

from gradeset.generate import GenerateConfig, generate_groups

PARTIAL = "Let me think about 2+3"


def thinker(req):
    """Stage 1 runs out of budget without closing the thought; stage 2 answers."""
    b = req.body
    if req.path.endswith("/completions") and "prompt" in b:
        return {"text": "The answer is \\boxed{5}.", "finish_reason": "stop"}
    if b.get("messages", [{}])[-1].get("role") == "assistant":
        return {"text": "The answer is \\boxed{5}.", "finish_reason": "stop"}
    return {"text": PARTIAL, "finish_reason": "length"}


def cfg_for(srv, model: str, **kw) -> GenerateConfig:
    base = {"backend": "openai", "model": model, "base_url": srv.base_url, "n": 1, "max_tokens": 64,
            "stage2_tokens": 16, "two_step": True, "retries": 0, "timeout": 30, "system_prompt": "Think."}
    base.update(kw)
    return GenerateConfig(**base)


@pytest.fixture()
def tokenizer(tiny_model_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(tiny_model_dir)


def test_auto_switches_to_completions_with_the_models_template_and_remembers(tiny_model_dir, tokenizer):
    groups = [{"prompt": f"What is 2+{i}?"} for i in range(4)]
    with LoopbackServer(reply=thinker, reject_fields=VLLM_ONLY_FIELDS) as srv:
        out = generate_groups(groups, cfg_for(srv, str(tiny_model_dir), concurrency=1))
        reqs = srv.generation_requests()
    refused = [r for r in reqs if r.fault == "422"]
    completions = [r for r in reqs if r.path == "/v1/completions"]
    assert len(refused) == 1  # tried once, then remembered for the rest of the run
    assert len(completions) == 4
    for g, req in zip(groups, completions):
        msgs = [{"role": "system", "content": "Think."}, {"role": "user", "content": g["prompt"]}]
        expected = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        assert req.body["prompt"] == expected + PARTIAL + "\n</think>\n\n"
        assert req.body["max_tokens"] == 16
        assert not set(VLLM_ONLY_FIELDS) & set(req.body)
    for g in out:
        (r,) = g["responses"]
        assert not r.get("failed")
        assert r["text"] == PARTIAL + "\n</think>\n\nThe answer is \\boxed{5}."
        assert r["meta"]["two_step_applied"] and r["meta"]["stage2_endpoint"] == "completions"
        assert r["meta"]["stage2_chat_template"].startswith("sha256:")


def test_vllm_like_server_keeps_the_chat_continuation():
    with LoopbackServer(reply=thinker) as srv:
        (g,) = generate_groups([{"prompt": "q"}], cfg_for(srv, "no-tokenizer-needed"))
        reqs = srv.generation_requests()
    assert [r.path for r in reqs] == ["/v1/chat/completions"] * 2
    assert reqs[1].body["continue_final_message"] is True
    assert g["responses"][0]["meta"]["stage2_endpoint"] == "chat"


def test_forced_completions_mode_never_sends_vllm_fields(tiny_model_dir):
    pytest.importorskip("transformers")
    with LoopbackServer(reply=thinker, reject_fields=VLLM_ONLY_FIELDS) as srv:
        (g,) = generate_groups([{"prompt": "q"}], cfg_for(srv, "served-name", tokenizer=str(tiny_model_dir),
                                                          continuation="completions"))
        reqs = srv.generation_requests()
    assert [r.path for r in reqs] == ["/v1/chat/completions", "/v1/completions"]
    assert reqs[1].body["model"] == "served-name" and not g["responses"][0].get("failed")


def test_chat_mode_on_a_refusing_server_fails_with_a_clear_message():
    with LoopbackServer(reply=thinker, reject_fields=VLLM_ONLY_FIELDS) as srv:
        (g,) = generate_groups([{"prompt": "q"}], cfg_for(srv, "m", continuation="chat"))
    r = g["responses"][0]
    assert r["failed"] and "Unexpected fields" in r["meta"]["error"]
    assert "--continuation completions" in r["meta"]["error"]


def test_auto_without_a_tokenizer_says_to_pass_one(tmp_path):
    pytest.importorskip("transformers")
    with LoopbackServer(reply=thinker, reject_fields=VLLM_ONLY_FIELDS) as srv:
        out = generate_groups([{"prompt": "a"}, {"prompt": "b"}],
                              cfg_for(srv, str(tmp_path / "not-a-model")))
        sent = srv.generation_requests()
    for g in out:
        r = g["responses"][0]
        assert r["failed"] and "--tokenizer PATH" in r["meta"]["error"]
    assert not [r for r in sent if r.path == "/v1/completions"]


# -- the real third-party server ---------------------------------------------------------------

def _transformers_cli() -> str | None:
    """The `transformers` command of an environment that has the serving extra, if any."""
    candidates = [os.environ.get("GRADESET_TRANSFORMERS_CLI"), shutil.which("transformers"),
                  str(Path(sys.executable).with_name("transformers"))]
    for exe in candidates:
        if not exe or not os.path.exists(exe):
            continue
        py = Path(exe).with_name("python")
        probe = subprocess.run([str(py), "-c", "import fastapi, uvicorn"], capture_output=True)
        if probe.returncode == 0:
            return exe
    return None


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_healthy(url: str, proc: subprocess.Popen, deadline_s: float = 180.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"transformers serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)  # polling a condition with a deadline, not synchronising on time
    raise AssertionError("transformers serve did not become healthy")


def test_two_step_against_real_transformers_serve(tiny_model_dir, tmp_path):
    exe = _transformers_cli()
    if exe is None:
        pytest.skip("needs 'transformers[serving]' (fastapi, uvicorn) for `transformers serve`; "
                    "or set GRADESET_TRANSFORMERS_CLI")
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([exe, "serve", str(tiny_model_dir), "--host", "127.0.0.1", "--port", str(port),
                                 "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            _run_loop_against(port, tiny_model_dir, tmp_path, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _run_loop_against(port: int, tiny_model_dir, tmp_path, proc) -> None:
    _wait_healthy(f"http://127.0.0.1:{port}/health", proc)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"".join(orjson.dumps({"prompt": f"What is 2+{i}?", "answer": str(2 + i)}) + b"\n"
                             for i in range(3)))
    cmd = [sys.executable, "-m", "gradeset", "generate", str(src), "--out", str(out), "--model",
           str(tiny_model_dir), "--base-url", f"http://127.0.0.1:{port}/v1", "-n", "2", "--max-tokens", "24",
           "--two-step", "--stage2-tokens", "8", "--system-prompt", "Think.", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    groups = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    responses = [x for g in groups for x in g["responses"]]
    assert len(responses) == 6 and not any(x.get("failed") for x in responses)
    forced = [x for x in responses if x["meta"]["two_step_applied"]]
    assert forced  # a random tiny model never closes its thought: stage 2 ran
    assert all(x["meta"]["stage2_endpoint"] == "completions" and "</think>" in x["text"] for x in forced)
    assert all(x["meta"]["usage"]["prompt_tokens"] > 0 for x in responses)
    assert all(g["system_prompt"] == "Think." for g in groups)
    # a wrong model name on the same server: loud, not "exit 0 with N failed"
    bad = [*cmd[:cmd.index("--model") + 1], "/no/such/model", *cmd[cmd.index("--model") + 2:]]
    bad[bad.index(str(out))] = str(tmp_path / "bad.jsonl")
    r = subprocess.run(bad, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "HTTP 400" in r.stderr, r.stderr
