"""``gradeset serve`` end to end: a real server process on 127.0.0.1, real HTTP clients."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import pytest
from serve_process import ServeProcess

DATA = Path(__file__).parent / "data" / "serve"
HOSTILE_POWER = r"The answer is \boxed{9^{9^{9^{9}}}}"  # refused quickly by the exact path's bounds now
HOSTILE_BRACES = "\\boxed{" + "{" * 10000 + "1" + "}" * 10000 + "}"
# what still computes forever: the test plugin (tests/data/serve/hang_plugin.py) on a HANG completion
HANG = "python:hang_plugin:grade"
HOSTILE = r"HANG: the answer is \boxed{1}"
PLUGIN_ENV = {"PYTHONPATH": str(Path(__file__).parent / "data" / "serve")}
CHATML = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def server():
    with ServeProcess("--task", "math", "--task", "gsm8k", "--task", HANG, "--workers", "2", "--timeout", "5",
                      "--max-request-bytes", "200000", env=PLUGIN_ENV) as srv:
        yield srv


def openrlhf_post(url: str, queries: list[str], prompts: list[str], labels: list, **extra) -> dict:
    """What OpenRLHF's remote_rm_fn / request_api_wrapper sends and reads: ``requests.post(json=...)``
    (the same JSON body and header through urllib where requests is not installed)."""
    payload = {"query": queries, "prompts": prompts, "labels": labels, **extra}
    try:
        import requests
    except ImportError:
        import urllib.request

        req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=180) as resp:
            return json.loads(resp.read())
    response = requests.post(url=url, json=payload, headers={"Content-Type": "application/json"}, timeout=180)
    response.raise_for_status()
    return response.json()


def test_openrlhf_remote_reward_end_to_end(server):
    questions = ["What is 2+3?", "Format: \\boxed{9}. What is 4+5?", "What is 10-4?", "What is 7*6?"]
    answers = ["I think \\boxed{5}", "I am not sure.", "It is \\boxed{7}", "Answer: \\boxed{42}<|im_end|>"]
    prompts = [CHATML.format(q=q) for q in questions]
    queries = [p + a for p, a in zip(prompts, answers, strict=True)]
    out = openrlhf_post(f"{server.url}/get_reward", queries, prompts, ["5", "9", "6", 42])
    # the second response has no answer; its prompt shows \boxed{9}: graded only if the prefix was not removed
    assert out["rewards"] == [1.0, 0.0, 0.0, 1.0]
    assert out["scores"] == out["rewards"]
    assert out["extra_logs"]["correct"] == [1.0, 0.0, 0.0, 1.0]
    assert out["extra_logs"]["parsed"] == [1.0, 0.0, 1.0, 1.0]
    assert all(len(v) == 4 for v in out["extra_logs"].values())
    # newer OpenRLHF first tries the same payload plus per-sample "metas"; it must be accepted as is
    out = openrlhf_post(f"{server.url}/get_reward", queries, prompts, ["5", "9", "6", 42],
                        metas=[{"i": i} for i in range(4)])
    assert out["rewards"] == [1.0, 0.0, 0.0, 1.0]


def test_openrlhf_query_without_its_prompt_is_graded_whole_and_counted(server):
    before = server.health()["unmatched_prompts"]
    out = openrlhf_post(f"{server.url}/get_reward", ["<s> so the answer is \\boxed{12}"], ["a prompt not in the query"],
                        ["12"])
    assert out["rewards"] == [1.0]
    assert server.health()["unmatched_prompts"] == before + 1
    # a special token in front of the prompt still finds it
    out = openrlhf_post(f"{server.url}/get_reward", ["<s>Q: \\boxed{3}? A: none"], ["Q: \\boxed{3}? A:"], ["3"])
    assert out["rewards"] == [0.0]


def test_batch_endpoint_picks_among_started_verifiers(server):
    status, out = server.post("/v1/grade", {"items": [
        {"completion": "so \\boxed{1/2}", "gold": "0.5"},
        {"completion": "so \\boxed{3}", "gold": "4", "task": "math"},
        {"completion": "She pays 18 dollars.\n#### 18", "gold": "18", "task": "gsm8k"},
        {"completion": "nothing here", "gold": "18", "task": "gsm8k"},
    ]})
    assert status == 200
    v = out["verdicts"]
    assert [x["correct"] for x in v] == [True, False, True, False]
    assert [x["score"] for x in v] == [1.0, 0.0, 1.0, 0.0]
    assert v[2]["parsed"] == "18" and v[3]["parsed"] is None
    status, out = server.post("/v1/grade", [{"completion": "\\boxed{2}", "gold": 2}])  # a bare list works too
    assert status == 200 and out["verdicts"][0]["correct"] is True


@pytest.mark.parametrize("payload, fragment", [
    ({"prompts": ["p"]}, "missing field 'query'"),
    ({"query": "p \\boxed{1}"}, "expected a list of strings"),
    ({"query": ["p", 3]}, "'query'[1]: expected a string"),
    ({"query": ["p"], "labels": 5}, "'labels': expected a list"),
    ({"query": ["p", "q"], "labels": ["1"]}, "has 1 values for 2 queries"),
    ({"query": ["p"], "labels": [True]}, "'labels'[0]"),
    ([1, 2], "expected a JSON object"),
])
def test_openrlhf_wrong_types_are_400(server, payload, fragment):
    status, out = server.post("/get_reward", payload)
    assert status == 400
    assert fragment in out["error"]


@pytest.mark.parametrize("payload, fragment", [
    ({"items": [{"completion": 5, "gold": "5"}]}, "items[0].completion"),
    ({"items": "x"}, "expected a list"),
    ({"wrong": []}, "expected a JSON list of items"),
    ([{"completion": "\\boxed{1}", "gold": "1", "task": ["math"]}], "items[0].task"),
    ([{"completion": "\\boxed{1}", "gold": "1", "task": "mcq"}], "this server grades only"),
])
def test_batch_wrong_types_are_400(server, payload, fragment):
    status, out = server.post("/v1/grade", payload)
    assert status == 400
    assert fragment in out["error"]


def test_malformed_deep_and_oversized_bodies(server):
    for body in (b"{not json", b"", b"\xff\xfe{}", b"null"):
        status, out = server.post("/v1/grade", data=body)
        assert status == 400, body
        assert out["error"]
    status, out = server.post("/get_reward", data=b"[" * 100001 + b"]" * 100001)
    assert status == 413 and "over the limit" in out["error"]  # 200 kB > --max-request-bytes: refused unread
    status, out = server.post("/get_reward", data=b"[" * 50000 + b"]" * 50000)
    assert status == 400 and "nested too deeply" in out["error"]
    big = {"query": ["x" * 250000], "prompts": [""], "labels": ["1"]}
    status, out = server.post("/get_reward", big)
    assert status == 413
    # raw socket: a huge declared length is refused before the body is sent
    host, port = server.url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")
    status, out = server.post("/nope", {})
    assert status == 404
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"NOT-HTTP\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400")
    # still serving, and it counted the client errors
    assert openrlhf_post(f"{server.url}/get_reward", ["q \\boxed{4}"], ["q"], ["4"])["rewards"] == [1.0]
    assert server.health()["client_errors"] >= 5


def test_a_request_cannot_import_code(tmp_path):
    canary = tmp_path / "imported.txt"
    env = {"GRADESET_IMPORT_CANARY": str(canary), "PYTHONPATH": str(DATA)}
    with ServeProcess("--task", "math", "--workers", "1", env=env) as srv:
        for task in ("python:import_canary:grade", "import_canary:grade", "os:system"):
            status, out = srv.post("/v1/grade", [{"completion": "\\boxed{1}", "gold": "1", "task": task}])
            assert status == 400 and "this server grades only math" in out["error"]
        status, out = srv.post("/get_reward", {"query": ["\\boxed{1}"], "labels": ["1"],
                                               "task": "python:import_canary:grade"})
        assert status == 200 and out["rewards"] == [1.0]  # unknown fields are ignored, not obeyed
    assert not canary.exists()
    # the canary works: the same module named at start-up (by the user) is imported
    with ServeProcess("--task", "python:import_canary:grade", "--workers", "1", env=env) as srv:
        status, out = srv.post("/v1/grade", [{"completion": "anything", "gold": "1"}])
        assert status == 200 and out["verdicts"][0]["correct"] is True
    assert canary.read_text() == "imported"


@pytest.fixture(scope="module")
def hang_server():
    """Its default verifier (what /get_reward uses) hangs on HANG and grades the rest as math."""
    with ServeProcess("--task", HANG, "--workers", "2", "--timeout", "5", env=PLUGIN_ENV) as srv:
        yield srv


def test_hostile_completion_times_out_while_others_are_answered(hang_server, server):
    """A completion that would compute forever holds one worker until it is killed; other
    requests go to the other worker meanwhile, and the hostile one scores 0 as a timeout."""
    server_math = server
    server = hang_server
    timeouts_before = server.health()["timeouts"]
    results: dict[str, dict] = {}
    done = threading.Event()

    def hostile():
        results["hostile"] = openrlhf_post(f"{server.url}/get_reward", ["Q: big?\nA: " + HOSTILE],
                                           ["Q: big?\nA: "], ["1"])
        done.set()

    t = threading.Thread(target=hostile)
    t.start()
    try:
        import time

        deadline = time.monotonic() + 60
        while server.health()["busy_workers"] < 1 and not done.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)  # wait (polling, with a deadline) until a worker holds the hostile completion
        answered_while_pending = 0
        for i in range(6):
            out = openrlhf_post(f"{server.url}/get_reward", [f"Q{i}: \\boxed{{{i}}}", f"Q{i}: \\boxed{{{i + 1}}}"],
                                [f"Q{i}:", f"Q{i}:"], [str(i), str(i)])
            assert out["rewards"] == [1.0, 0.0]
            answered_while_pending += not done.is_set()
        assert answered_while_pending >= 1
    finally:
        t.join(timeout=120)
    hostile_out = results["hostile"]
    assert hostile_out["rewards"] == [0.0]
    assert hostile_out["extra_logs"]["grader_timeout"] == [1.0]
    h = server.health()
    assert h["timeouts"] >= timeouts_before + 1
    assert h["status"] == "ok" and h["busy_workers"] == 0
    status, out = server_math.post("/v1/grade", [{"completion": HOSTILE, "gold": "1", "task": HANG},
                                                 {"completion": HOSTILE_BRACES, "gold": "1"},
                                                 {"completion": "\\boxed{3}", "gold": "3"}])
    assert status == 200
    assert out["verdicts"][0]["detail"] == "timeout" and out["verdicts"][0]["score"] == 0.0
    assert out["verdicts"][1]["score"] == 0.0
    assert out["verdicts"][2]["correct"] is True


def test_request_time_limit_answers_in_time():
    """Per-request limit: what is not graded by then scores 0 with a request-timeout detail."""
    with ServeProcess("--task", HANG, "--workers", "1", "--timeout", "600", "--request-timeout", "2",
                      env=PLUGIN_ENV) as srv:
        status, out = srv.post("/v1/grade", [{"completion": HOSTILE, "gold": "1"},
                                             {"completion": "\\boxed{1}", "gold": "1"}])
        assert status == 200
        assert [v["detail"] for v in out["verdicts"]][0] == "timeout (request time limit)"
        assert all(v["score"] == 0.0 for v in out["verdicts"][:1])
        assert srv.health()["request_timeouts"] == 1


def test_health_reports_config(server):
    h = server.health()
    assert h["status"] == "ok"
    assert h["tasks"] == ["math", "gsm8k", HANG] and h["default_task"] == "math"
    assert h["workers"] == 2 and h["max_request_bytes"] == 200000


def test_bad_start_options_exit_2(capsys):
    from gradeset.cli import main

    assert main(["serve", "--task", "nosuch", "--port", "0"]) == 2
    assert "unknown verifier 'nosuch'" in capsys.readouterr().err
    assert main(["serve", "--workers", "0"]) == 2


# ---- verl -----------------------------------------------------------------------------------------


def test_verl_compute_score_local(monkeypatch):
    from gradeset.serve import verl_reward

    monkeypatch.delenv("GRADESET_REWARD_URL", raising=False)
    cs = verl_reward.compute_score
    assert cs("lighteval/MATH", "so \\boxed{\\frac{1}{2}}", "0.5") == 1.0
    assert cs("lighteval/MATH", "so \\boxed{3}", "0.5") == 0.0
    # gsm8k routing by data_source: the "####" answer is read, a bare trailing number is not boxed math
    assert cs("openai/gsm8k", "work...\n#### 18", "18") == 1.0
    # gradeset's own verl export: the verifier written into extra_info wins over an unknown data_source
    assert cs("synth:arithmetic", "#### 7", "7", {"verifier": "gsm8k"}) == 1.0
    assert cs("synth:arithmetic", "\\boxed{7}", "7", {"index": 3}) == 1.0  # unknown source: math
    # a row naming code to import is not obeyed
    assert verl_reward.choose_task("gsm8k", {"verifier": "python:os:system", "task": "os:system"}) == "gsm8k"
    assert verl_reward.choose_task("x", None, task="gsm8k") == "gsm8k"  # the user's reward_kwargs win
    batch = verl_reward.compute_score_batch(["openai/gsm8k", "lighteval/MATH"], ["#### 2", "\\boxed{5}"], ["2", "6"],
                                            [None, None])
    assert batch == [1.0, 0.0]


def test_verl_compute_score_local_hostile_is_zero(monkeypatch):
    from gradeset.serve import verl_reward

    monkeypatch.delenv("GRADESET_REWARD_URL", raising=False)
    assert verl_reward.compute_score("lighteval/MATH", HOSTILE_POWER, "1", timeout=2) == 0.0
    assert verl_reward.compute_score("lighteval/MATH", "\\boxed{1}", "1", timeout=2) == 1.0


def test_verl_compute_score_through_server(server, monkeypatch):
    from gradeset.serve import verl_reward

    monkeypatch.setenv("GRADESET_REWARD_URL", server.url)
    graded = server.health()["graded"]
    assert verl_reward.compute_score("openai/gsm8k", "#### 18", "18", {"split": "train"}) == 1.0
    assert verl_reward.compute_score("lighteval/MATH", "\\boxed{2}", "3") == 0.0
    assert server.health()["graded"] == graded + 2  # graded by the server, not here


def test_verl_falls_back_when_server_is_down(monkeypatch):
    from gradeset.serve import verl_reward

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    monkeypatch.setenv("GRADESET_REWARD_URL", f"http://127.0.0.1:{port}")
    assert verl_reward.compute_score("lighteval/MATH", "\\boxed{4}", "4") == 1.0


# ---- TRL ------------------------------------------------------------------------------------------


def test_trl_async_reward_through_server(server):
    from gradeset.serve.trl_reward import ServerReward

    reward = ServerReward(server.url, task="auto")
    graded = server.health()["graded"]
    scores = asyncio.run(reward(prompts=["a", "b", "c", "d"],
                                completions=["\\boxed{2}", [{"role": "assistant", "content": "#### 5"}], "\\boxed{1}",
                                             "\\boxed{9}"],
                                answer=["2", "5", "2", None], task=["math", "gsm8k", None, "math"]))
    assert scores == [1.0, 1.0, 0.0, None]  # no gold: ungradable, not wrong
    assert server.health()["graded"] == graded + 3
    assert reward.fallbacks == 0
    assert reward.sync()(prompts=["a"], completions=["\\boxed{7}"], answer=["7"]) == [1.0]
    timed_out = asyncio.run(ServerReward(server.url, task=HANG)(completions=[HOSTILE], answer=["1"]))
    assert timed_out == [None]  # a grader timeout stays out of the group baseline


def test_trl_reward_is_async_for_trl_and_refuses_unknown_task(server):
    from gradeset.errors import GradesetError
    from gradeset.serve.trl_reward import ServerReward

    trl_utils = pytest.importorskip("trl.trainer.utils")
    reward = ServerReward(server.url, task="math")
    assert trl_utils.is_async_callable(reward)
    assert trl_utils.get_callable_name(reward) == "math_correctness"
    with pytest.raises(GradesetError, match="this server grades only"):
        asyncio.run(ServerReward(server.url, task="trivia")(completions=["x"], answer=["y"]))


def test_trl_reward_falls_back_to_local_grading():
    from gradeset.serve.trl_reward import ServerReward

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reward = ServerReward(f"http://127.0.0.1:{port}", task="math")
    try:
        assert asyncio.run(reward(completions=["\\boxed{3}", "\\boxed{4}"], answer=["3", "3"])) == [1.0, 0.0]
        assert reward.fallbacks == 1
    finally:
        reward.close()
    strict = ServerReward(f"http://127.0.0.1:{port}", task="math", fallback=False)
    from gradeset.errors import GradesetError

    with pytest.raises(GradesetError, match="unreachable"):
        asyncio.run(strict(completions=["\\boxed{3}"], answer=["3"]))


def test_openrlhf_payload_is_plain_json():
    from gradeset.serve.protocol import Item, openrlhf_items, strip_prompt

    assert strip_prompt("PQ answer", "PQ ") == ("answer", True)
    assert strip_prompt("<bos>PQ answer", "PQ ") == ("answer", True)
    assert strip_prompt("something else", "PQ") == ("something else", False)
    items, unmatched = openrlhf_items(json.loads('{"query": ["P1 r1", "zz"], "prompts": ["P1 ", "P2"],'
                                                 ' "labels": ["1", null]}'), "math")
    assert items == [Item("math", "r1", "1"), Item("math", "zz", None)] and unmatched == 1


def test_concurrency_bound_makes_requests_wait_their_turn():
    """With --max-concurrency 1 a second request waits (counted in /health) while the first is graded."""
    import time

    with ServeProcess("--task", HANG, "--workers", "2", "--timeout", "3", "--max-concurrency", "1",
                      env=PLUGIN_ENV) as srv:
        out: dict[str, tuple] = {}
        first = threading.Thread(target=lambda: out.setdefault("first", srv.post(
            "/v1/grade", [{"completion": HOSTILE, "gold": "1"}])))
        first.start()
        deadline = time.monotonic() + 60
        while srv.health()["in_flight"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # polling a condition under a deadline
        second = threading.Thread(target=lambda: out.setdefault("second", srv.post(
            "/v1/grade", [{"completion": "\\boxed{1}", "gold": "1"}])))
        second.start()
        seen_waiting = False
        while not seen_waiting and "second" not in out and time.monotonic() < deadline:
            h = srv.health()
            seen_waiting = h["waiting"] == 1 and h["in_flight"] == 1
            time.sleep(0.02)
        first.join(120)
        second.join(120)
        assert seen_waiting, "the second request was graded alongside the first"
        assert out["first"][1]["verdicts"][0]["detail"] == "timeout"
        assert out["second"][1]["verdicts"][0]["correct"] is True
