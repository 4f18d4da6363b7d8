"""Dedup (exact and MinHash near-duplicates) and decontamination against benchmark files."""

from __future__ import annotations

import json

import pytest

from gradeset.records import new_group
from gradeset.shape.decontaminate import DecontaminateStep, decontaminate
from gradeset.shape.dedup import DedupStep, MinHasher, dedup, lsh_params
from gradeset.shape.scoring import ShapeError

LONG = ("A train leaves the station at 3 pm travelling at 60 miles per hour towards a city that is "
        "180 miles away. At what time does it arrive at the city if it does not stop on the way?")


def test_exact_dedup_normalises_case_unicode_and_spacing_but_not_numbers():
    gs = [new_group("What is 2+3?"), new_group("what is 2 + 3 ?"), new_group("What is 2+4?"),
          new_group("ＷＨＡＴ IS 2+3?")]
    kept, removed, stats = dedup(gs, "exact")
    assert [g["prompt"] for g in kept] == ["What is 2+3?", "What is 2+4?"]
    assert all(r["dedup"] == {"kind": "exact", "duplicate_of": gs[0]["id"]} for r in removed)
    assert stats["exact_duplicates"] == 2


def test_prompt_plus_answer_key_keeps_same_question_other_answer():
    gs = [new_group("q", "1"), new_group("q", "2"), new_group("q", "1", source="other")]
    kept, _, _ = dedup(gs, "exact", key="prompt+answer")
    assert [g["answer"] for g in kept] == ["1", "2"]


def test_near_dedup_catches_rewordings_and_keeps_other_numbers():
    gs = [new_group(LONG), new_group(LONG.replace("does it arrive", "will it arrive")),
          new_group(LONG.replace("180", "240")), new_group("Something else entirely about cooking pasta.")]
    kept, removed, stats = dedup(gs, "near", threshold=0.7)
    assert [r["prompt"] for r in removed] == [gs[1]["prompt"]]
    assert removed[0]["dedup"]["kind"] == "near" and removed[0]["dedup"]["similarity"] >= 0.7
    assert len(kept) == 3  # 240 miles is another question
    kept, _, _ = dedup(gs, "near", threshold=0.7, numbers_must_match=False)
    assert len(kept) == 2


def test_minhash_estimates_jaccard():
    h = MinHasher(num_perm=256, ngram=1)
    a = h.signature(" ".join(f"w{i}" for i in range(100)))
    b = h.signature(" ".join(f"w{i}" for i in range(50, 150)))
    assert abs(float((a == b).mean()) - 50 / 150) < 0.08
    assert lsh_params(0.85, 128)[0] * lsh_params(0.85, 128)[1] <= 128


def test_dedup_step_keeps_state_across_batches():
    step = DedupStep(method="exact")
    first = step([new_group("a"), new_group("b")])
    second = step([new_group("A"), new_group("c")])
    assert [g["prompt"] for g in first + second] == ["a", "b", "c"]
    assert step.stats["exact_duplicates"] == 1
    with pytest.raises(ShapeError):
        DedupStep(method="fuzzy")


@pytest.fixture
def bench(tmp_path):
    p = tmp_path / "dpo_test_data.json"  # seed 002's test file: JSONL with question/answer
    p.write_text("\n".join(json.dumps(r) for r in [
        {"question": "79-7=?", "answer": 72}, {"question": "x+55=95,x=?", "answer": 40},
        {"question": LONG, "answer": "6 pm"}]) + "\n")
    return p


def test_decontaminate_short_and_long_questions_with_matching_row(bench):
    gs = [new_group("79 - 7 = ?"), new_group("79-8=?"), new_group("Solve: x+55=95,x=? Show your work."),
          new_group("Please answer. " + LONG + " Give the time."), new_group("Name a prime number.")]
    kept, removed, stats = decontaminate(gs, [str(bench)])
    assert [g["prompt"] for g in kept] == ["79-8=?", "Name a prime number."]
    hits = [r["contamination"] for r in removed]
    assert [h["line"] for h in hits] == [1, 2, 3]
    assert hits[0]["benchmark_row"] == {"question": "79-7=?", "answer": 72}
    assert hits[0]["benchmark"] == str(bench)
    assert stats == {"groups": 5, "contaminated": 3, "kept": 2}


def test_decontaminate_needs_the_same_numbers(bench):
    # seed 002's find-x prompts share most n-grams when only one number differs; they are
    # other questions unless numbers_must_match is turned off
    gs = [new_group("x+45=95,x=?"), new_group("x+55=96,x=?"), new_group("x + 55 = 95, x = ?")]
    kept, removed, _ = decontaminate(gs, [str(bench)], ngram=4)
    assert [g["prompt"] for g in kept] == ["x+45=95,x=?", "x+55=96,x=?"]
    assert [r["prompt"] for r in removed] == ["x + 55 = 95, x = ?"]
    kept, _, _ = decontaminate(gs, [str(bench)], ngram=4, numbers_must_match=False)
    assert len(kept) < 2


def test_partial_overlap_below_threshold_is_kept(bench):
    half = " ".join(LONG.split()[:12]) + " and then something completely different follows here for many words"
    kept, _, _ = decontaminate([new_group(half)], [str(bench)], min_overlap=0.9)
    assert len(kept) == 1
    kept, _, _ = decontaminate([new_group(half)], [str(bench)], min_overlap=0.0)
    assert kept == []


def test_boilerplate_ngrams_do_not_match_everything(tmp_path):
    boiler = "Please reason step by step, and put your final answer within \\boxed{}."
    p = tmp_path / "b.jsonl"
    p.write_text("\n".join(json.dumps({"problem": f"{boiler} Compute {i} times {i + 7}."}) for i in range(60)))
    kept, _, _ = decontaminate([new_group(f"{boiler} How many legs does a spider have?")], [str(p)],
                               min_overlap=0.0, max_df=50)
    assert len(kept) == 1


def test_decontaminate_errors_and_step(tmp_path, bench):
    with pytest.raises(Exception, match="not found"):
        decontaminate([], [str(tmp_path / "missing.json")])
    empty = tmp_path / "e.jsonl"
    empty.write_text('{"id": 1}\n')
    with pytest.raises(Exception, match="no benchmark questions"):
        decontaminate([], [str(empty)])
    step = DecontaminateStep(benchmarks=str(bench))
    import pickle

    step = pickle.loads(pickle.dumps(step))
    assert [g["prompt"] for g in step([new_group("79-7=?"), new_group("1+1=?")])] == ["1+1=?"]
    assert step.stats["contaminated"] == 1
