"""The group record: ids, validation messages, derived views."""

from __future__ import annotations

import pytest

from gradeset.records import (
    bucket,
    ensure_id,
    group_id,
    new_group,
    new_response,
    pass_rate,
    prompt_text,
    response_text,
    validate_group,
)


def test_group_id_is_content_hash_not_row_number():
    a = group_id("Solve for x: 2x + 5 = 15", "5", "gsm8k")
    assert a == group_id("Solve for x: 2x + 5 = 15", "5", "gsm8k")
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != group_id("Solve for x: 2x + 5 = 15", "6", "gsm8k")
    assert a != group_id("Solve for x: 2x + 5 = 15", "5", "math")
    assert a != group_id("Solve for x: 2x + 5 = 16", "5", "gsm8k")


def test_answer_hashes_as_text_so_csv_and_json_agree():
    assert group_id("q", 42) == group_id("q", "42")


def test_chat_prompt_ids_depend_on_messages():
    m1 = [{"role": "user", "content": "hi"}]
    m2 = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert group_id(m1) != group_id(m2)


def test_ensure_id_keeps_existing_id():
    g = {"id": "custom", "prompt": "p"}
    assert ensure_id(g)["id"] == "custom"
    g2 = ensure_id({"prompt": "p", "answer": "1"})
    assert g2["id"] == group_id("p", "1")


def test_new_group_and_response_defaults():
    g = new_group("p", answer="3", task="math")
    assert g["responses"] == [] and g["task"] == "math" and g["id"] == group_id("p", "3")
    r = new_response("text", meta={"sample_index": 0})
    assert r["score"] is None and r["correct"] is None and r["parsed"] is None
    assert r["meta"] == {"sample_index": 0}


@pytest.mark.parametrize(
    "record, message",
    [
        ("not a dict", "record: expected a JSON object"),
        ({}, "prompt: missing"),
        ({"prompt": 3}, "prompt: expected a string or a list of messages, got int"),
        ({"prompt": [{"role": "wizard", "content": "x"}]}, "prompt[0].role: expected one of"),
        ({"prompt": [{"role": "user"}]}, "prompt[0].content: missing"),
        ({"prompt": "p", "responses": {}}, "responses: expected a list, got dict"),
        ({"prompt": "p", "responses": [{"score": 1}]}, "responses[0].text: missing"),
        ({"prompt": "p", "responses": [{"text": 5}]}, "responses[0].text: expected a string, got int"),
        ({"prompt": "p", "responses": [{"text": "a", "score": "high"}]},
         "responses[0].score: expected a number in [0, 1] or null, got 'high'"),
        ({"prompt": "p", "responses": [{"text": "a", "score": 1.5}]}, "responses[0].score: 1.5 is outside [0, 1]"),
        ({"prompt": "p", "responses": [{"text": "a", "score": True}]}, "responses[0].score: expected a number"),
        ({"prompt": "p", "responses": [{"text": "a", "correct": "yes"}]},
         "responses[0].correct: expected true, false or null, got 'yes'"),
        ({"prompt": "p", "task": 7}, "task: expected a string or null, got int"),
        ({"prompt": "p", "responses": [{"text": "a", "meta": []}]}, "responses[0].meta: expected an object"),
    ],
)
def test_validation_messages_name_the_field(record, message):
    errors = validate_group(record)
    assert any(message in e for e in errors), errors


def test_valid_records_have_no_errors():
    assert validate_group({"prompt": "p"}) == []
    assert validate_group({
        "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "responses": [{"text": "a", "score": 0.0, "correct": False, "meta": {"model": "m"}},
                      {"text": [{"role": "assistant", "content": "b"}], "score": 1, "correct": True}],
        "extra_field": {"kept": True},
    }) == []


def test_prompt_text_takes_last_user_turn():
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "first"},
            {"role": "assistant", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "last"}]}]
    assert prompt_text(msgs) == "last"
    assert prompt_text("plain") == "plain"
    assert prompt_text(None) == ""


def test_response_text_accepts_chat_completions():
    assert response_text([{"role": "assistant", "content": "x"}]) == "x"
    assert response_text({"text": "y"}) == "y"


def test_buckets_and_pass_rate():
    def grp(*flags):
        return {"prompt": "p", "responses": [{"text": "t", "correct": f} for f in flags]}

    assert bucket(grp(True, True)) == "all-correct"
    assert bucket(grp(False, False)) == "all-wrong"
    assert bucket(grp(True, False, None)) == "mixed"
    assert bucket(grp(None)) == "ungraded"
    assert pass_rate(grp(True, False, False, True)) == 0.5
    assert pass_rate(grp(None)) is None
