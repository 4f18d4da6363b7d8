"""``gradeset convert IN OUT [--to LAYOUT]``: any readable layout/file to any writable one.

Reads through the canonical group, so every pair of layouts converts the same way;
bad rows go to ``OUT.rejects.jsonl`` and the summary counts add up (read = written +
rejected, counted in groups; layouts that write several rows per group say so).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gradeset.commands import _blocks_convert
from gradeset.commands._common import Job, add_quiet, progress, write_rows
from gradeset.commands._handoff import Handoff
from gradeset.errors import GradesetError


def add_convert_args(p: argparse.ArgumentParser, to_required: bool = False) -> None:
    p.add_argument("input", help="input file or folder (JSONL, JSON, Parquet, CSV, HF save_to_disk, shards)")
    p.add_argument("output", help="output file or folder; the file format comes from the extension "
                                  "(.jsonl, .parquet, .csv, .hf folder, name/ for shards)")
    p.add_argument("--to", dest="to_layout", required=to_required, default=None if to_required else "group",
                   help="output layout: group (default), trl-sft, trl-dpo, trl-prompt, trl-kto, seed000, seed002, "
                        "seed003, gsm8k, verl, sharegpt, alpaca, openrlhf, generations")
    p.add_argument("--from", "--layout", dest="from_layout", help="input layout (detected from the fields when omitted)")
    p.add_argument("--split", help="split of a Hugging Face DatasetDict folder")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line (exit 2)")
    p.add_argument("--format", dest="out_format",
                   help="output file format when the extension does not say: jsonl, parquet, csv, hf, shards, "
                        "shards-parquet")
    p.add_argument("--conversational", action="store_true",
                   help="TRL layouts: write prompts/completions as chat messages")
    p.add_argument("--system-prompt", help="add this system prompt to every prompt")
    p.add_argument("--messages", action=argparse.BooleanOptionalAction, default=None,
                   help="trl-sft: write a `messages` transcript (default: when the prompt is a chat)")
    p.add_argument("--data-source", help="verl / openrlhf: the data_source (datasource) to write on every row "
                   "(default: a name verl's default reward knows when the task maps to one, else the source)")
    add_quiet(p)


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert between layouts and file formats",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_convert_args(p)
    p.set_defaults(func=run)


def convert(args: argparse.Namespace, name: str = "convert") -> int:
    from gradeset.formats import export_groups, get_layout

    layout = get_layout(args.to_layout)
    if layout.from_groups is None:
        raise GradesetError(f"layout {layout.name!r} can be read but not written")
    if args.from_layout:
        get_layout(args.from_layout)
    if Path(args.input).resolve() == Path(args.output).resolve():
        raise GradesetError(f"{args.output}: the output would overwrite the input; choose another path")
    opts: dict = {"conversational": args.conversational, "system_prompt": args.system_prompt,
                  "data_source": getattr(args, "data_source", None)}
    if getattr(args, "messages", None) is not None:
        opts["messages"] = args.messages
    with Job(args.output, strict=args.strict, name=name) as job:
        if name == "convert" and _blocks_convert.applies(args.input, args.output, args.out_format, layout.name,
                                                         args.from_layout):
            _blocks_convert.convert_blocks(job, args.input, args.output, args.out_format, args.from_layout,
                                           quiet=getattr(args, "quiet", False), name=name)
            return 0
        exported = 0

        def counted(groups):
            nonlocal exported
            for g in groups:
                exported += 1
                yield g

        def guarded(rows):
            yield from rows
            if exported == 0 and job.rejected:
                as_what = args.from_layout or "the detected layout"
                raise GradesetError(f"{args.input}: no row could be read as {as_what}; nothing written "
                                    f"(reasons in {job.rejects.path})")

        from gradeset.io.card import Provenance, write_export_card

        seen = Provenance()
        groups = progress(job.groups(args.input, args.from_layout, args.split), desc=name, unit="group",
                          disable=getattr(args, "quiet", False))
        if name == "export":  # only the export's dataset card reads it; it cost half of a conversion
            groups = seen.observe(groups)
        handoff = Handoff(layout.name, args.output, args.conversational)
        rows = export_groups(counted(groups), layout.name, **opts)
        rows_written = write_rows(job, args.output, handoff.watch(guarded(rows)), fmt=args.out_format)
        handoff.finish(job.note)
        if name == "export":  # a dataset card (README.md) beside what an export wrote
            card = write_export_card(args.output, args.input, layout=layout.name, rows=rows_written,
                                     read=job.read, rejected=job.rejected, provenance=seen)
            if card is not None:
                job.note(f"dataset card: {card}")
        if job.written != exported:
            job.note(f"wrote {job.written} {layout.name} rows for {exported} groups")
            job.written = exported
    return 0


def run(args: argparse.Namespace) -> int:
    return convert(args)
