"""TRL's dataset layouts, standard (strings) and conversational (chat messages).

* ``trl-sft``: ``messages`` or ``prompt`` + ``completion``;
* ``trl-dpo``: ``prompt`` / ``chosen`` / ``rejected``, the prompt may be implicit (inside
  chosen and rejected, as TRL's ``extract_prompt`` handles it): we take the common prefix;
* ``trl-prompt``: ``prompt`` plus reward columns (``answer``, ``task``, ``solution``...) for
  GRPO / GSPO / Dr. GRPO / RLOO, which need no completions;
* ``trl-kto``: ``prompt`` / ``completion`` / ``label``.

A preference pair is a group whose responses are ``[chosen, rejected]``; the scores come
from ``score_chosen``/``score_rejected`` when the row has them, else 1.0 and 0.0, and the
exporter always writes them back (so every row has the same columns, as Parquet needs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gradeset.formats._util import (
    ExportError,
    common_prefix,
    completion_text,
    completion_value,
    extras,
    finish,
    pass_through,
    prompt_messages,
    responses_of,
    single_response,
    solution_text,
    split_transcript,
    system_of,
    system_prompt_value,
)
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import is_messages, prompt_text


def _is_text_or_messages(v) -> bool:
    return isinstance(v, str) or is_messages(v)


def _bad_type(name: str, v) -> str:
    return f"{name}: expected a string or a list of chat messages, got {type(v).__name__}"


# ------------------------------------------------------------------------------ trl-sft

def _detect_sft(fields: frozenset[str], row: dict) -> int:
    if "messages" in fields and isinstance(row.get("messages"), list):
        return 80
    if {"prompt", "completion"} <= fields and "label" not in fields:
        return 85
    return 0


def sft_to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        if "messages" in row:
            msgs = row["messages"]
            if not is_messages(msgs):
                ctx.reject(loc, "messages: expected a non-empty list of {role, content} objects", row)
                continue
            prompt, tail = split_transcript(msgs)
            if not prompt:
                ctx.reject(loc, "messages: no user or system turn before the assistant reply", row)
                continue
            g = {"prompt": prompt, **pass_through(row, {"messages"})}
            g["responses"] = [{"text": completion_text(tail)}] if tail else []
            if not tail:
                ctx.note("trl-sft: some transcripts end without an assistant turn; imported as prompt-only")
            yield finish(g)
            continue
        missing = [k for k in ("prompt", "completion") if k not in row]
        if missing:
            ctx.reject(loc, f"{', '.join(missing)}: missing (trl-sft needs messages, or prompt + completion)", row)
            continue
        if not _is_text_or_messages(row["prompt"]):
            ctx.reject(loc, _bad_type("prompt", row["prompt"]), row)
            continue
        if not _is_text_or_messages(row["completion"]):
            ctx.reject(loc, _bad_type("completion", row["completion"]), row)
            continue
        g = {"prompt": row["prompt"], **pass_through(row, {"prompt", "completion"})}
        g["responses"] = [{"text": completion_text(row["completion"])}]
        yield finish(g)


def sft_from_groups(groups: Iterable[dict], conversational: bool = False, system_prompt: str | None = None,
                    messages: bool | None = None, **_) -> Iterator[dict]:
    """One row per group; chat prompts are written as ``messages`` unless ``messages=False``."""
    for g in groups:
        r = single_response(g, "trl-sft", "pick one per prompt with `gradeset build sft --strategy best`")
        if r is None:
            raise ExportError(f"group {g.get('id')}: has no response, and an SFT row needs one; generate "
                              "completions first, or export prompts with --to trl-prompt")
        as_messages = messages if messages is not None else is_messages(g.get("prompt"))
        recorded = system_of(g, r)
        if as_messages:
            used = bool(recorded and not system_prompt)
            row = {"messages": prompt_messages(g.get("prompt"), system_prompt or recorded)
                   + completion_value(r, True)}
        else:
            conv = conversational or is_messages(g.get("prompt")) or is_messages(r.get("text"))
            prompt, used = system_prompt_value(g.get("prompt"), conv, system_prompt, recorded)
            row = {"prompt": prompt, "completion": completion_value(r, conv)}
        row.update(extras(g, {"messages", "completion"} | ({"system_prompt"} if used else set())))
        yield row


# ------------------------------------------------------------------------------ trl-dpo

def _detect_dpo(fields: frozenset[str], row: dict) -> int:
    return 95 if {"chosen", "rejected"} <= fields else 0


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _score(v, default: float) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0:
        return float(v)
    return default


def _pair_response(completion, raw_score, default: float) -> dict:
    """A pair's response; a rating outside [0, 1] (UltraFeedback's 1-10) is kept in meta.rating
    and the score says only which side was preferred."""
    r = {"text": completion_text(completion), "score": _score(raw_score, default)}
    if _is_num(raw_score) and r["score"] != raw_score:
        r["meta"] = {"rating": raw_score}
    return r


def dpo_to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        missing = [k for k in ("chosen", "rejected") if k not in row]
        if missing:
            ctx.reject(loc, f"{', '.join(missing)}: missing (trl-dpo needs chosen and rejected)", row)
            continue
        chosen, rejected = row["chosen"], row["rejected"]
        bad = next((k for k in ("chosen", "rejected") if not _is_text_or_messages(row[k])), None)
        if bad:
            ctx.reject(loc, _bad_type(bad, row[bad]), row)
            continue
        if isinstance(chosen, str) != isinstance(rejected, str):
            ctx.reject(loc, "chosen and rejected must both be strings or both be message lists", row)
            continue
        g = pass_through(row, {"prompt", "chosen", "rejected", "score_chosen", "score_rejected"})
        prompt = row.get("prompt")
        # UltraFeedback-style rows carry a string prompt *and* full conversations in chosen and
        # rejected; as TRL's maybe_extract_prompt does, the prompt is then the shared prefix
        given = prompt if isinstance(prompt, str) and is_messages(chosen) and prompt.strip() else None
        if prompt is None or prompt == "" or prompt == [] or given is not None:
            prefix = common_prefix(chosen, rejected)
            if isinstance(prefix, list):
                # keep the assistant turns out of the prompt even when both start the same
                prefix, _ = split_transcript(prefix) if prefix and prefix[-1].get("role") == "assistant" \
                    else (prefix, [])
            if not prefix or (isinstance(prefix, str) and not prefix.strip()):
                ctx.reject(loc, "no prompt field, and chosen and rejected share no common prefix to take "
                           "the prompt from", row)
                continue
            chosen, rejected = chosen[len(prefix):], rejected[len(prefix):]
            prompt = prefix.rstrip() if isinstance(prefix, str) else prefix
            if isinstance(chosen, str):
                chosen, rejected = chosen.lstrip(), rejected.lstrip()
            g["prompt_rule"] = "common-prefix"
            if given is not None and isinstance(prompt, list) and given.strip() != prompt_text(prompt).strip():
                g["given_prompt"] = given  # kept when it says something the conversation does not
            ctx.note("trl-dpo: rows without a prompt: prompt = the common prefix of chosen and rejected "
                     "(as TRL's extract_prompt); recorded as prompt_rule=common-prefix")
        elif not _is_text_or_messages(prompt):
            ctx.reject(loc, _bad_type("prompt", prompt), row)
            continue
        g["prompt"] = prompt
        g["responses"] = [_pair_response(chosen, row.get("score_chosen"), 1.0),
                          _pair_response(rejected, row.get("score_rejected"), 0.0)]
        yield finish(g)


def dpo_from_groups(groups: Iterable[dict], conversational: bool = False, system_prompt: str | None = None,
                    **_) -> Iterator[dict]:
    """A row per 2-response group: chosen = the higher score (order kept on ties)."""
    for g in groups:
        rs = responses_of(g)
        if len(rs) != 2:
            raise ExportError(f"group {g.get('id')}: has {len(rs)} responses; a trl-dpo row is one pair. "
                              "Make pairs from graded groups with `gradeset build dpo` (it chooses the pairs, "
                              "skips ties and reports what it dropped)")
        c, r = rs
        sc, sr = c.get("score"), r.get("score")
        if isinstance(sc, int | float) and isinstance(sr, int | float) and sr > sc:
            c, r, sc, sr = r, c, sr, sc
        conv = conversational or is_messages(g.get("prompt")) or is_messages(c.get("text"))
        prompt, used = system_prompt_value(g.get("prompt"), conv, system_prompt, system_of(g, c))
        row = {"prompt": prompt, "chosen": completion_value(c, conv), "rejected": completion_value(r, conv)}
        row.update(extras(g, {"chosen", "rejected", "score_chosen", "score_rejected"}
                          | ({"system_prompt"} if used else set())))
        rc, rr = _rating(c), _rating(r)
        if rc is not None and rr is not None:  # the ratings the pair was imported with
            sc, sr = rc, rr
        if _is_num(sc) and _is_num(sr):
            row["score_chosen"], row["score_rejected"] = sc, sr
        yield row


def _rating(response: dict):
    meta = response.get("meta")
    return meta.get("rating") if isinstance(meta, dict) and _is_num(meta.get("rating")) else None


# ------------------------------------------------------------------------------ trl-prompt

def _detect_prompt(fields: frozenset[str], row: dict) -> int:
    if "prompt" in fields and not fields & {"completion", "responses", "chosen", "rejected", "completions",
                                             "messages"}:
        return 40
    return 0


def prompt_to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        if "prompt" not in row:
            ctx.reject(loc, "prompt: missing", row)
            continue
        if not _is_text_or_messages(row["prompt"]):
            ctx.reject(loc, _bad_type("prompt", row["prompt"]), row)
            continue
        g = dict(row)
        if "answer" in g and g.get("solution") is not None and g["solution"] == solution_text(g["answer"]):
            del g["solution"]  # the exporter's copy of the answer for TRL's accuracy_reward
        elif "answer" not in g and "solution" in g:
            g["answer"] = g["solution"]
            ctx.note("trl-prompt: no answer column; the gold answer is taken from 'solution' (kept too)")
        yield finish(g)


def prompt_from_groups(groups: Iterable[dict], conversational: bool = False, system_prompt: str | None = None,
                       **_) -> Iterator[dict]:
    """Prompt-only rows: the prompt plus every other field as reward-function columns.

    ``solution`` carries the gold too (as ``\\boxed{answer}`` when the group has no
    solution of its own): TRL's ``accuracy_reward`` and open-r1's rewards read that column
    and parse it with math-verify, which needs a delimited answer.
    """
    for g in groups:
        prompt, used = system_prompt_value(g.get("prompt"), conversational, system_prompt, system_of(g))
        row = {"prompt": prompt}
        row.update(extras(g, {"system_prompt"} if used else set()))
        if row.get("solution") is None and row.get("answer") is not None:
            row["solution"] = solution_text(row["answer"])
        yield row


# ------------------------------------------------------------------------------ trl-kto

def _detect_kto(fields: frozenset[str], row: dict) -> int:
    return 95 if {"prompt", "completion", "label"} <= fields else 0


def kto_to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        missing = [k for k in ("prompt", "completion", "label") if k not in row]
        if missing:
            ctx.reject(loc, f"{', '.join(missing)}: missing (trl-kto needs prompt, completion, label)", row)
            continue
        label = row["label"]
        if isinstance(label, str) and label.lower() in ("true", "false", "1", "0"):
            label = label.lower() in ("true", "1")
        if label in (0, 1) and not isinstance(label, bool):
            label = bool(label)
        if not isinstance(label, bool):
            ctx.reject(loc, f"label: expected true or false, got {row['label']!r}", row)
            continue
        bad = next((k for k in ("prompt", "completion") if not _is_text_or_messages(row[k])), None)
        if bad:
            ctx.reject(loc, _bad_type(bad, row[bad]), row)
            continue
        g = {"prompt": row["prompt"], **pass_through(row, {"prompt", "completion", "label"}), "label": label}
        g["responses"] = [{"text": completion_text(row["completion"]), "score": 1.0 if label else 0.0,
                           "correct": label}]
        yield finish(g)


def _kto_label(g: dict, r: dict) -> bool:
    if isinstance(g.get("label"), bool):
        return g["label"]
    if isinstance(r.get("correct"), bool):
        return r["correct"]
    s = r.get("score")
    if isinstance(s, int | float) and not isinstance(s, bool):
        return s >= 1.0
    raise ExportError(f"group {g.get('id')}: its response has no label, correct flag or score; run "
                      "`gradeset verify` first")


def kto_from_groups(groups: Iterable[dict], conversational: bool = False, system_prompt: str | None = None,
                    **_) -> Iterator[dict]:
    for g in groups:
        r = single_response(g, "trl-kto", "make one row per response with `gradeset build kto`")
        if r is None:
            raise ExportError(f"group {g.get('id')}: has no response; a KTO row needs a completion")
        conv = conversational or is_messages(g.get("prompt")) or is_messages(r.get("text"))
        prompt, used = system_prompt_value(g.get("prompt"), conv, system_prompt, system_of(g, r))
        row = {"prompt": prompt, "completion": completion_value(r, conv), "label": _kto_label(g, r)}
        row.update(extras(g, {"label", "completion"} | ({"system_prompt"} if used else set())))
        yield row


register(Layout("trl-sft", "TRL SFT: messages, or prompt + completion (standard or conversational)",
                _detect_sft, sft_to_groups, sft_from_groups, aliases=("sft", "messages")))
register(Layout("trl-dpo", "TRL preference: prompt/chosen/rejected (implicit prompt allowed; seed 000 GSPO)",
                _detect_dpo, dpo_to_groups, dpo_from_groups, aliases=("dpo", "preference", "seed000-preference")))
register(Layout("trl-prompt", "TRL prompt-only (GRPO/GSPO/Dr. GRPO/RLOO): prompt + reward columns",
                _detect_prompt, prompt_to_groups, prompt_from_groups, aliases=("prompt-only", "grpo")))
register(Layout("trl-kto", "TRL KTO: prompt/completion/label", _detect_kto, kto_to_groups, kto_from_groups,
                aliases=("kto",)))
