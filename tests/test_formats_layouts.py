"""Layouts: every seed example imports as written, every layout round-trips, the odd cases behave."""

from __future__ import annotations

import copy

import orjson
import pytest

from gradeset.errors import GradesetError
from gradeset.formats import ImportContext, export_groups, get_layout, import_rows, read_groups
from gradeset.formats.registry import detect_layout

FIX = "formats"


def imp(layout: str, rows: list[dict], **options) -> tuple[list[dict], list, ImportContext]:
    rejects: list = []
    ctx = ImportContext(source="<test>", on_reject=rejects.append, options=options)
    groups = list(import_rows(list(enumerate(rows, 1)), layout, ctx))
    return groups, rejects, ctx


def roundtrip(layout: str, rows: list[dict], **opts) -> tuple[list[dict], list[dict]]:
    g1, rej1, _ = imp(layout, rows)
    assert not rej1, [r.reason for r in rej1]
    out = list(export_groups(copy.deepcopy(g1), layout, **opts))
    out = [orjson.loads(orjson.dumps(r)) for r in out]  # what a JSONL file gives back
    g2, rej2, _ = imp(layout, out)
    assert not rej2, [r.reason for r in rej2]
    assert [text_answer(g) for g in g2] == [text_answer(g) for g in g1]
    return g1, out


def text_answer(group: dict) -> dict:
    """The group as an export gives it back: a scalar gold answer is written as text."""
    g = copy.deepcopy(group)
    if isinstance(g.get("answer"), int | float):
        g["answer"] = str(g["answer"])
    return g


def read_fixture(data_dir, name: str) -> tuple[list[dict], ImportContext, list]:
    rejects: list = []
    ctx = ImportContext()
    groups = list(read_groups(data_dir / FIX / name, ctx=ctx, on_reject=rejects.append))
    return groups, ctx, rejects


# ------------------------------------------------------------------ seed examples, exactly as written

def test_seed000_messages_example(data_dir):
    (g,), ctx, rej = read_fixture(data_dir, "seed000_sft_messages.jsonl")
    assert ctx.options["layout"] == "trl-sft" and not rej
    assert g["prompt"] == [{"role": "user", "content": "..."}]
    assert g["responses"] == [{"text": "..."}]


def test_seed000_gspo_preference_example_is_trl_dpo(data_dir):
    (g,), ctx, rej = read_fixture(data_dir, "seed000_gspo_preference.jsonl")
    assert ctx.options["layout"] == "trl-dpo" and not rej
    assert g["prompt"] == "Explain the paradox of growth in emerging markets"
    chosen, rejected = g["responses"]
    assert chosen["text"].startswith("The paradox of growth is") and chosen["score"] == 1.0
    assert rejected["text"].startswith("Emerging markets grow fast") and rejected["score"] == 0.0


def test_seed000_script_output_has_three_pairs(data_dir):
    groups, ctx, _ = read_fixture(data_dir, "seed000_gspo_writing_dataset.jsonl")
    assert ctx.options["layout"] == "trl-dpo"
    assert [g["prompt"] for g in groups] == ["Explain the paradox of growth in emerging markets",
                                             "What are the main problems with value investing?",
                                             "Should you pay up for growth stocks?"]


@pytest.mark.parametrize("name, prompt, scores", [
    ("seed000_grpo_ranked.jsonl", "What are the risks of value investing?", [1.0, 0.5, 0.2]),
    ("seed000_life_lessons_ranked.jsonl", "What's the key to successful value investing in emerging markets?",
     [1.0, 0.6, 0.2]),
])
def test_seed000_ranked_examples(data_dir, name, prompt, scores):
    (g,), ctx, _ = read_fixture(data_dir, name)
    assert ctx.options["layout"] == "seed000"
    assert g["prompt"] == prompt and [r["score"] for r in g["responses"]] == scores


def test_seed001_group_examples(data_dir):
    (g,), ctx, _ = read_fixture(data_dir, "seed001_group.json")
    assert ctx.options["layout"] == "group"
    assert [r["correct"] for r in g["responses"]] == [True, False]
    (g2,), _, _ = read_fixture(data_dir, "seed001_group_optional.json")
    r = g2["responses"][0]
    # seed 001 spells it `metadata`; the canonical key is `meta`
    assert r["meta"]["model"] == "llama-3.2-1b" and "metadata" not in r
    assert (g2["difficulty"], g2["category"], g2["source"]) == ("easy", "string_manipulation", "leetcode_easy")
    assert r["execution_output"] == "Test passed: 'hello' -> 'olleh'"


def test_seed001_prompts_file_is_prompt_only(data_dir):
    groups, ctx, _ = read_fixture(data_dir, "seed001_prompts.jsonl")
    assert ctx.options["layout"] == "trl-prompt"
    assert [(g["prompt"], g["category"], g["responses"]) for g in groups][0] == \
        ("Solve for x: 2x + 5 = 15", "algebra", [])


@pytest.mark.parametrize("name, prompt, answer, text", [
    ("seed002_pair_example1.json", "79-7=?", 72, "The answer is 72 because 79-7 equals 72."),
    ("seed002_pair_example2.json", "x+55=95,x=?", 40, "The answer is 40 because 95-55 equals to 40."),
])
def test_seed002_pair_examples(data_dir, name, prompt, answer, text):
    (g,), ctx, _ = read_fixture(data_dir, name)
    assert ctx.options["layout"] == "seed002"
    assert (g["prompt"], g["answer"], g["prompt_rule"]) == (prompt, answer, "answer-marker")
    assert g["responses"] == [{"text": text, "score": 1.0, "correct": True},
                              {"text": "Sorry, I don't know.", "score": 0.0, "correct": False}]
    assert any("before 'The answer is'" in n for n in ctx.notes)


def test_seed002_test_and_seed004_traces(data_dir):
    groups, ctx, _ = read_fixture(data_dir, "seed002_test.jsonl")
    assert ctx.options["layout"] == "gsm8k"
    assert [(g["prompt"], g["answer"]) for g in groups] == [("79-7=?", 72), ("x+55=95,x=?", 40)]
    (g,), ctx, _ = read_fixture(data_dir, "seed004_traces.jsonl")
    assert (g["answer"], g["reference"]) == ("42", "<reasoning>\n\n#### 42")


# ------------------------------------------------------------------ layout rules

def test_gsm8k_answer_extraction_removes_commas():
    (g,), _, _ = imp("gsm8k", [{"question": "q", "answer": "Total 1,000+234\n#### 1,234"}])
    assert g["answer"] == "1234" and g["reference"].endswith("#### 1,234")
    (g,), _, _ = imp("gsm8k", [{"question": "q", "answer": "so -3.5 it is\n####  -3.5 "}])
    assert g["answer"] == "-3.5"


def test_seed002_common_prefix_rule_when_no_marker():
    rows = [{"positive": "Q: capital of France? Paris", "negative": "Q: capital of France? Lyon"}]
    (g,), _, ctx = imp("seed002", rows)
    assert g["prompt"] == "Q: capital of France?" and g["prompt_rule"] == "common-prefix"
    assert [r["text"] for r in g["responses"]] == ["Paris", "Lyon"]
    assert any("common prefix" in n for n in ctx.notes)
    roundtrip("seed002", rows)


def test_seed002_without_any_prompt_is_rejected():
    _, rej, _ = imp("seed002", [{"positive": "yes", "negative": "no"}])
    assert "cannot derive a prompt" in rej[0].reason


def test_trl_dpo_implicit_prompt_string_and_conversational():
    rows = [{"chosen": "Q: sky colour? It is blue.", "rejected": "Q: sky colour? It is green."}]
    (g,), _, ctx = imp("trl-dpo", rows)
    assert g["prompt"] == "Q: sky colour? It is" and g["prompt_rule"] == "common-prefix"
    assert [r["text"] for r in g["responses"]] == ["blue.", "green."]
    conv = [{"chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}],
             "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}]}]
    (g,), _, _ = imp("trl-dpo", conv)
    assert g["prompt"] == [{"role": "user", "content": "Sky?"}]
    assert [r["text"] for r in g["responses"]] == ["Blue.", "Green."]
    (row,) = export_groups([g], "trl-dpo")
    assert row["chosen"] == [{"role": "assistant", "content": "Blue."}]  # conversational stays conversational


def test_ultrafeedback_rows_string_prompt_with_conversations_and_1_to_10_ratings():
    # trl-lib/ultrafeedback_binarized: a string prompt beside full conversations, ratings 1-10
    rows = [{"prompt": "Sky?", "score_chosen": 8.0, "score_rejected": 3.5,
             "chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}],
             "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}]}]
    (g,), _, _ = imp("trl-dpo", rows)
    assert g["prompt"] == [{"role": "user", "content": "Sky?"}] and "given_prompt" not in g
    assert [(r["text"], r["score"], r["meta"]["rating"]) for r in g["responses"]] == [
        ("Blue.", 1.0, 8.0), ("Green.", 0.0, 3.5)]
    (row,) = export_groups([g], "trl-dpo")
    assert row["chosen"] == [{"role": "assistant", "content": "Blue."}]
    assert (row["score_chosen"], row["score_rejected"]) == (8.0, 3.5)  # the ratings come back


def test_trl_dpo_export_orders_by_score_and_refuses_bigger_groups():
    g = {"prompt": "p", "responses": [{"text": "bad", "score": 0.2}, {"text": "good", "score": 0.9}]}
    (row,) = export_groups([g], "trl-dpo")
    assert (row["chosen"], row["rejected"], row["score_chosen"], row["score_rejected"]) == ("good", "bad", 0.9, 0.2)
    big = {"prompt": "p", "responses": [{"text": str(i), "score": i / 4} for i in range(4)]}
    with pytest.raises(GradesetError, match="gradeset build dpo"):
        list(export_groups([big], "trl-dpo"))


def test_trl_prompt_export_keeps_reward_columns_and_conversational_form():
    g = {"prompt": "2+2=?", "answer": "4", "task": "math", "responses": [{"text": "4", "score": 1.0}]}
    (row,) = export_groups([g], "trl-prompt", conversational=True, system_prompt="Be brief.")
    assert row["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2=?"}]
    assert row["answer"] == "4" and row["task"] == "math" and "responses" not in row


def test_trl_sft_and_kto_refuse_groups_they_cannot_hold():
    g = {"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}
    with pytest.raises(GradesetError, match="build sft"):
        list(export_groups([g], "trl-sft"))
    with pytest.raises(GradesetError, match="build kto"):
        list(export_groups([g], "trl-kto"))
    with pytest.raises(GradesetError, match="no response"):
        list(export_groups([{"prompt": "p", "responses": []}], "trl-sft"))


def test_wrong_types_and_missing_fields_are_rejected_with_field_names():
    cases = [
        ("trl-dpo", {"prompt": "p", "chosen": 3, "rejected": "r"}, "chosen: expected a string"),
        ("trl-dpo", {"prompt": "p", "chosen": "c"}, "rejected: missing"),
        ("trl-kto", {"prompt": "p", "completion": "c", "label": "maybe"}, "label: expected true or false"),
        ("trl-sft", {"prompt": "p"}, "completion: missing"),
        ("seed000", {"prompt": "p", "completions": [{"text": "a", "score": "high"}]}, "completions[0].score"),
        ("seed002", {"positive": "a The answer is 1"}, "negative: missing"),
        ("seed003", {"question": "q", "completion": "c", "correctness_label": 7}, "correctness_label: expected 0 or 1"),
        ("gsm8k", {"question": "q", "answer": [{"x": 1}]}, "answer: expected a string, a number or a list of aliases"),
        ("sharegpt", {"conversations": [{"from": "alien", "value": "hi"}]}, "unknown speaker"),
        ("alpaca", {"instruction": "i"}, "output: missing"),
        ("verl", {"prompt": [{"role": "user", "content": "q"}], "reward_model": {}}, "ground_truth: missing"),
    ]
    for layout, row, reason in cases:
        groups, rej, _ = imp(layout, [row])
        assert groups == [] and len(rej) == 1 and reason in rej[0].reason, (layout, [r.reason for r in rej])
        assert orjson.loads(rej[0].raw) == row and rej[0].line == 1


def test_detection_picks_each_layout():
    samples = {
        "group": {"prompt": "p", "responses": []},
        "seed000": {"prompt": "p", "completions": []},
        "trl-dpo": {"prompt": "p", "chosen": "a", "rejected": "b"},
        "seed002": {"positive": "a", "negative": "b"},
        "gsm8k": {"question": "q", "answer": "1"},
        "seed003": {"question": "q", "completion": "c", "correctness_label": 1},
        "trl-sft": {"prompt": "p", "completion": "c"},
        "trl-kto": {"prompt": "p", "completion": "c", "label": True},
        "trl-prompt": {"prompt": "p", "answer": "1"},
        "verl": {"prompt": [], "reward_model": {"ground_truth": "1"}, "data_source": "x"},
        "sharegpt": {"conversations": []},
        "alpaca": {"instruction": "i", "input": "", "output": "o"},
    }
    for name, row in samples.items():
        assert detect_layout([row]) == name
    assert {get_layout(n).name for n in samples} == set(samples)


# ------------------------------------------------------------------ round trips (import -> export -> import)

ROUNDTRIPS = {
    "group": [{"prompt": "2+2=?", "answer": "4", "responses": [
        {"text": "4", "score": 1.0, "correct": True, "meta": {"model": "m", "sample_index": 0}},
        {"text": "5", "score": 0.0, "correct": False}], "category": "arith", "custom": {"k": [1, 2]}}],
    "seed000": [{"prompt": "Why?", "completions": [{"text": "a", "score": 1.0}, {"text": "b", "score": 0.5,
                                                                               "note": "kept"}]}],
    "trl-dpo": [{"prompt": "p", "chosen": "c", "rejected": "r", "extra": 1},
                {"chosen": "Q? yes indeed", "rejected": "Q? no way"},
                {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "hello"}],
                 "rejected": [{"role": "assistant", "content": "go away"}]},
                {"prompt": "p", "chosen": "c", "rejected": "r", "score_chosen": 0.8, "score_rejected": 0.3}],
    "seed002": [{"positive": "79-7=? The answer is 72 because 79-7 equals 72.", "negative": "Sorry, I don't know."},
                {"positive": "1+1=? The answer is 2 because 1+1 equals 2.",
                 "negative": "1+1=? The answer is 3 because 1+1 equals 3."}],
    "gsm8k": [{"question": "How many?", "answer": "Half of 10 is 5.\n#### 5"}, {"question": "79-7=?", "answer": 72},
              {"question": "q", "answer": "plain"}],
    "seed003": [
        {"question": "1+1?", "answer": "2", "completion": "2", "correctness_label": 1, "pred_parsed": True,
         "model": "m"},
        {"question": "1+1?", "answer": "2", "completion": "3", "correctness_label": 0, "pred_parsed": True,
         "model": "m"},
        {"question": "cap of France?", "solution": "Paris", "completion": "Lyon", "correctness_label": 0,
         "pred_parsed": False, "seed": 1},
        {"question": "cap of France?", "solution": "Paris", "completion": "Paris", "correctness_label": 1,
         "pred_parsed": True, "seed": 2}],
    "trl-sft": [{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                              {"role": "assistant", "content": "a"}]},
                {"prompt": "p", "completion": "c"},
                {"prompt": [{"role": "user", "content": "u"}], "completion": [{"role": "assistant", "content": "a"}]}],
    "trl-prompt": [{"prompt": "p", "answer": "1", "task": "math"}, {"prompt": "q", "solution": "\\frac12"},
                   {"prompt": [{"role": "user", "content": "u"}], "answer": "x"}],
    "trl-kto": [{"prompt": "p", "completion": "c", "label": True}, {"prompt": "p", "completion": "d", "label": False}],
    "verl": [{"data_source": "openai/gsm8k", "prompt": [{"role": "user", "content": "q"}], "ability": "math",
              "reward_model": {"style": "rule", "ground_truth": "72"},
              "extra_info": {"split": "train", "index": 0, "id": "abc", "answer": "long solution"}}],
    "sharegpt": [{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "hi"},
                                    {"from": "gpt", "value": "hello"}]},
                 {"conversations": [{"from": "human", "value": "2+2?"}], "chosen": {"from": "gpt", "value": "4"},
                  "rejected": {"from": "gpt", "value": "5"}}],
    "alpaca": [{"instruction": "Add", "input": "1 and 2", "output": "3"}, {"instruction": "Say hi", "input": "",
                                                                         "output": "hi"},
               {"instruction": "2+2?", "input": "", "chosen": "4", "rejected": "5", "system": "Be brief."}],
    "generations": [{"problem": "1+1?", "answer": "2", "generations": ["\\boxed{2}", "\\boxed{3}"],
                     "correctness_math_verify": [True, False], "finish_reasons": ["stop", "stop"]}],
    "openrlhf": [{"input": "1+1?", "label": "2", "datasource": "gsm8k"},
                 {"input": "Say hi", "output": "hi", "label": "", "datasource": "default"},
                 {"input": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}],
                  "rejected": [{"role": "assistant", "content": "b"}], "label": "a", "datasource": "default"}],
}


@pytest.mark.parametrize("layout", sorted(ROUNDTRIPS))
def test_layout_roundtrip(layout):
    g1, out = roundtrip(layout, ROUNDTRIPS[layout])
    assert g1 and all(g["id"] for g in g1)


def test_roundtrip_covers_every_writable_layout():
    from gradeset.formats import writable_layouts

    assert set(writable_layouts()) <= set(ROUNDTRIPS)


def test_seed003_rows_group_by_question_and_export_back_to_rows():
    g1, out = roundtrip("seed003", ROUNDTRIPS["seed003"])
    a, b = g1
    assert (a["prompt"], a["answer"], a["model"]) == ("1+1?", "2", "m")  # equal on every row: a group field
    assert [r["correct"] for r in a["responses"]] == [True, False]
    assert b["answer"] == "Paris" and [r["seed"] for r in b["responses"]] == [1, 2]  # differs: per response
    assert len(out) == 4 and {r["correctness_label"] for r in out} == {0, 1}


def test_seed003_scattered_rows_spill_to_disk_and_still_group(tmp_path):
    rows = [{"question": f"q{i % 50}", "completion": f"c{i}", "correctness_label": i % 2} for i in range(500)]
    groups, rej, ctx = imp("seed003", rows, max_open_groups=5, two_pass=False)
    assert not rej and len(groups) == 50
    by_q = {g["prompt"]: g for g in groups}
    assert [r["text"] for r in by_q["q7"]["responses"]] == [f"c{i}" for i in range(7, 500, 50)]
    assert any("spilled" in n for n in ctx.notes)


def test_seed003_two_pass_streams_consecutive_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"question": f"q{i // 2}", "completion": str(i), "correctness_label": i % 2} for i in range(40)]
    rows.append({"question": "q0", "completion": "late", "correctness_label": 1})  # q0 is not consecutive
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    ctx = ImportContext()
    it = read_groups(path, ctx=ctx)
    first = next(it)
    assert first["prompt"] == "q1"  # q0 is still open (its last row comes at the end); q1 was complete
    rest = list(it)
    q0 = next(g for g in rest if g["prompt"] == "q0")
    assert [r["text"] for r in q0["responses"]] == ["0", "1", "late"] and len(rest) == 19


def test_verl_export_fields():
    g = {"id": "g1", "prompt": "What is 2+2?", "answer": 4, "task": "math", "source": "gsm8k", "responses": []}
    (row,) = export_groups([g], "verl", system_prompt="Think.")
    # a source verl's default scorer knows under another name is written under that name
    assert row["data_source"] == "openai/gsm8k" and row["ability"] == "math"
    assert row["prompt"] == [{"role": "system", "content": "Think."}, {"role": "user", "content": "What is 2+2?"}]
    assert row["reward_model"] == {"style": "rule", "ground_truth": "4"}
    assert row["extra_info"] == {"split": "train", "index": 0, "id": "g1", "question": "What is 2+2?",
                                 "task": "math", "answer": "4", "verifier": "math", "source": "gsm8k"}


def test_unknown_fields_pass_through_every_importer():
    for layout, rows in ROUNDTRIPS.items():
        row = dict(rows[0])
        row["zz_custom"] = {"keep": True}
        groups, rej, _ = imp(layout, [row])
        assert not rej and groups[0]["zz_custom"] == {"keep": True}, layout


def test_exports_are_what_trl_expects():
    """TRL's own helpers agree with our exports: conversational detection and implicit prompts."""
    data_utils = pytest.importorskip("trl.data_utils")
    conv = {"chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}],
            "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}]}
    (g,), _, _ = imp("trl-dpo", [conv])
    (row,) = export_groups([g], "trl-dpo")
    theirs = data_utils.extract_prompt(conv)
    assert (row["prompt"], row["chosen"], row["rejected"]) == (theirs["prompt"], theirs["chosen"], theirs["rejected"])
    assert data_utils.is_conversational(row)
    (sft,) = export_groups([{"prompt": "p", "responses": [{"text": "c"}]}], "trl-sft", conversational=True)
    assert data_utils.is_conversational(sft) and sft["completion"][0]["role"] == "assistant"
    (plain,) = export_groups([{"prompt": "p", "answer": "1", "responses": []}], "trl-prompt")
    assert not data_utils.is_conversational(plain)
    (kto,) = export_groups([{"prompt": "p", "responses": [{"text": "c", "correct": False}]}], "trl-kto")
    assert kto["label"] is False and (kto["prompt"], kto["completion"]) == ("p", "c")


def test_seed003_parquet_shards_group_across_files(tmp_path):
    from gradeset.io import write_rows

    d = tmp_path / "verified"
    d.mkdir()
    write_rows(d / "shard-00000.parquet", [{"question": "a", "completion": "1", "correctness_label": 1, "pred_parsed": True},
                                           {"question": "b", "completion": "2", "correctness_label": 0, "pred_parsed": True}])
    write_rows(d / "shard-00001.parquet", [{"question": "a", "completion": "3", "correctness_label": 0, "pred_parsed": False}])
    groups = {g["prompt"]: g for g in read_groups(d)}
    assert [r["text"] for r in groups["a"]["responses"]] == ["1", "3"]
    assert [r["pred_parsed"] for r in groups["a"]["responses"]] == [True, False]
    assert len(groups["b"]["responses"]) == 1


def test_seed003_csv_files(tmp_path):
    """Seed 003's CSVs: benchmark questions (question/solution, question/answer letter) and labelled rows."""
    bench = tmp_path / "merged_math.csv"
    bench.write_text('question,solution,original_source\n"What is $1+1$?",2,math500\n')
    (g,) = read_groups(bench)
    assert (g["prompt"], g["answer"], g["original_source"]) == ("What is $1+1$?", "2", "math500")
    mmlu = tmp_path / "test.csv"
    mmlu.write_text("question,answer\nPick one: (A) x (B) y,B\n")
    (g,) = read_groups(mmlu)
    assert g["answer"] == "B"
    rows = tmp_path / "verified.csv"
    rows.write_text("question,answer,completion,correctness_label,pred_parsed\n"
                    "q,2,\\boxed{2},1,true\nq,2,\\boxed{3},0,false\n")
    (g,) = read_groups(rows)
    assert [(r["correct"], r["pred_parsed"]) for r in g["responses"]] == [(True, True), (False, False)]


def test_triviaqa_alias_objects_and_math_problem_solution_rows():
    rows = [{"question": "Capital of France?", "answer": {"aliases": ["Paris", "City of Light"], "value": "Paris"}},
            {"question": "Largest planet?", "answer": ["Jupiter", "jupiter"]},
            {"problem": "Find x.", "level": "Level 2", "solution": "So $x = \\boxed{\\frac{1}{2}}$."}]
    assert detect_layout(rows) == "gsm8k"
    groups, rejects, ctx = imp("gsm8k", rows)
    assert not rejects
    assert groups[0]["answer"]["aliases"] == ["Paris", "City of Light"]  # kept whole for the trivia verifier
    assert groups[1]["answer"] == ["Jupiter", "jupiter"]
    assert groups[2]["prompt"] == "Find x." and groups[2]["answer"] == "\\frac{1}{2}"
    assert groups[2]["reference"].startswith("So $x") and "solution" not in groups[2] and groups[2]["level"] == "Level 2"
    assert any("boxed" in n for n in ctx.notes)
    from gradeset.verify import get_verifier

    assert get_verifier("trivia")("It is \\boxed{the City of Light}", groups[0]["answer"]).correct


def test_openr1_generations_rows_become_graded_groups_and_round_trip():
    row = {"problem": "What is 1+1?", "answer": "2", "uuid": "u1",
           "generations": ["<think>ok</think> \\boxed{2}", "\\boxed{3}"],
           "correctness_math_verify": [True, False], "correctness_llama": [None, None],
           "is_reasoning_complete": [True, False], "finish_reasons": ["stop", "length"]}
    assert detect_layout([row]) == "generations"
    (g,), rejects, _ = imp("generations", [row])
    assert not rejects and g["prompt"] == "What is 1+1?" and g["uuid"] == "u1"
    assert [(r["correct"], r["score"]) for r in g["responses"]] == [(True, 1.0), (False, 0.0)]
    # is_reasoning_complete False follows from finish_reason "length": the export derives it again
    assert g["responses"][1]["meta"] == {"correctness_llama": None, "finish_reason": "length", "sample_index": 1}
    (back,) = export_groups([g], "generations")
    # every column with values comes back; an all-null list is not written (datasets 4 misreads nulls in lists)
    assert {k: back[k] for k in row if k != "correctness_llama"} == {k: v for k, v in row.items()
                                                                     if k != "correctness_llama"}
    assert "correctness_llama" not in back and "sample_meta" not in back
    # OpenR1-Math-220k's other columns, derived from the responses as they are now
    assert back["solution"] == "\\boxed{2}" and back["correctness_count"] == 1
    assert back["messages"] == [{"role": "user", "content": "What is 1+1?"},
                                {"role": "assistant", "content": "<think>ok</think> \\boxed{2}"}]
    g["responses"][1]["correct"] = True  # re-verified: the count follows
    (again,) = export_groups([g], "generations")
    assert again["correctness_count"] == 2 and again["correctness_math_verify"] == [True, True]


def test_generations_export_never_pads_per_sample_lists_with_null():
    g = {"prompt": "p", "answer": 3, "responses": [
        {"text": "a", "correct": True, "meta": {"negative": None, "finish_reason": "stop"}},
        {"text": "b", "meta": {"negative": "refusal", "finish_reason": "stop"}}]}
    (row,) = export_groups([g], "generations")
    lists = {k: v for k, v in row.items() if isinstance(v, list) and k != "messages"}
    assert all(None not in v for v in lists.values()), lists
    assert row["answer"] == "3" and row["finish_reasons"] == ["stop", "stop"]
    assert row["sample_meta"] == [{"correctness_math_verify": True}, {"negative": "refusal"}]
    (back,), rej, _ = imp("generations", [orjson.loads(orjson.dumps(row))])
    assert not rej
    assert [r.get("correct") for r in back["responses"]] == [True, None]
    assert [r["meta"].get("negative") for r in back["responses"]] == [None, "refusal"]


    groups, rejects, _ = imp("generations", [row, {"problem": "x", "generations": "not a list"}])
    assert len(groups) == 1 and "generations: expected a list of strings" in str(rejects)
