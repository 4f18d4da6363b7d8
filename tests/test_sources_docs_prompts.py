"""Questions from passages and seed 000's best/good/poor versions; malformed replies are rejected."""

from __future__ import annotations

import orjson
import pytest
from sources_fixtures import PARADOX, VALUE, make_docx

from gradeset.cli import main
from gradeset.records import validate_group
from gradeset.sources.docs_prompts import (
    graded_group,
    parse_graded,
    parse_questions,
    question_group,
    questions_for_passages,
)


def _rows(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("reply", [
    '["Explain the paradox of growth in emerging markets", "Why don\'t fast-growing countries pay?"]',
    'Sure!\n```json\n["Explain the paradox of growth in emerging markets", "Why don\'t fast-growing countries pay?"]\n```',
    '{"questions": [{"question": "Explain the paradox of growth in emerging markets"}, '
    '"Why don\'t fast-growing countries pay?"]}',
    "<think>let me think [1]</think>\n1. Explain the paradox of growth in emerging markets\n"
    "2) **Question 2:** \"Why don't fast-growing countries pay?\"\n",
    "- Explain the paradox of growth in emerging markets\n- Why don't fast-growing countries pay?",
])
def test_parse_questions_accepts_json_and_lists(reply):
    qs, reason = parse_questions(reply)
    assert reason is None
    assert qs == ["Explain the paradox of growth in emerging markets", "Why don't fast-growing countries pay?"]


def test_parse_questions_limits_dedups_and_rejects():
    qs, _ = parse_questions('["What is value investing about?", "what is value investing about?", "Hi", '
                            '"Why combine value with momentum?", "Third real question here?"]', k=2)
    assert qs == ["What is value investing about?", "Why combine value with momentum?"]
    for bad in ["", None, "I cannot help with that.", '{"answer": 42}', "[1, 2, 3]"]:
        qs, reason = parse_questions(bad)
        assert qs == [] and reason


def test_parse_graded_versions():
    best = PARADOX
    ok = {"good": "Cheap countries beat fast-growing ones.", "poor": "Buy the fastest growing countries."}
    assert parse_graded(orjson.dumps(ok).decode(), best) == (ok, None)
    assert parse_graded('Here you go:\n```json\n{"GOOD": "Cheap countries beat fast-growing ones.", '
                        '"Poor": "Buy the fastest growing countries."}\n```', best) == (ok, None)
    labeled = "**Good:** Cheap countries beat fast-growing ones.\n\n**Poor:** Buy the fastest growing countries."
    assert parse_graded(labeled, best) == (ok, None)
    assert "no poor" in parse_graded('{"good": "only this"}', best)[1]
    assert "same text" in parse_graded('{"good": "same", "poor": "same"}', best)[1]
    assert "repeats the author" in parse_graded(orjson.dumps({"good": best, "poor": "x"}).decode(), best)[1]
    assert parse_graded("", best) == (None, "empty reply")


def test_groups_carry_passage_as_reference_and_scores():
    passage = {"id": "abc", "file": "lessons.docx", "page": 3, "heading": "Growth", "index": 0, "text": PARADOX}
    g = question_group("Explain the paradox of growth", passage, task="judge")
    assert g["answer"] == g["reference"] == PARADOX and g["source"] == "lessons.docx" and g["task"] == "judge"
    assert g["meta"] == {"file": "lessons.docx", "page": 3, "heading": "Growth", "index": 0, "passage_id": "abc"}
    graded_group(g, {"good": "g", "poor": "p"}, "m")
    assert [(r["text"], r["score"], r["meta"]["version"]) for r in g["responses"]] == [
        (PARADOX, 1.0, "best"), ("g", 0.6, "good"), ("p", 0.2, "poor")]
    assert validate_group(g) == []


def test_questions_for_passages_batches_and_reports_bad_replies():
    passages = [{"text": PARADOX}, {"text": VALUE}, {"text": "third"}]
    replies = iter(['["Explain the paradox of growth?"]', "sorry, no", '["What are the problems with Value?"]'])
    batches = []

    def complete(prompts):
        batches.append(len(prompts))
        assert all("Write 2 question(s)" in p for p in prompts)
        return [next(replies) for _ in prompts]

    out = list(questions_for_passages(passages, complete, k=2, batch_size=2))
    assert batches == [2, 1]
    assert [(p["text"][:5], qs, reason is None) for p, qs, reason, _ in out] == [
        (PARADOX[:5], ["Explain the paradox of growth?"], True), (VALUE[:5], [], False),
        ("third", ["What are the problems with Value?"], True)]


def test_prompts_from_docs_cli_with_graded_versions(tmp_path, capsys, monkeypatch):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    make_docx(tmp_path / "lessons.docx")
    passages = tmp_path / "passages.jsonl"
    assert main(["extract", str(tmp_path / "lessons.docx"), "--out", str(passages)]) == 0
    with open(passages, "ab") as fh:  # a row without text is rejected with its line number
        fh.write(b'{"file": "x", "text": ""}\n')

    def reply(req):
        text = req.prompt_text
        if "Write 2 question(s)" in text:
            if "Russia" in text:
                return "I would rather not."  # malformed: no questions
            return '```json\n["Explain the paradox of growth in emerging markets", "Where do you make money?"]\n```'
        if "Where do you make money?" in text:
            return "GOOD answer: cheap places."  # malformed: no poor version
        return '{"good": "Cheap markets beat fast growers.", "poor": "Buy the fastest growing countries."}'

    out = tmp_path / "groups.jsonl"
    with LoopbackServer(reply=reply) as srv:
        code = main(["prompts-from-docs", str(passages), "--out", str(out), "--backend", "openai", "--model", "m",
                     "--base-url", srv.base_url, "-k", "2", "--graded-versions"])
    assert code == 0
    err = capsys.readouterr().err
    rows = _rows(out)
    assert [r["prompt"] for r in rows] == ["Explain the paradox of growth in emerging markets"]
    g = rows[0]
    assert g["reference"] == PARADOX and g["meta"]["heading"] == "Growth" and g["source"].endswith("lessons.docx")
    assert [(r["score"], r["meta"]["version"]) for r in g["responses"]] == [(1.0, "best"), (0.6, "good"),
                                                                            (0.2, "poor")]
    assert g["responses"][0]["text"] == PARADOX and g["responses"][2]["text"] == "Buy the fastest growing countries."
    rejects = _rows(tmp_path / "groups.jsonl.rejects.jsonl")
    assert len(rejects) == 3, rejects
    assert any("no questions found" in r["reason"] and r["raw"] == "I would rather not." for r in rejects)
    assert any("no poor version" in r["reason"] for r in rejects)
    assert any(r["line"] == 3 and "missing or empty passage text" in r["reason"] for r in rejects)
    assert "read 3 passages = 1 used + 1 unusable model replies + 1 bad rows; 2 questions, 1 rejected" in err


def test_prompts_from_docs_cli_without_versions_and_all_bad(tmp_path, capsys, monkeypatch):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    passages = tmp_path / "p.jsonl"
    passages.write_bytes(orjson.dumps({"file": "a.md", "text": PARADOX, "heading": "G"}) + b"\n")
    out = tmp_path / "g.jsonl"
    with LoopbackServer(reply="1. Why invest in cheap markets?\n2. What is the paradox of growth?") as srv:
        assert main(["prompts-from-docs", str(passages), "--out", str(out), "--backend", "openai", "--model", "m",
                     "--base-url", srv.base_url]) == 0
        port = srv.port
    rows = _rows(out)
    assert [r["prompt"] for r in rows] == ["Why invest in cheap markets?", "What is the paradox of growth?"]
    assert all(r["responses"] == [] and r["answer"] == PARADOX for r in rows)
    # a re-run resumes from the request cache beside OUT: no new requests, same output
    with LoopbackServer(reply="1. A different question?", port=port) as srv:  # same URL: same cache keys
        assert main(["prompts-from-docs", str(passages), "--out", str(out), "--backend", "openai", "--model", "m",
                     "--base-url", srv.base_url]) == 0
        assert srv.generation_requests() == []
    assert [r["prompt"] for r in _rows(out)] == ["Why invest in cheap markets?", "What is the paradox of growth?"]
    with LoopbackServer(reply="no idea") as srv:
        assert main(["prompts-from-docs", str(passages), "--out", str(out), "--backend", "openai", "--model", "m",
                     "--base-url", srv.base_url, "--no-cache"]) == 2
    assert "no passage gave a usable reply" in capsys.readouterr().err


def test_prompts_from_docs_failed_request_is_a_rejected_passage(tmp_path, capsys, monkeypatch):
    from loopback_server import Fault, LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    passages = tmp_path / "p.jsonl"
    passages.write_bytes(orjson.dumps({"file": "a.md", "text": PARADOX}) + b"\n"
                         + orjson.dumps({"file": "a.md", "text": VALUE}) + b"\n")
    out = tmp_path / "g.jsonl"
    fault = Fault("500", times=1, match=lambda req: "value traps" in req.prompt_text)
    with LoopbackServer(reply='["What is the question here?"]', faults=[fault]) as srv:
        assert main(["prompts-from-docs", str(passages), "--out", str(out), "--backend", "openai", "--model", "m",
                     "--base-url", srv.base_url, "--retries", "0", "--no-cache"]) == 0
    assert [r["answer"] for r in _rows(out)] == [PARADOX]
    rej = _rows(tmp_path / "g.jsonl.rejects.jsonl")
    assert rej[0]["line"] == 2 and "questions: request failed: " in rej[0]["reason"], rej


def test_augment_graded_versions_for_sft_examples(tmp_path, capsys, monkeypatch):
    """Seed 000's option 2: its 17 SFT examples (messages) get good/poor versions beside the author's."""
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    src = tmp_path / "writing.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in [
        {"prompt": "What are the main problems with value investing?", "reference": VALUE, "responses": []},
        {"prompt": [{"role": "system", "content": "You are Arjun."},
                    {"role": "user", "content": "Explain the paradox of growth"}],
         "responses": [{"text": PARADOX, "score": None}]},
        {"prompt": "No answer here", "responses": []},
    ]))

    def reply(req):
        if "paradox" in req.prompt_text.lower():
            return '{"good": "Cheap markets beat fast growers.", "poor": "Buy growth."}'
        return "not json at all"

    out = tmp_path / "graded.jsonl"
    with LoopbackServer(reply=reply) as srv:
        assert main(["augment", "graded-versions", str(src), "--out", str(out), "--backend", "openai",
                     "--model", "m", "--base-url", srv.base_url, "--layout", "group"]) == 0
    rows = _rows(out)
    assert len(rows) == 1 and rows[0]["prompt"][1]["content"] == "Explain the paradox of growth"
    assert [(r["text"], r["score"]) for r in rows[0]["responses"]] == [
        (PARADOX, 1.0), ("Cheap markets beat fast growers.", 0.6), ("Buy growth.", 0.2)]
    reasons = [r["reason"] for r in _rows(tmp_path / "graded.jsonl.rejects.jsonl")]
    assert len(reasons) == 2 and any("no author's answer" in r for r in reasons)
    assert any("no good and no poor version" in r for r in reasons)


def test_prompts_from_docs_drops_questions_repeated_across_passages(tmp_path, capsys, monkeypatch):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    passages = tmp_path / "p.jsonl"
    passages.write_bytes(orjson.dumps({"text": PARADOX}) + b"\n" + orjson.dumps({"text": VALUE}) + b"\n")
    out = tmp_path / "g.jsonl"
    with LoopbackServer(reply='["Why are cheap markets better?", "What is the key lesson here?"]') as srv:
        assert main(["prompts-from-docs", str(passages), "--out", str(out), "--backend", "openai", "--model", "m",
                     "--base-url", srv.base_url, "-k", "2"]) == 0
    assert [r["answer"] for r in _rows(out)] == [PARADOX, PARADOX]
    assert "2 questions (+2 repeated from an earlier passage, left out)" in capsys.readouterr().err
