"""``gradeset eval``: accuracy, pass@k, maj@k, thinking/answer proportion over groups.

Graded groups are scored as they are. Ungraded responses are graded first (``--task``
or each group's ``task``). Prompt-only input, or any input with ``--backend/--model``,
is sampled first. Outputs follow seed 004 (``--out-dir D --stage S --run-id R`` ->
``D/debug/S_R.csv`` and ``S_R_metrics.txt``), plus ``--csv`` / ``--json`` anywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gradeset.commands._common import Job, add_input, add_quiet
from gradeset.errors import GradesetError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="accuracy, pass@k, maj@k, thinking/answer proportion; per-example CSV and metrics JSON",
        description="Score graded groups (or grade / generate first) and write seed 004's debug files.",
    )
    add_input(p)
    p.add_argument("--task", help="verifier for ungraded responses (default: each group's task field)")
    p.add_argument("--k", help="comma-separated k for pass@k and maj@k, e.g. 1,4,16 (default: 1, the group "
                              "size, and the powers of two between)")
    p.add_argument("--csv", help="per-example CSV (one row per response)")
    p.add_argument("--json", help="metrics JSON")
    p.add_argument("--txt", help="metrics text summary")
    p.add_argument("--out-dir", help="seed 004 layout: writes OUT_DIR/debug/STAGE_RUNID.csv and _metrics.txt/.json")
    p.add_argument("--stage", default="eval", help="stage name in the debug file names: base, sft, grpo ... "
                                                   "(default: eval)")
    p.add_argument("--run-id", help="run id in the debug file names (default: UTC time)")
    p.add_argument("--save-groups", help="also write the (generated and) graded groups here")
    p.add_argument("--regrade", action="store_true", help="grade every response again, even graded ones")
    p.add_argument("--workers", type=int, default=1, help="grading worker processes (default: 1)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per verification (default: 5)")
    p.add_argument("--limit", type=int, help="evaluate only the first N groups")
    g = p.add_argument_group("generation (prompt-only input, or to re-sample with a model)")
    g.add_argument("--backend", help="openai, anthropic, vllm, transformers")
    g.add_argument("--model", help="model name or local folder")
    g.add_argument("--base-url", help="OpenAI-compatible server URL")
    g.add_argument("-n", type=int, help="samples per prompt (default: the largest --k, else 1)")
    g.add_argument("--temperature", type=float, help="sampling temperature (default: 0 when n=1, else 1.0)")
    g.add_argument("--top-p", type=float, help="nucleus sampling (default: the backend's)")
    g.add_argument("--max-tokens", type=int, default=1024,
                   help="most tokens to generate per completion (default: 1024)")
    g.add_argument("--system-prompt", help="system message sent with every prompt")
    g.add_argument("--concurrency", type=int, help="requests in flight (default: the backend's)")
    g.add_argument("--seed", type=int, help="sampling seed, where the backend supports one")
    add_quiet(p)
    p.set_defaults(func=run)


def _generate_config(args, n: int):
    from gradeset.generate import GenerateConfig

    opts = {"backend": args.backend, "model": args.model, "n": n, "max_tokens": args.max_tokens,
            "temperature": args.temperature if args.temperature is not None else (0.0 if n == 1 else 1.0)}
    for name in ("base_url", "top_p", "system_prompt", "concurrency", "seed"):
        value = getattr(args, name)
        if value is not None:
            opts[name] = value
    try:
        return GenerateConfig(**opts)
    except Exception as exc:  # pydantic validation error -> one clear line
        raise GradesetError(f"bad generation options: {exc}") from exc


def run(args) -> int:
    from gradeset.evaluate import evaluate, metrics_text, parse_ks, save

    try:
        ks = parse_ks(args.k) if args.k else None
    except ValueError as exc:
        raise GradesetError(str(exc)) from exc
    if bool(args.backend) != bool(args.model):
        raise GradesetError("--backend and --model go together")
    if not (args.csv or args.json or args.txt or args.out_dir or args.save_groups):
        out_hint = None
    else:
        out_hint = args.save_groups or args.json or args.csv or args.txt or str(Path(args.out_dir) / "debug" / "eval")
    with Job(out_hint, strict=args.strict, name="eval") as job:
        groups = list(job.groups(args.input, args.layout, split=args.split, limit=args.limit))
        if not groups:
            raise GradesetError(f"{args.input}: no groups to evaluate")
        cfg = None
        if args.backend:
            cfg = _generate_config(args, args.n or (max(ks) if ks else 1))
        elif all(not g.get("responses") for g in groups):
            raise GradesetError(
                f"{args.input}: the groups have no responses; pass --backend and --model to sample them first"
            )
        untrusted: list[str] = []

        def on_untrusted(i: int, g: dict, why: str) -> None:
            gid = g.get("id")
            untrusted.append(f"{args.input}: group {i + 1}" + (f" (id {gid})" if gid is not None else "")
                             + f" not graded: {why}")

        groups, metrics = evaluate(groups, ks=ks, task=args.task, generate_cfg=cfg, workers=args.workers,
                                   timeout=args.timeout, regrade=args.regrade, on_untrusted=on_untrusted)
        for line in untrusted[:5]:
            print(f"gradeset: warning: {line}", file=sys.stderr)
        if untrusted:
            print(f"gradeset: warning: {len(untrusted)} group(s) left ungraded because their task field names "
                  "no registered verifier; pass --task to choose one", file=sys.stderr)
        header = {"input": args.input, "task": args.task}
        if cfg is not None:
            header.update({"model": args.model, "backend": args.backend, "n": cfg.n,
                           "temperature": cfg.temperature})
        files = save(groups, metrics, out_dir=args.out_dir, stage=args.stage, run_id=args.run_id,
                     csv_path=args.csv, json_path=args.json, txt_path=args.txt, header=header)
        if args.save_groups:
            from gradeset.commands._common import write_rows

            write_rows(job, args.save_groups, groups)
        else:
            job.written = len(groups)
        sys.stdout.write(metrics_text(metrics))
        for kind, path in files.items():
            job.note(f"{kind} written to {path}")
        if args.save_groups:
            job.note(f"graded groups written to {args.save_groups}")
    if metrics.get("n_graded") == 0:
        print("gradeset: warning: no response was graded; metrics are empty", file=sys.stderr)
    return 0
