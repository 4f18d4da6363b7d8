"""verl's RL parquet layout: ``data_source``, ``prompt`` (chat messages), ``ability``,
``reward_model{style: "rule", ground_truth}``, ``extra_info{split, index, id, ...}``.

Written as verl's own preprocessing scripts (examples/data_preprocess/gsm8k.py) write it;
give the output a ``.parquet`` name. Reading it back is supported too, so a verl file can
be inspected, checked, converted and trained on.

verl's default reward (``verl.utils.reward_score.default_compute_score``) routes on
``data_source`` alone and raises ``NotImplementedError`` for a name it does not know, so
the exporter writes a name it knows when the group's task maps to one (gsm8k ->
``openai/gsm8k``, math -> ``lighteval/MATH``); ``data_source=`` (``--data-source``)
overrides. The task, the gold, gradeset's verifier name and the original source go into
``extra_info`` (the only other thing verl hands a score function), so a custom reward such
as gradeset's own can grade with the right verifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gradeset.formats._util import answer_text, finish, pass_through, prompt_messages, system_of
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import is_messages, prompt_text

_MAPPED = frozenset({"prompt", "responses", "answer", "source", "task", "extra_info", "id", "split",
                     "system_prompt"})

# task family -> the data_source verl 0.9's default_compute_score grades it under
DEFAULT_SCORER = {"gsm8k": "openai/gsm8k", "math": "lighteval/MATH"}
# every data_source default_compute_score routes (verl 0.9.1), besides names starting "aime"
KNOWN_SOURCES = frozenset({
    "openai/gsm8k", "lighteval/MATH", "DigitalLearningGmbH/MATH-lighteval", "math_dapo",
    "numina_aops_forum", "numina_synthetic_math", "numina_amc_aime", "numina_synthetic_amc", "numina_cn_k12",
    "numina_olympiads", "codecontests", "apps", "codeforces", "taco", "hiyouga/geometry3k",
})


def scorer_knows(data_source: object) -> bool:
    """True when verl's default reward routes this data_source (else it raises NotImplementedError)."""
    return isinstance(data_source, str) and (data_source in KNOWN_SOURCES or data_source.startswith("aime"))


def _task(group: dict) -> str | None:
    from gradeset.verify.registry import canonical_task

    task = group.get("task")
    return canonical_task(task) if isinstance(task, str) and task else None


# dataset names (the part after the last '/' or ':', lower case) -> the data_source verl grades them under
SOURCE_NAMES = {"gsm8k": "openai/gsm8k", "gsm8k_train": "openai/gsm8k", "gsm8k_test": "openai/gsm8k",
                "math": "lighteval/MATH", "competition_math": "lighteval/MATH", "hendrycks_math": "lighteval/MATH",
                "math-lighteval": "lighteval/MATH", "math_lighteval": "lighteval/MATH"}


def data_source_for(group: dict, override: str | None = None) -> str:
    """The data_source to write: the override, a source verl knows (by its own or a dataset's name),
    the task's verl name, else the source itself."""
    if override:
        return override
    src = group.get("source")
    if scorer_knows(src):
        return src
    if isinstance(src, str):
        name = src.replace(":", "/").rsplit("/", 1)[-1].lower()
        if name in SOURCE_NAMES:
            return SOURCE_NAMES[name]
    task = _task(group)
    if task in DEFAULT_SCORER:
        return DEFAULT_SCORER[task]
    return src if isinstance(src, str) and src else "gradeset"


def verifier_for(group: dict) -> str | None:
    """gradeset's verifier for the group: its task when registered (``math`` when it has none)."""
    from gradeset.verify.registry import VERIFIERS

    task = _task(group) or "math"
    return task if task in VERIFIERS else None


def _detect(fields: frozenset[str], row: dict) -> int:
    return 100 if {"prompt", "reward_model"} <= fields and isinstance(row.get("reward_model"), dict) else 0


def to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        prompt = row.get("prompt")
        if not (isinstance(prompt, str) or is_messages(prompt)):
            ctx.reject(loc, "prompt: expected chat messages", row)
            continue
        rm = row.get("reward_model")
        if not isinstance(rm, dict) or "ground_truth" not in rm:
            ctx.reject(loc, "reward_model.ground_truth: missing", row)
            continue
        g = {"prompt": prompt, "answer": rm["ground_truth"],
             **pass_through(row, {"prompt", "reward_model", "data_source", "ability", "extra_info"})}
        if rm.get("style", "rule") != "rule":
            g["reward_style"] = rm.get("style")
        info = dict(row.get("extra_info") or {})
        source = info.pop("source", None) or row.get("data_source")
        if source is not None:
            g["source"] = source
        task = info.pop("task", None) or row.get("ability")
        if task is not None:
            g["task"] = task
        if row.get("data_source") is not None and row["data_source"] != source:
            g["data_source"] = row["data_source"]  # a name chosen for verl's scorer: written back as it was
        if info.get("id") is not None:
            g["id"] = info.pop("id")
        if info.get("question") == prompt_text(prompt):
            del info["question"]  # written by the exporter from the prompt: not extra information
        if info.get("answer") is not None and str(info["answer"]) == str(rm["ground_truth"]):
            del info["answer"]
        if info.get("verifier") is not None and info["verifier"] == verifier_for(g):
            del info["verifier"]
        if info:
            g["extra_info"] = info
        yield finish(g)


def from_groups(groups: Iterable[dict], system_prompt: str | None = None, split: str | None = None,
                data_source: str | None = None, **_) -> Iterator[dict]:
    """verl rows; the prompt is always chat messages (verl applies the chat template)."""
    for i, g in enumerate(groups):
        info = dict(g.get("extra_info") or {})
        info.setdefault("split", split or g.get("split") or "train")
        info.setdefault("index", i)
        info["id"] = g.get("id")
        info.setdefault("question", prompt_text(g.get("prompt")))
        answer = answer_text(g.get("answer"))
        gold = "" if answer is None else answer if isinstance(answer, str) else str(answer)
        task = g.get("task") if isinstance(g.get("task"), str) and g.get("task") else None
        info.setdefault("task", task or "math")
        info.setdefault("answer", gold)
        verifier = verifier_for(g)
        if verifier is not None:
            info.setdefault("verifier", verifier)
        src = g.get("source")
        if isinstance(src, str) and src:
            info.setdefault("source", src)
        row = {
            "data_source": data_source or g.get("data_source") or data_source_for(g),
            "prompt": prompt_messages(g.get("prompt"), system_prompt or system_of(g)),
            "ability": task or "math",
            "reward_model": {"style": g.get("reward_style") or "rule", "ground_truth": gold},
            "extra_info": info,
        }
        for k, v in g.items():
            if k not in _MAPPED and k not in ("reward_style", "data_source"):
                row[k] = v
        yield row


register(Layout("verl", "verl RL parquet: data_source/prompt/ability/reward_model/extra_info", _detect,
                to_groups, from_groups))
