"""``gradeset dedup IN --out OUT``: drop repeated prompts (exact, near-duplicate or both).

The first occurrence is kept. Removed groups go to ``OUT.duplicates.jsonl`` (or
``--removed``) with ``dedup: {kind, duplicate_of, similarity}`` so nothing is lost.
"""

from __future__ import annotations

import argparse

from gradeset.commands._common import Job, add_input, add_output, add_quiet, progress, write_rows


class AsideWriter:
    """A JSONL file for removed rows that only appears when something is removed."""

    def __init__(self, path: str):
        self.path = path
        self.count = 0
        self._w = None

    def write(self, rows: list[dict]) -> None:
        if self._w is None:
            from gradeset.io import open_writer

            self._w = open_writer(self.path, "jsonl")
        self._w.write(rows)
        self.count += len(rows)

    def __enter__(self):
        from pathlib import Path

        Path(self.path).unlink(missing_ok=True)  # a stale file from an earlier run would mislead
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._w is not None:
            self._w.__exit__(exc_type, exc, tb)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dedup", help="remove duplicate prompts (exact and MinHash near-duplicates)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input(p)
    add_output(p)
    p.add_argument("--method", choices=["exact", "near", "both"], default="exact",
                   help="exact: normalised text; near: MinHash/LSH (also catches exact); both: same as near")
    p.add_argument("--key", choices=["prompt", "prompt+answer"], default="prompt",
                   help="what must repeat for a duplicate (prompt+answer keeps same question, other answer)")
    p.add_argument("--threshold", type=float, default=0.85, help="near: estimated Jaccard similarity to drop")
    p.add_argument("--num-perm", type=int, default=128, help="near: MinHash permutations")
    p.add_argument("--ngram", type=int, default=3, help="near: word n-gram shingle size")
    p.add_argument("--ignore-numbers", action="store_true",
                   help="near: let prompts with different numbers match (off: '180 miles' != '240 miles')")
    p.add_argument("--removed", help="where removed groups go (default OUT.duplicates.jsonl)")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from gradeset.shape.dedup import Deduper

    d = Deduper(args.method, key=args.key, threshold=args.threshold, num_perm=args.num_perm, ngram=args.ngram,
                numbers_must_match=not args.ignore_numbers)
    removed_path = args.removed or str(args.out).rstrip("/") + ".duplicates.jsonl"
    with Job(args.out, strict=args.strict, name="dedup") as job, AsideWriter(removed_path) as aside:
        def kept(groups):
            for g in groups:
                why = d.check(g)
                if why is None:
                    yield g
                else:
                    job.skip(f"{why['kind']} duplicate")
                    aside.write([dict(g, dedup=why)])

        groups = progress(job.groups(args.input, args.layout, args.split), desc="dedup", unit="group",
                          disable=args.quiet)
        write_rows(job, args.out, kept(groups), fmt=args.out_format)
        if aside.count:
            job.note(f"{aside.count} removed groups written to {removed_path}")
    return 0
