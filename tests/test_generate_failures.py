"""A run that failed says so: exit codes, the server's message, nothing lost (issue 16 item 1)."""

from __future__ import annotations

import socket

import orjson
import pytest
from loopback_server import Fault, LoopbackServer

from gradeset.cli import main
from gradeset.errors import GradesetError
from gradeset.generate import GenerateConfig, Stats, generate_groups
from gradeset.generate.outcome import (
    GenerationFailed,
    NothingGenerated,
    check_credentials,
    error_digest,
    failure_verdict,
)
from gradeset.generate.step import GenerateStep


def write_prompts(path, k: int) -> None:
    path.write_bytes(b"".join(orjson.dumps({"prompt": f"question {i}", "answer": str(i)}) + b"\n"
                              for i in range(k)))


def gen(src, out, srv_url: str, *extra: str) -> list[str]:
    return ["generate", str(src), "--out", str(out), "--model", "loop", "--base-url", srv_url,
            "-q", *extra]


def read(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_every_request_failing_exits_2_with_the_servers_message_and_resumes(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(src, 3)
    with LoopbackServer(reply="ok", faults=[Fault("400", times=3)]) as srv:
        code = main(gen(src, out, srv.base_url, "-n", "4"))
        err = capsys.readouterr().err
        assert code == 2
        assert "every request failed" in err and "12× HTTP 400: injected 400" in err
        assert "Traceback" not in err
        # nothing lost: OUT holds every group with its failed samples, the cache remembers them
        assert [len(g["responses"]) for g in read(out)] == [4, 4, 4]
        assert all(r["failed"] for g in read(out) for r in g["responses"])
        sent = len(srv.generation_requests())
        # the fault is used up: the same command now retries exactly the failed samples and succeeds
        assert main(gen(src, out, srv.base_url, "-n", "4")) == 0
        assert len(srv.generation_requests()) - sent == 3
    assert [r["text"] for g in read(out) for r in g["responses"]] == ["ok"] * 12


def test_more_than_max_failed_share_exits_1_and_names_the_error(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(src, 10)
    bad = Fault("500", times=10_000, match=lambda r: r.prompt_text in ("question 1", "question 2"))
    with LoopbackServer(reply="ok", faults=[bad]) as srv:
        code = main(gen(src, out, srv.base_url, "-n", "1", "--retries", "0"))
        err = capsys.readouterr().err
        assert code == 1
        assert "2 of 10 samples failed (20% > --max-failed 0.1)" in err and "2× HTTP 500: injected 500" in err
        assert len(read(out)) == 10
        # a looser threshold accepts the same outcome
        out2 = tmp_path / "out2.jsonl"
        assert main(gen(src, out2, srv.base_url, "-n", "1", "--retries", "0", "--max-failed", "0.3")) == 0


def test_failures_within_max_failed_exit_0(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(src, 20)
    bad = Fault("500", times=10_000, match=lambda r: r.prompt_text == "question 7")
    with LoopbackServer(reply="ok", faults=[bad]) as srv:
        assert main(gen(src, out, srv.base_url, "-n", "1", "--retries", "0")) == 0
    assert "1 samples failed" in capsys.readouterr().err


def test_no_base_url_and_no_key_is_refused_before_any_request(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(src, 2)
    code = main(["generate", str(src), "--out", str(out), "--model", "m", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "no --base-url given and OPENAI_API_KEY is not set" in err
    assert not out.exists() and not (tmp_path / "out.jsonl.gencache.jsonl").exists()
    # a named key variable that is empty is the same mistake
    code = main(["generate", str(src), "--out", str(out), "--model", "m", "--api-key-env", "MY_KEY", "-q"])
    assert code == 2 and "MY_KEY is not set" in capsys.readouterr().err


def test_credentials_rule():
    hosted = GenerateConfig(model="m")
    with pytest.raises(GradesetError, match="OPENAI_API_KEY"):
        check_credentials(hosted, {})
    check_credentials(hosted, {"OPENAI_API_KEY": "sk-x"})
    check_credentials(GenerateConfig(model="m", base_url="http://127.0.0.1:8000/v1"), {})  # local server, no key
    with pytest.raises(GradesetError, match="ANTHROPIC_API_KEY"):
        check_credentials(GenerateConfig(model="m", backend="anthropic"), {})
    check_credentials(GenerateConfig(model="m", backend="anthropic", base_url="http://127.0.0.1:9"), {})


def test_unreachable_server_stops_early_without_retrying(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(src, 40)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    code = main(gen(src, out, url, "-n", "1", "--concurrency", "2", "--retries", "6"))
    err = capsys.readouterr().err
    assert code == 2 and "cannot be reached" in err and "cannot connect to 127.0.0.1" in err
    assert "Traceback" not in err
    stats = Stats()
    cfg = GenerateConfig(model="m", base_url=url, n=1, concurrency=2, retries=6, backoff_base=0.01)
    with pytest.raises(GradesetError, match="cannot be reached"):
        generate_groups([{"prompt": f"q{i}"} for i in range(40)], cfg, stats=stats)
    assert stats.retries == 0  # a server that never answered is not retried for minutes
    assert stats.failed < 40  # stopped early instead of one failure per prompt


def test_a_wrong_model_name_stops_after_a_few_identical_refusals(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(src, 100)

    def reply(req):  # like vLLM / transformers serve for an unknown model: one 400 message for all
        raise AssertionError("must not be answered")

    with LoopbackServer(reply=reply, faults=[Fault("400", times=10_000)]) as srv:
        code = main(gen(src, out, srv.base_url, "-n", "1", "--concurrency", "2"))
        sent = len(srv.generation_requests())
    err = capsys.readouterr().err
    assert code == 2 and "every request is refused (HTTP 400: injected 400)" in err
    assert sent < 20


def test_differing_400s_are_per_prompt_and_do_not_stop_the_run(tmp_path, capsys):
    """A 400 whose message differs per prompt (context too long) is that prompt's problem."""
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(src, 12)
    # distinct messages, as a real server's "this prompt has N tokens" would be
    faults = [Fault("400", times=1, match=lambda r, i=i: r.prompt_text == f"question {i}",
                    message=f"prompt {i} has {9000 + i} tokens, more than 8192") for i in range(12)]
    with LoopbackServer(reply="ok", faults=faults) as srv:
        code = main(gen(src, out, srv.base_url, "-n", "1", "--concurrency", "1", "--retries", "0"))
        sent = len(srv.generation_requests())
    assert sent == 12  # every prompt was tried: no early stop
    assert code == 2  # ...and the run then says that every request failed
    assert "every request failed" in capsys.readouterr().err


def test_pipeline_step_raises_on_failed_batch():
    with LoopbackServer(reply="ok", faults=[Fault("500", times=10_000)]) as srv:
        step = GenerateStep(backend="openai", model="loop", base_url=srv.base_url, n=2, retries=0)
        with pytest.raises(NothingGenerated, match="every request failed: 4× HTTP 500"):
            step([{"prompt": "a"}, {"prompt": "b"}])
    half = Fault("500", times=10_000, match=lambda r: r.prompt_text == "b")
    with LoopbackServer(reply="ok", faults=[half]) as srv:
        step = GenerateStep(backend="openai", model="loop", base_url=srv.base_url, n=1, retries=0)
        with pytest.raises(GenerationFailed, match="1 of 2 samples failed") as info:
            step([{"prompt": "a"}, {"prompt": "b"}])
        assert info.value.exit_code == 1
        ok = GenerateStep(backend="openai", model="loop", base_url=srv.base_url, n=1, retries=0, max_failed=0.5)
        assert len(ok([{"prompt": "a"}, {"prompt": "b"}])) == 2


def test_pipeline_step_refuses_missing_credentials(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(GradesetError, match="no --base-url"):
        GenerateStep(backend="openai", model="m")


def test_verdict_and_digest():
    assert failure_verdict(10, 0, 0.1, {}) is None
    assert failure_verdict(9, 1, 0.1, {"e": 1}) is None
    v = failure_verdict(8, 2, 0.1, {"HTTP 500: x": 2})
    assert isinstance(v, GenerationFailed) and v.exit_code == 1
    v = failure_verdict(0, 3, 1.0, {"a": 2, "b": 1})
    assert isinstance(v, NothingGenerated) and v.exit_code == 2
    assert error_digest({"a": 1, "b": 5, "c": 2, "d": 2}, limit=2) == "5× b; 2× c; and 2 other message(s)"


def _pipeline(tmp_path, step: dict) -> str:
    import yaml

    src = tmp_path / "prompts.jsonl"
    write_prompts(src, 4)
    p = tmp_path / "pipe.yaml"
    p.write_text(yaml.safe_dump({"source": {"path": "prompts.jsonl"}, "steps": [{"generate": step}],
                                 "outputs": {"groups": "out/groups"}}))
    return str(p)


def test_pipeline_with_failing_generate_stops_loudly(tmp_path, capsys):
    with LoopbackServer(reply="ok", faults=[Fault("400", times=10_000, message="model 'nope' not found")]) as srv:
        pipe = _pipeline(tmp_path, {"backend": "openai", "model": "nope", "base_url": srv.base_url, "n": 2,
                                    "retries": 0})
        code = main(["run", pipe])
    err = capsys.readouterr().err
    assert code != 0 and "every request failed" in err and "model 'nope' not found" in err
    assert "Traceback" not in err


def test_pipeline_check_only_refuses_missing_credentials(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    pipe = _pipeline(tmp_path, {"backend": "openai", "model": "m", "n": 2})
    assert main(["run", pipe, "--check-only"]) == 2
    assert "no --base-url given and OPENAI_API_KEY is not set" in capsys.readouterr().err
