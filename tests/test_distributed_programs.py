"""Each partitioned program on LocalExecutor (several partition counts and visiting orders)
gives exactly the in-process step's rows and stats (and for check, its report)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from gradeset.distributed.executor import ORD, LocalExecutor
from gradeset.distributed.programs import program_for, run_partitioned
from gradeset.steps import build_step

DATA = Path(__file__).parent / "data" / "distributed" / "rows.jsonl"
EXECUTORS = [(1, 0), (3, 1), (4, 2), (7, 3), (16, 4)]


def _rows(valid_only: bool = True) -> list[dict]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    return [r for r in rows if isinstance(r.get("prompt"), str) and isinstance(r.get("responses"), list)] \
        if valid_only else rows


def _in_process(name: str, params: dict, rows: list[dict]) -> tuple[list[dict], dict, object]:
    step = build_step(name, params)
    batches = [copy.deepcopy(rows[i:i + 8]) for i in range(0, len(rows), 8)]
    out = [g for b in step.process(iter(batches)) for g in b]
    report = step.report() if name == "check" else None
    return out, dict(step.stats), report


def _partitioned(name: str, params: dict, rows: list[dict], partitions: int, seed: int):
    ex = LocalExecutor(partitions=partitions, seed=seed)
    ds = ex.dataset([dict(copy.deepcopy(r), **{ORD: i}) for i, r in enumerate(rows)], blocks=partitions + 1)
    step = build_step(name, params)
    assert program_for(step) is not None
    out, stats, report = run_partitioned(step, ex, ds)
    got = [{k: v for k, v in r.items() if k != ORD} for r in out.rows()]
    return got, stats, report


def _canon(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


def _assert_same(name: str, params: dict, rows: list[dict]) -> dict:
    want, want_stats, _ = _in_process(name, params, rows)
    for partitions, seed in EXECUTORS:
        got, stats, _ = _partitioned(name, params, rows, partitions, seed)
        assert _canon(got) == _canon(want), (partitions, seed)
        assert stats == want_stats, (partitions, seed)
    return want_stats


@pytest.mark.parametrize("key", ["prompt", "prompt+answer"])
def test_exact_dedup_equals_in_process(key):
    stats = _assert_same("dedup", {"method": "exact", "key": key}, _rows())
    assert stats["exact_duplicates"] > 0  # the fixture exercises it


@pytest.mark.parametrize("params", [{"n": 0}, {"n": 1}, {"n": 10}, {"n": 40, "seed": 3}, {"n": 500},
                                    {"fraction": 0.3}, {"fraction": 0.0, "seed": 5}])
def test_sample_equals_in_process(params):
    _assert_same("sample", params, _rows())


def test_sample_n_with_shared_ids_keeps_what_the_heap_keeps():
    # every row shares one of two ids: all values tie, arrival order decides in the heap
    rows = [dict(r, id=f"same-{i % 2}") for i, r in enumerate(_rows()[:30])]
    for n in (1, 3, 15, 16):
        _assert_same("sample", {"n": n}, rows)


def test_program_for_map_steps_is_none():
    assert program_for(build_step("filter", {"tasks": "math"})) is None


@pytest.mark.parametrize("params", [
    {"method": "near"}, {"method": "both", "threshold": 0.7}, {"method": "both", "threshold": 0.5, "seed": 4},
    {"method": "near", "threshold": 0.6, "numbers_must_match": False, "key": "prompt+answer"},
    {"method": "near", "threshold": 0.8, "num_perm": 64, "ngram": 2},
])
def test_near_dedup_equals_in_process(params):
    stats = _assert_same("dedup", params, _rows())
    assert stats["near_duplicates"] > 0 and stats["exact_duplicates"] > 0


def test_near_dedup_chain_keeps_the_third_when_the_middle_goes():
    # A~B and B~C but not A~C: B is dropped as A's twin, so C (its only similar earlier row
    # is gone) stays; a program that drops every row with any similar earlier row fails here
    from gradeset.shape.dedup import NearIndex, dedup, numbers_guard

    rows = [dict(r, pos=i) for i, r in enumerate(_rows())]
    kept, removed, _ = dedup(copy.deepcopy(rows), "near", threshold=0.5)
    idx = NearIndex(0.5)
    sig = {r["pos"]: idx.hasher.signature(r["prompt"]) for r in rows}

    def collide(a: int, b: int) -> bool:
        bands = [slice(i * idx.rows, (i + 1) * idx.rows) for i in range(idx.bands)]
        return (numbers_guard(rows[a]["prompt"]) == numbers_guard(rows[b]["prompt"])
                and any((sig[a][s] == sig[b][s]).all() for s in bands) and (sig[a] == sig[b]).mean() >= 0.5)

    near_gone = [r["pos"] for r in removed if r["dedup"]["kind"] == "near"]
    chains = [(g, k["pos"]) for g in near_gone for k in kept if g < k["pos"] and collide(g, k["pos"])]
    assert chains
    _assert_same("dedup", {"method": "near", "threshold": 0.5}, rows)


def _report_equal(name: str, params: dict, rows: list[dict]) -> None:
    want_rows, want_stats, want = _in_process(name, params, rows)
    for partitions, seed in EXECUTORS:
        got_rows, stats, got = _partitioned(name, params, rows, partitions, seed)
        assert _canon(got_rows) == _canon(want_rows)
        assert stats == want_stats, (partitions, seed)
        assert got.to_dict(include_sample=True) == want.to_dict(include_sample=True), (partitions, seed)


@pytest.mark.parametrize("params", [
    {},
    {"group_size": 4, "examples": 3, "sample": 7, "near_duplicate_threshold": 0.5, "max_length": 40},
    {"examples": 2, "seed": 9, "disable": ["near_duplicates"], "iqr_factor": 0.3,
     "test_prompts": ["alpha beta gamma delta epsilon zeta eta", "apple river stone cloud paper glass"]},
    {"layout": "dpo"},
])
@pytest.mark.parametrize("span", [65536, 7])
def test_check_report_equals_in_process(params, span, monkeypatch):
    # a small span numbers lines in many reduce calls, so partial states really merge
    import gradeset.distributed.programs.check as check_program

    monkeypatch.setattr(check_program, "SPAN", span)
    _report_equal("check", params, _rows(valid_only=False))


def test_check_after_gaps_in_ord_numbers_lines_like_the_stream():
    # a step before check dropped rows: ORDs have gaps, lines must still be 1, 2, 3, ...
    import gradeset.distributed.programs.check as check_program

    rows = _rows(valid_only=False)
    params = {"examples": 50, "sample": 90}
    want_rows, want_stats, want = _in_process("check", params, rows[::3])
    for span in (65536, 5):
        check_program.SPAN = span
        try:
            ex = LocalExecutor(partitions=4, seed=1)
            ds = ex.dataset([dict(copy.deepcopy(r), **{ORD: i}) for i, r in enumerate(rows)][::3])
            _, stats, got = run_partitioned(build_step("check", params), ex, ds)
        finally:
            check_program.SPAN = 65536
        assert got.to_dict(include_sample=True) == want.to_dict(include_sample=True)
        assert stats == want_stats


def test_stats_partials_cap_and_order_like_one_pass():
    # 260 categories (200 get a row, the rest fold into "(other)") and 30 wrong reasons that
    # all tie (the top 15 are the first seen): merged blocks must cut exactly where one pass does
    import random

    from gradeset.check.stats import DatasetStats

    groups = [{"id": f"c{i}", "prompt": f"q{i}", "category": f"cat{(i * 7) % 260}", "task": "t",
               "responses": [{"text": "a", "correct": False, "score": 0.0,
                              "meta": {"verify_detail": f"why{(i * 11) % 30}", "finish_reason": f"fr{i % 25}",
                                       "model": f"m{i % 230}"}}]}
              for i in range(600)]
    one = DatasetStats(sample_size=9, seed=2)
    for line, g in enumerate(groups, 1):
        one.add(g, line)
    blocks = [list(range(i, min(i + 37, 600))) for i in range(0, 600, 37)]
    random.Random(5).shuffle(blocks)
    merged = None
    for block in blocks:
        part = DatasetStats(sample_size=9, seed=2, partial=True)
        for i in block:
            part.add(groups[i], i + 1)
        merged = part if merged is None else merged.merge(part)
    merged.close_caps()
    assert merged.to_dict() == one.to_dict()
    assert merged.to_dict()["finish_reasons"] == one.to_dict()["finish_reasons"]
    assert list(merged.to_dict()["wrong_reasons"]) == list(one.to_dict()["wrong_reasons"])
    assert merged.sample() == one.sample()
    assert len(one.slices["category"]) == 201


BALANCE = [
    {},
    {"per_prompt": 3, "keep": "all", "seed": 2},
    {"per_prompt": 5, "upsample": True, "drop_buckets": "ungraded"},
    {"keep": "correct"},
    {"bucket_caps": "mixed=4,all-correct=3,all-wrong=0", "seed": 1},
    {"bucket_caps": "*=5", "per_prompt": 2},
    {"bucket_caps": "mixed=6", "task_caps": "math=7"},
    {"task_caps": "*=9", "task_row_caps": "code=20", "seed": 7},
    {"bucket_ratios": "mixed=2,all-correct=1,all-wrong=1", "bucket_caps": "mixed=10"},
    {"bucket_ratios": "mixed=1,ungraded=0", "task_row_caps": "*=30", "keep": "incorrect"},
]


@pytest.mark.parametrize("params", BALANCE)
def test_balance_equals_in_process(params):
    _assert_same("balance", params, _rows())


@pytest.mark.parametrize("params", [p for p in BALANCE if "bucket_caps" in p or "task_caps" in p])
def test_balance_caps_with_shared_ids(params):
    # rows sharing ids tie on priority: the in-process heap's arrival order decides
    rows = [dict(r, id=f"s{i % 5}") for i, r in enumerate(_rows())]
    _assert_same("balance", params, rows)


@pytest.mark.slow
def test_every_program_runs_on_ray_like_local():
    # functions must pickle to Ray workers and rows survive the executor's JSON encoding
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from gradeset.distributed.ray_exec import RayExecutor

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    saved = ray.data.DataContext.get_current()
    ctx = copy.deepcopy(saved)
    ctx.enable_progress_bars = False
    ray.data.DataContext._set_current(ctx)
    try:
        rows = [dict(r, **{ORD: i}) for i, r in enumerate(_rows(valid_only=False))]
        valid = [r for r in rows if isinstance(r.get("responses"), list) and isinstance(r.get("prompt"), str)]
        cases = [("dedup", {"method": "both", "threshold": 0.5}, valid),
                 ("balance", {"bucket_caps": "mixed=6", "task_caps": "math=7", "per_prompt": 2}, valid),
                 ("sample", {"n": 10}, valid), ("check", {"examples": 5, "near_duplicate_threshold": 0.5}, rows)]
        ex = RayExecutor(partitions=3)
        for name, params, data in cases:
            want_rows, want_stats, want = _in_process(name, params, [{k: v for k, v in r.items() if k != ORD}
                                                                     for r in data])
            out, stats, report = run_partitioned(build_step(name, params), ex, ex.dataset(copy.deepcopy(data), blocks=4))
            got = [{k: v for k, v in r.items() if k != ORD} for r in ex.rows(out)]
            assert _canon(got) == _canon(want_rows), name
            assert stats == want_stats, name
            if name == "check":
                assert report.to_dict(include_sample=True) == want.to_dict(include_sample=True)
    finally:
        ray.data.DataContext._set_current(saved)
        if started:
            ray.shutdown()
