"""Token accounting, cost estimates and budget stops against a server that returns usage."""

from __future__ import annotations

import orjson
import pytest
from loopback_server import LoopbackServer

from gradeset.cli import main
from gradeset.errors import GradesetError
from gradeset.generate import GenerateConfig, Stats, generate_groups
from gradeset.generate.cost import Prices, parse_prices


def write_prompts(path, k: int) -> None:
    # each prompt is 2 words: the loopback server counts 2 prompt tokens per request
    path.write_bytes(b"".join(orjson.dumps({"prompt": f"question {i}"}) + b"\n" for i in range(k)))


def fixed(ctoks: int):
    return lambda req: {"text": "answer", "completion_tokens": ctoks}


def read(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_parse_prices_inline_and_yaml(tmp_path):
    assert parse_prices("in=0.15,out=0.6") == Prices(0.15, 0.6)
    assert parse_prices("input=1, output=2") == Prices(1.0, 2.0)
    flat = tmp_path / "p.yaml"
    flat.write_text("in: 3\nout: 15\n")
    assert parse_prices(str(flat)) == Prices(3.0, 15.0)
    table = tmp_path / "t.yaml"
    table.write_text("models:\n  small: {in: 0.1, out: 0.4}\n  big: {in: 2, out: 8}\n")
    assert parse_prices(str(table), "big") == Prices(2.0, 8.0)
    with pytest.raises(GradesetError, match="no prices for model 'other'.*big, small"):
        parse_prices(str(table), "other")
    for bad in ("in=1", "in=x,out=2", "in=-1,out=2", "cheap", "in=1,out=2,extra=3", "in=nan,out=1"):
        with pytest.raises(GradesetError):
            parse_prices(bad)


def test_totals_count_the_prompt_once_per_request_and_cost_per_sample():
    prices = {"price_in_per_mtok": 1_000_000.0, "price_out_per_mtok": 2_000_000.0}  # 1 and 2 per token
    with LoopbackServer(reply=fixed(5)) as srv:
        stats = Stats()
        out = generate_groups([{"prompt": "a b c"}], GenerateConfig(
            model="m", base_url=srv.base_url, n=4, **prices), stats=stats)
        assert len(srv.generation_requests()) == 1
    # one request: 3 prompt tokens once, 4 × 5 completion tokens
    assert (stats.prompt_tokens, stats.completion_tokens) == (3, 20)
    assert stats.cost == pytest.approx(3 * 1 + 20 * 2)
    per = [r["meta"]["cost"] for r in out[0]["responses"]]
    assert sum(per) == pytest.approx(stats.cost)  # the prompt's cost is shared, not counted 4 times


def test_cli_prints_totals_and_cost(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(src, 3)
    with LoopbackServer(reply=fixed(10), support_n=False) as srv:
        code = main(["generate", str(src), "--out", str(out), "--model", "m", "--base-url", srv.base_url,
                     "-n", "2", "-q", "--price-per-mtok", "in=1000000,out=100000"])
    err = capsys.readouterr().err
    assert code == 0
    # 6 requests × (2 prompt, 10 completion); cost 12 × 1 + 60 × 0.1
    assert "tokens: 12 prompt + 60 completion = 72; estimated cost 18.0000" in err


@pytest.mark.parametrize("limit", [["--max-total-tokens", "30"], ["--max-cost", "30", "--price-per-mtok",
                                                                 "in=1000000,out=1000000"]])
def test_budget_stop_keeps_finished_work_exits_1_and_resumes(tmp_path, capsys, limit):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_prompts(src, 10)
    base = ["generate", str(src), "--out", str(out), "--model", "m", "-n", "1", "--concurrency", "1", "-q"]
    with LoopbackServer(reply=fixed(8)) as srv:
        code = main([*base, "--base-url", srv.base_url, *limit])
        err = capsys.readouterr().err
        sent = len(srv.generation_requests())
        assert code == 1 and "stopped:" in err and "re-run the same command to continue" in err
        # 10 tokens per request (2 prompt + 8 completion): the limit of 30 is reached after 3
        assert sent == 3
        groups = read(out)
        assert len(groups) == 10 and sum(len(g["responses"]) for g in groups) == 3  # finished work is kept
        assert main([*base, "--base-url", srv.base_url]) == 0  # resume without a limit: only the rest
        assert len(srv.generation_requests()) - sent == 7
    assert all(len(g["responses"]) == 1 for g in read(out))


def test_max_cost_needs_prices(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_prompts(src, 1)
    code = main(["generate", str(src), "--out", str(tmp_path / "o.jsonl"), "--model", "m", "--base-url",
                 "http://127.0.0.1:9/v1", "--max-cost", "5", "-q"])
    assert code == 2 and "max_cost needs prices" in capsys.readouterr().err


def test_check_report_shows_tokens_and_cost(tmp_path):
    from gradeset.check.stats import collect_stats

    groups = [{"prompt": "q", "responses": [
        {"text": "a", "meta": {"usage": {"prompt_tokens": 3, "completion_tokens": 7}, "cost": 0.5}},
        {"text": "b", "meta": {"usage": {"prompt_tokens": 3, "completion_tokens": 2}, "cost": 0.25}},
        {"text": "c", "meta": {}}]}]
    st = collect_stats(groups)
    assert st["tokens"] == {"responses_with_usage": 2, "prompt_tokens": 6, "completion_tokens": 9, "cost": 0.75}
    assert collect_stats([{"prompt": "q", "responses": [{"text": "a"}]}])["tokens"] is None
    shared = [{"prompt": "q", "responses": [
        {"text": "a", "meta": {"usage": {"prompt_tokens": 10, "completion_tokens": 1}, "request_samples": 2}},
        {"text": "b", "meta": {"usage": {"prompt_tokens": 10, "completion_tokens": 1}, "request_samples": 2,
                               "stage2_prompt_tokens": 15}}]}]
    assert collect_stats(shared)["tokens"]["prompt_tokens"] == 10 + 15  # prompt once, plus stage 2's
    hostile = [{"prompt": "q", "responses": [{"text": "a", "meta": {"usage": {"prompt_tokens": "9", "completion_tokens":
                                                                          float("nan")}, "cost": -1}}]}]
    assert collect_stats(hostile)["tokens"] is None


def test_check_command_reports_generation_tokens(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "gen.jsonl"
    write_prompts(src, 2)
    with LoopbackServer(reply=fixed(4)) as srv:
        assert main(["generate", str(src), "--out", str(out), "--model", "m", "--base-url", srv.base_url, "-n", "1",
                     "-q", "--price-per-mtok", "in=1000000,out=1000000"]) == 0
    capsys.readouterr()
    html = tmp_path / "r.html"
    main(["check", str(out), "--report", str(html)])
    expected = "4 prompt + 8 completion over 2 responses; estimated cost 12.0000"
    printed = capsys.readouterr()
    assert f"generation tokens: {expected}" in printed.out + printed.err
    assert expected in html.read_text()
