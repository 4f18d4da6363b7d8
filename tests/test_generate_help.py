"""Every option of `gradeset generate` says what it does (issue 16 item 6, the generate part)."""

from __future__ import annotations

import argparse

from gradeset.cli import build_parser


def test_every_generate_option_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    gen = sub.choices["generate"]
    missing = [a.option_strings[0] for a in gen._actions
               if a.option_strings and a.help in (None, "") and a.dest != "help"]
    assert missing == []
    names = {s for a in gen._actions for s in a.option_strings}
    for flag in ("--backend", "--temperature", "--top-p", "--max-tokens", "--seed", "--retries", "--max-failed",
                 "--continuation", "--tokenizer", "--price-per-mtok", "--max-cost", "--max-total-tokens"):
        assert flag in names
