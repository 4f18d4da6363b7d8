"""``gradeset generate IN --out OUT --backend B --model M``: sample N completions per prompt.

Re-running the same command resumes: finished samples live in the request cache beside
OUT (``OUT.gencache.jsonl``) and are not asked for again.

Exit codes: 0 done; 1 the run did not finish its job (more than --max-failed of the
samples failed, or --max-cost / --max-total-tokens stopped it; OUT holds what finished
and a re-run resumes); 2 bad usage (no --base-url and no API key, every request failed:
a wrong URL, model name or key, or a server that is not up; unreadable input).
"""

from __future__ import annotations

import argparse
import json
import sys

from gradeset.commands._common import Job, add_input, add_output, add_quiet
from gradeset.errors import GradesetError


def register(sub) -> None:
    p = sub.add_parser("generate", help="sample N completions per prompt from a model (resumable)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input(p)
    add_output(p)
    p.add_argument("--backend", "-b", default="openai", choices=["openai", "anthropic", "vllm", "transformers"],
                   help="openai: any OpenAI-compatible server (vLLM, SGLang, transformers serve, hosted APIs; "
                        "give --base-url); anthropic: Messages API; vllm / transformers: a local model "
                        "(default openai)")
    p.add_argument("--model", "-m", required=True, help="model name (HTTP) or local folder / hub id")
    p.add_argument("-n", type=int, default=16, help="samples per prompt (default 16)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    p.add_argument("--api-key-env", help="environment variable holding the API key "
                   "(default OPENAI_API_KEY / ANTHROPIC_API_KEY)")
    p.add_argument("--endpoint", choices=["chat", "completions"], default="chat",
                   help="chat: /chat/completions with messages; completions: raw text prompts")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature; 0 = greedy (default 1.0)")
    p.add_argument("--top-p", type=float, help="nucleus sampling: keep the tokens of this top probability mass "
                   "(default: the server's)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens (default: the server's)")
    p.add_argument("--max-tokens", type=int, default=2048,
                   help="new tokens per completion at most; with --two-step, for both stages together "
                        "(default 2048)")
    p.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    p.add_argument("--seed", type=int, help="run seed: each request gets a seed derived from it and the sample, "
                   "stable across resumes (servers that honour seeds then repeat their answers)")
    sp = p.add_mutually_exclusive_group()
    sp.add_argument("--system-prompt", help="system prompt for every request")
    sp.add_argument("--system-prompt-file", help="read the system prompt from a file")
    p.add_argument("--two-step", action="store_true",
                   help="budget forcing: stage 1 gets max-tokens - stage2-tokens; without the think-end "
                        "marker, append it and continue for stage2-tokens")
    p.add_argument("--stage2-tokens", type=int, default=512,
                   help="two-step: tokens for stage 2, the answer after the forced end of thinking (default 512)")
    p.add_argument("--think-end", default="</think>", help="end-of-thinking marker (default </think>)")
    p.add_argument("--continuation", choices=["auto", "chat", "completions"], default="auto",
                   help="two-step stage 2 on OpenAI-compatible servers: chat = vLLM's continue_final_message; "
                        "completions = the model's chat template + partial answer to /v1/completions (any "
                        "server; needs the tokenizer); auto = chat, switching to completions when the server "
                        "refuses (default auto)")
    p.add_argument("--tokenizer", help="tokenizer folder for rendering the chat template locally "
                   "(--continuation completions; default: --model when it is a folder)")
    p.add_argument("--mcq-options", choices=["auto", "inline", "newlines", "none"], default="auto",
                   help="append a group's options/choices to the question (default auto)")
    p.add_argument("--chat-template-kwargs", help='JSON for the chat template, e.g. \'{"enable_thinking": true}\'')
    p.add_argument("--concurrency", "-c", type=int, default=64, help="requests in flight at most (default 64)")
    p.add_argument("--rpm", type=float, help="requests per minute at most")
    p.add_argument("--tpm", type=float, help="tokens per minute at most (prompt + max tokens reserved)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request (default 600)")
    p.add_argument("--retries", type=int, default=6,
                   help="retries per request on 429, 5xx, timeouts and dropped connections, with exponential "
                        "back-off (default 6); other refusals (400, 401, 404, ...) are not retried")
    p.add_argument("--max-failed", type=float, default=0.1, metavar="SHARE",
                   help="exit 1 when more than this share of the samples tried failed (default 0.1); a run "
                        "where every request failed always exits non-zero")
    c = p.add_argument_group("tokens and cost")
    c.add_argument("--price-per-mtok", metavar="in=P,out=P|FILE",
                   help="prices per million prompt (in) and completion (out) tokens, or a YAML file "
                        "({in: P, out: P} or a table NAME: {in: P, out: P} by model); shows the estimated cost")
    c.add_argument("--max-cost", type=float, help="stop sending when the estimated cost of this invocation "
                   "reaches this (needs --price-per-mtok); exit 1, finished work kept, re-run to continue")
    c.add_argument("--max-total-tokens", type=int, help="stop sending when this invocation has used this many "
                   "prompt + completion tokens; exit 1, finished work kept, re-run to continue")
    p.add_argument("--no-n", dest="use_n", action="store_const", const=False,
                   help="never ask for n samples in one request")
    p.add_argument("--batch-size", type=int, default=64, help="local backends: sequences per generate call")
    p.add_argument("--device", help="transformers: cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", help="local backends: bfloat16, float16, float32")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")
    p.add_argument("--extra-body", help="JSON object merged into every request body")
    p.add_argument("--cache", help="request cache file (default OUT.gencache.jsonl)")
    p.add_argument("--preview", type=int, metavar="K",
                   help="print the first K prompts exactly as the model will get them and exit (sends nothing)")
    add_quiet(p)
    p.set_defaults(func=run)


def _json_arg(value: str | None, flag: str) -> dict | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise GradesetError(f"{flag}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise GradesetError(f"{flag}: expected a JSON object")
    return data


def config_from_args(args):
    from pydantic import ValidationError

    from gradeset.generate import GenerateConfig

    system = args.system_prompt
    if args.system_prompt_file:
        try:
            with open(args.system_prompt_file, encoding="utf-8") as fh:
                system = fh.read().strip()
        except OSError as exc:
            raise GradesetError(f"{args.system_prompt_file}: {exc.strerror}") from exc
    params = dict(
        backend=args.backend, model=args.model, base_url=args.base_url, api_key_env=args.api_key_env,
        endpoint=args.endpoint, n=args.n, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
        max_tokens=args.max_tokens, stop=args.stop, seed=args.seed, system_prompt=system,
        two_step=args.two_step, stage2_tokens=args.stage2_tokens, think_end=args.think_end,
        mcq_options=args.mcq_options, concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm,
        timeout=args.timeout, retries=args.retries, use_n=args.use_n, batch_size=args.batch_size,
        device=args.device, dtype=args.dtype, tensor_parallel_size=args.tensor_parallel_size,
        extra_body=_json_arg(args.extra_body, "--extra-body"),
        chat_template_kwargs=_json_arg(args.chat_template_kwargs, "--chat-template-kwargs"),
        continuation=args.continuation, tokenizer=args.tokenizer, max_failed=args.max_failed,
        max_cost=args.max_cost, max_total_tokens=args.max_total_tokens,
    )
    if args.price_per_mtok:
        from gradeset.generate.cost import parse_prices

        prices = parse_prices(args.price_per_mtok, args.model)
        params.update(price_in_per_mtok=prices.input, price_out_per_mtok=prices.output)
    try:
        return GenerateConfig(**params)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
        raise GradesetError(f"bad generation options: {msgs}") from exc


def run(args) -> int:
    from gradeset.generate import RequestCache, Stats, default_cache_path
    from gradeset.generate.cost import totals_line
    from gradeset.generate.engine import Engine
    from gradeset.generate.outcome import (
        BudgetExhausted,
        check_credentials,
        failure_verdict,
    )
    from gradeset.io import open_writer, output_format

    cfg = config_from_args(args)
    if not args.preview:
        check_credentials(cfg)
    cache_path = args.cache or default_cache_path(args.out)
    stats = Stats()
    with Job(args.out, strict=args.strict, name="generate") as job:
        groups = list(job.groups(args.input, args.layout, args.split))
        if not groups:
            raise GradesetError(f"{args.input}: no prompts to generate for")
        if args.preview:
            _preview(groups[:args.preview], cfg)
            return 0
        # Chunks bound memory (finished groups are written and dropped) while keeping
        # enough requests queued that the concurrency cap stays full.
        chunk = max(2048, cfg.concurrency * 16)
        with RequestCache(cache_path) as cache:
            engine = Engine(cfg, cache, progress=not args.quiet, stats=stats)
            engine.start_progress(engine.pending(groups))
            try:
                opts = {}
                if output_format(args.out, args.out_format).startswith("shards"):
                    # seed 003 writes shard folders; the manifest records how they were made
                    opts["parameters"] = {"generate": cfg.model_dump(exclude={"extra_headers"})}
                with open_writer(args.out, args.out_format, **opts) as writer:
                    for start in range(0, len(groups), chunk):
                        out = engine.run(groups[start:start + chunk])
                        writer.write(out)
                        job.written += len(out)
                        groups[start:start + chunk] = [None] * len(out)
            except KeyboardInterrupt:
                engine.close()
                print(f"generate: stopped; {stats.generated + stats.cached} samples are kept in {cache_path}",
                      file=sys.stderr)
                raise
            finally:
                engine.close()
        job.note(stats.summary())
        job.note(totals_line(stats.prompt_tokens, stats.completion_tokens,
                             stats.cost if engine.prices is not None else None))
        if stats.failed:
            job.note(f"{stats.failed} samples failed (kept with failed: true and meta.error; 429/5xx/timeouts "
                     f"after {cfg.retries} retries); re-run the same command to retry just those")
    if engine.stop_reason is not None:
        used = totals_line(stats.prompt_tokens, stats.completion_tokens,
                           stats.cost if engine.prices is not None else None)
        raise BudgetExhausted(f"generate: stopped: {engine.stop_reason} (this run, with the requests that were in "
                              f"flight: {used}); {stats.generated} samples generated in this run are kept in "
                              f"{cache_path} and {args.out}; re-run the same command to continue (each "
                              "invocation gets the budget anew)")
    verdict = failure_verdict(stats.generated, stats.failed, cfg.max_failed, stats.errors_by_message)
    if verdict is not None:
        raise verdict
    return 0


def _preview(groups: list[dict], cfg) -> None:
    """Show rendered prompts: chat-templated text for local models, the messages otherwise."""
    from gradeset.generate.prompts import apply_chat_template, build_prompt

    tok = None
    if cfg.backend in ("transformers", "vllm"):
        from gradeset.errors import require

        transformers = require("transformers", "transformers", "rendering the chat template")
        try:
            tok = transformers.AutoTokenizer.from_pretrained(cfg.model)
        except (OSError, ValueError) as exc:
            raise GradesetError(f"cannot load the tokenizer of {cfg.model!r}: {exc}") from exc
    for i, g in enumerate(groups):
        prompt = build_prompt(g, cfg.system_prompt, cfg.mcq_options)
        print(f"--- prompt {i} (id {g.get('id')})")
        if tok is not None:
            print(apply_chat_template(tok, prompt, cfg.chat_template_kwargs))
        elif cfg.endpoint == "completions":
            print(prompt.plain_text())
        else:
            print(json.dumps(prompt.messages, ensure_ascii=False, indent=2))
