"""Words a user reads: help that means one thing per flag, inspect that does not contradict itself,
short documents kept, a convert error that points to the command that can read the file."""

from __future__ import annotations

import argparse

import orjson

from gradeset.cli import build_parser, main


def subparsers() -> dict[str, argparse.ArgumentParser]:
    top = build_parser()
    action = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, p in action.choices.items():
        kinds = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if kinds:
            out.update({f"{name} {k}": sp for k, sp in kinds[0].choices.items()})
        else:
            out[name] = p
    return out


def test_top_level_help_speaks_of_tasks_not_seed_numbers():
    text = build_parser().format_help()
    assert "seed 00" not in text


def test_each_short_flag_and_max_tokens_mean_one_thing():
    meanings: dict[str, set[str]] = {}
    max_tokens_cmds = []
    for name, p in subparsers().items():
        for a in p._actions:
            if a.help == argparse.SUPPRESS:
                continue
            for opt in a.option_strings:
                if len(opt) == 2 and opt not in ("-h", "-o", "-q", "-n"):
                    meanings.setdefault(opt, set()).add(a.dest)
            if "--max-tokens" in a.option_strings:
                max_tokens_cmds.append((name, a.dest, a.option_strings))
    assert all(len(d) == 1 for d in meanings.values()), meanings
    # --max-tokens is the generation budget wherever it is advertised first; elsewhere an old alias
    for name, _, opts in max_tokens_cmds:
        assert opts[0] == "--max-tokens" or name in ("batch", "extract"), (name, opts)


def test_inspect_of_preference_pairs_does_not_call_them_graded_and_ungraded(tmp_path, capsys):
    p = tmp_path / "dpo.jsonl"
    p.write_bytes(b"".join(orjson.dumps({"prompt": f"{i}+1=?", "chosen": str(i + 1), "rejected": "no"}) + b"\n"
                           for i in range(5)))
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    assert "ungraded" not in out
    assert "graded: " not in out.replace("scored: ", "")


def test_extract_keeps_a_short_note(tmp_path, capsys):
    note = tmp_path / "note.md"
    note.write_text("# Todo\n\nCall Ann.\n")
    out = tmp_path / "p.jsonl"
    assert main(["extract", str(note), "--out", str(out)]) == 0
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert rows and "Call Ann." in " ".join(r["text"] for r in rows)
    assert "1 extracted + 0 unreadable" in capsys.readouterr().err


def test_convert_of_an_unknown_table_points_to_load(tmp_path, capsys):
    src = tmp_path / "t.csv"
    src.write_text("Problem Text,Final\nWhat is 2+2?,4\n")
    assert main(["convert", str(src), str(tmp_path / "o.jsonl")]) == 2
    assert "gradeset load" in capsys.readouterr().err
