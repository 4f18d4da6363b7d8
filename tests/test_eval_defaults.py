"""eval's defaults: k from the group size, maj@k absent without parsed answers, honest help."""

from __future__ import annotations

import orjson
import pytest

from gradeset.cli import build_parser, main
from gradeset.evaluate.metrics import compute_metrics, default_ks


def groups(n_groups: int, size: int, parsed: bool) -> list[dict]:
    out = []
    for g in range(n_groups):
        rs = []
        for i in range(size):
            ok = (i + g) % 3 == 0
            r = {"text": f"answer {i}", "score": float(ok), "correct": ok}
            if parsed:
                r["parsed"] = "7" if ok else str(i)
            rs.append(r)
        out.append({"prompt": f"q{g}", "answer": "7", "responses": rs})
    return out


@pytest.mark.parametrize("size, ks", [(1, [1]), (2, [1, 2]), (6, [1, 2, 4, 6]), (8, [1, 2, 4, 8]), (16, [1, 2, 4, 8, 16])])
def test_default_k_is_one_the_group_size_and_powers_of_two_between(size, ks):
    assert default_ks(groups(3, size, parsed=True)) == ks


def test_eval_without_k_reports_every_default_k(tmp_path, capsys):
    src = tmp_path / "g.jsonl"
    src.write_bytes(b"".join(orjson.dumps(g) + b"\n" for g in groups(5, 8, parsed=True)))
    out = tmp_path / "m.json"
    assert main(["eval", str(src), "--json", str(out), "-q"]) == 0
    m = orjson.loads(out.read_bytes())
    assert [k for k in m if k.startswith("pass@")] == ["pass@1", "pass@2", "pass@4", "pass@8"]
    assert all(isinstance(m[f"maj@{k}"], float) for k in (1, 2, 4, 8))


def test_maj_at_k_is_absent_not_zero_without_parsed_answers(tmp_path, capsys):
    m = compute_metrics(groups(4, 4, parsed=False), [1, 4])
    assert m["maj@1"] is None and m["maj@4"] is None
    assert m["pass@1"] > 0  # the grading itself is there
    src = tmp_path / "g.jsonl"
    src.write_bytes(b"".join(orjson.dumps(g) + b"\n" for g in groups(4, 4, parsed=False)))
    assert main(["eval", str(src), "-q"]) == 0
    text = capsys.readouterr().out
    assert "maj@4: n/a" in text and "maj@4: 0.0000" not in text


def test_a_group_that_cannot_vote_counts_as_wrong_when_others_can():
    gs = groups(2, 4, parsed=True)
    for r in gs[1]["responses"]:
        r.pop("parsed")
    both = compute_metrics(gs, [4])
    alone = compute_metrics(gs[:1], [4])
    assert both["maj@4"] == pytest.approx(alone["maj@4"] / 2)


def test_eval_help_states_each_default_once():
    sub = next(a for a in build_parser()._subparsers._group_actions)  # the COMMAND subparsers
    text = sub.choices["eval"].format_help()
    assert "(default: None)" not in text
    assert text.count("(default:") >= 5
