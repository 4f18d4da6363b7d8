"""``gradeset augment``: more prompts from the ones you have (seed 001).

  gradeset augment paraphrase IN --out OUT --backend B --model M [--per-prompt K]
      each prompt rewritten by the model; the gold answer is kept, so by default a
      paraphrase that loses or changes a number is rejected (--no-check-numbers)
  gradeset augment graded-versions IN --out OUT --backend B --model M
      seed 000's option 2: for each prompt with the author's answer (``reference``, or
      the single response of an SFT example) the model writes a good (0.6) and a poor
      (0.2) answer; the author's is best (1.0); all three become the group's responses
  gradeset augment arithmetic-variants IN --out OUT [--harder bigger-numbers,more-steps]
                                                    [--easier smaller-numbers]
      seed 002 arithmetic questions rebuilt with bigger/smaller numbers or one more
      step; answers recomputed exactly and checked by solving the new question

New groups carry ``original_id`` and ``augmentation``; ``--keep-original`` writes the
originals too. Rejected requests and unusable inputs go to ``OUT.rejects.jsonl``.
"""

from __future__ import annotations

import argparse
import sys

from gradeset.commands._common import Job, add_quiet, progress, write_rows
from gradeset.errors import GradesetError


def register(sub) -> None:
    from gradeset.sources.llm import add_backend_args

    p = sub.add_parser("augment", help="paraphrase prompts; arithmetic difficulty variants; graded versions",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="augment_kind", metavar="KIND")

    a = sp.add_parser("paraphrase", help="paraphrase each prompt with a model, keeping the answer")
    _common(a)
    a.add_argument("--per-prompt", type=int, default=1, help="paraphrases asked per prompt (default 1)")
    a.add_argument("--no-check-numbers", action="store_true",
                   help="accept paraphrases whose numbers differ from the original's")
    a.add_argument("--template", help="request text with {prompt} (default: keep numbers, do not solve)")
    add_backend_args(a, temperature=0.8, max_tokens=512)
    a.set_defaults(func=run_paraphrase)

    v = sp.add_parser("arithmetic-variants", help="harder/easier arithmetic questions, answers recomputed")
    _common(v)
    v.add_argument("--harder", default="bigger-numbers,more-steps",
                   help="variant kinds, comma-separated: bigger-numbers, more-steps, or both joined by + "
                        "(default: bigger-numbers,more-steps)")
    v.add_argument("--easier", default="", help="easier kinds: smaller-numbers")
    v.add_argument("--seed", type=int, default=0, help="seed of the new numbers (default 0)")
    v.set_defaults(func=run_variants)
    gv = sp.add_parser("graded-versions",
                       help="seed 000's best/good/poor versions for prompts with an author's answer")
    _common(gv)
    gv.add_argument("--scores", default="1.0,0.6,0.2", help="scores of best,good,poor (default 1.0,0.6,0.2)")
    add_backend_args(gv, temperature=0.7, max_tokens=1024)
    gv.set_defaults(func=run_graded_versions)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="groups or any readable layout (JSONL, Parquet, CSV, ...)")
    p.add_argument("--out", "-o", required=True, help="output groups")
    p.add_argument("--format", dest="out_format", help="output file format (default from extension)")
    p.add_argument("--layout", help="input layout (detected when omitted)")
    p.add_argument("--split", help="split of a Hugging Face DatasetDict folder")
    p.add_argument("--keep-original", action="store_true", help="write the original groups too")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line (exit 2)")
    add_quiet(p)


def run_paraphrase(args) -> int:
    from gradeset.io import Reject
    from gradeset.sources.augment import PARAPHRASE_TEMPLATE, paraphrase_groups
    from gradeset.sources.llm import complete_from_args

    if args.per_prompt < 1:
        raise GradesetError("--per-prompt must be at least 1")
    template = args.template or PARAPHRASE_TEMPLATE
    if "{prompt}" not in template:
        raise GradesetError("--template must contain {prompt}")
    complete = complete_from_args(args, args.out)
    made = failed = 0
    with Job(args.out, strict=args.strict, name="augment paraphrase") as job:
        def out():
            nonlocal made, failed
            groups = job.groups(args.input, args.layout, args.split)
            results = paraphrase_groups(progress(groups, desc="paraphrase", unit="prompt", disable=args.quiet),
                                        complete, per_prompt=args.per_prompt,
                                        check_numbers=not args.no_check_numbers, template=template,
                                        batch_size=2048)
            last_id = None
            for original, new, reason, raw in results:
                if args.keep_original and original.get("id") != last_id:
                    last_id = original.get("id")
                    yield original
                if new is None:
                    failed += 1
                    job.rejects.add(Reject(args.input, None, f"group {original.get('id')}: {reason}", raw))
                    continue
                made += 1
                yield new

        write_rows(job, args.out, out(), fmt=args.out_format)
    print(f"augment paraphrase: asked {made + failed} paraphrase(s) = {made} written + {failed} rejected "
          "(model replies that failed the checks are in the reject file)", file=sys.stderr)
    return 0


def run_variants(args) -> int:
    from gradeset.io import Reject
    from gradeset.sources.augment import EASIER_KINDS, HARDER_KINDS, arithmetic_variants

    harder = [k.strip() for k in args.harder.split(",") if k.strip()]
    easier = [k.strip() for k in args.easier.split(",") if k.strip()]
    for k in harder:
        if any(part not in HARDER_KINDS for part in k.split("+")):
            raise GradesetError(f"--harder: unknown kind {k!r}; known: {', '.join(HARDER_KINDS)}")
    for k in easier:
        if any(part not in EASIER_KINDS for part in k.split("+")):
            raise GradesetError(f"--easier: unknown kind {k!r}; known: {', '.join(EASIER_KINDS)}")
    kinds = harder + easier
    if not kinds:
        raise GradesetError("no variant kinds: give --harder and/or --easier")
    made = 0
    with Job(args.out, strict=args.strict, name="augment arithmetic-variants") as job:
        def out():
            nonlocal made
            for g in progress(job.groups(args.input, args.layout, args.split), desc="variants",
                              unit="prompt", disable=args.quiet):
                variants, failed, bad = arithmetic_variants(g, kinds, seed=args.seed)
                if bad is not None:
                    from gradeset.io.writers import dumps

                    job.rejects.add(Reject(args.input, None, f"group {g.get('id')}: {bad}", dumps(g)))
                    continue
                for f in failed:
                    job.skip(f"variant not possible ({f.split(':')[0]})")
                if args.keep_original:
                    if variants:
                        g.setdefault("difficulty", "medium")
                    yield g
                made += len(variants)
                yield from variants

        write_rows(job, args.out, out(), fmt=args.out_format)
    print(f"augment arithmetic-variants: {made} variant(s) of {len(kinds)} kind(s): {', '.join(kinds)}",
          file=sys.stderr)
    return 0


def run_graded_versions(args) -> int:
    from gradeset.commands.prompts_from_docs import _scores
    from gradeset.io import Reject
    from gradeset.records import response_text
    from gradeset.sources.docs_prompts import graded_for_groups, graded_group
    from gradeset.sources.llm import complete_from_args

    scores = _scores(args.scores)
    complete = complete_from_args(args, args.out)
    made = failed = 0
    with Job(args.out, strict=args.strict, name="augment graded-versions") as job:
        def out():
            nonlocal made, failed
            pending: list[tuple[dict, dict]] = []

            def flush():
                nonlocal made, failed
                for _p, g, versions, reason, raw in graded_for_groups(pending, complete):
                    if versions is None:
                        failed += 1
                        job.rejects.add(Reject(args.input, None, f"group {g.get('id')}: {reason}",
                                               raw if isinstance(raw, str) else None))
                        continue
                    made += 1
                    yield graded_group(g, versions, args.model, scores)

            for g in progress(job.groups(args.input, args.layout, args.split), desc="graded-versions",
                              unit="prompt", disable=args.quiet):
                best = g.get("reference")
                if not best and len(g.get("responses") or []) == 1:
                    best = response_text(g["responses"][0])
                if not isinstance(best, str) or not best.strip():
                    job.rejects.add(Reject(args.input, None, f"group {g.get('id')}: no author's answer "
                                                             "(a reference or a single response)"))
                    continue
                g = {**g, "reference": best.strip()}
                pending.append(({"text": g["reference"]}, g))
                if len(pending) >= 256:
                    yield from flush()
                    pending = []
            yield from flush()

        write_rows(job, args.out, out(), fmt=args.out_format)
    print(f"augment graded-versions: {made} group(s) with three versions, {failed} model repl(ies) rejected",
          file=sys.stderr)
    return 0
