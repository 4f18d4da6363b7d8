"""Tables and Hugging Face datasets as prompt sources: load, detect columns, sample, group.

Column detection follows seed 003: the first column whose name matches a candidate
(case-insensitive, in the candidate order) is taken for each role; flags override it.
Answers are normalised where their shape is known: GSM8K's ``reasoning #### 42``
(answer ``42``, reasoning kept as ``reference``), TriviaQA's ``{"value", "aliases"}``
and SQuAD's ``{"text": [...]}`` (a list of accepted answers), verl's
``reward_model.ground_truth``, and a ``\\boxed{}`` solution when there is no answer column.

Subsampling is reservoir sampling over the stream, so ``--sample N`` holds N rows in
memory however large the source is.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradeset.errors import GradesetError, InputError
from gradeset.records import GROUP_FIELDS, content_text, ensure_id, is_messages

PROMPT_CANDIDATES = ("prompt", "question", "query", "problem", "input", "instruction", "messages")
ANSWER_CANDIDATES = ("answer", "final_answer", "target", "label", "answers", "ground_truth", "gold",
                     "expected_answer")
SOLUTION_CANDIDATES = ("solution", "rationale", "steps", "explanation", "cot", "reasoning")
SOURCE_CANDIDATES = ("source", "original_source", "data_source", "dataset")
ROLES = ("prompt", "answer", "solution", "source")
CANDIDATES = {"prompt": PROMPT_CANDIDATES, "answer": ANSWER_CANDIDATES,
              "solution": SOLUTION_CANDIDATES, "source": SOURCE_CANDIDATES}

Row = tuple[int, dict]


@dataclass
class Columns:
    """Which source column plays which role (None: no such column)."""

    prompt: str | None = None
    answer: str | None = None
    solution: str | None = None
    source: str | None = None
    chosen_by: dict[str, str] = field(default_factory=dict)  # role -> "flag" | "detected"

    def describe(self) -> str:
        parts = []
        for role in ROLES:
            col = getattr(self, role)
            how = self.chosen_by.get(role, "")
            parts.append(f"{role}={col}" + (f" ({how})" if col and how == "flag" else "") if col else f"{role}=-")
        return "columns: " + ", ".join(parts)


def detect_columns(names: Iterable[str], *, prompt: str | None = None, answer: str | None = None,
                   solution: str | None = None, source: str | None = None,
                   sample: dict | None = None) -> Columns:
    """Pick a column for each role: flags first, then the first candidate name present.

    A flag naming a column that does not exist is an error listing the columns.
    """
    names = list(names)
    # Excel's CSV export starts the header with a BOM; stray spaces are common too
    lower = {n.lstrip("\ufeff").strip().lower(): n for n in names}
    cols = Columns()
    flags = {"prompt": prompt, "answer": answer, "solution": solution, "source": source}
    taken: set[str] = set()
    for role, flag in flags.items():
        if flag:
            if flag not in names and flag.strip().lower() not in lower:
                raise GradesetError(f"--{role}-col {flag!r} is not a column; columns are: {', '.join(names)}")
            col = flag if flag in names else lower[flag.strip().lower()]
            setattr(cols, role, col)
            cols.chosen_by[role] = "flag"
            taken.add(col)
    for role in ROLES:
        if getattr(cols, role):
            continue
        for cand in CANDIDATES[role]:
            col = lower.get(cand)
            if col is not None and col not in taken:
                if role == "prompt" and cand == "input" and "instruction" in lower:
                    continue  # Alpaca: instruction is the prompt, input its context
                setattr(cols, role, col)
                cols.chosen_by[role] = "detected"
                taken.add(col)
                break
    if cols.answer is None and sample is not None and isinstance(sample.get("reward_model"), dict):
        cols.answer = "reward_model"
        cols.chosen_by["answer"] = "detected"
    return cols


# ---------------------------------------------------------------- answer normalisation

_GSM8K = re.compile(r"####\s*(.+?)\s*$", re.S)


def split_gsm8k(text: str) -> tuple[str, str | None]:
    """``reasoning #### 42`` -> ("42", "reasoning"); other text -> (text, None)."""
    m = _GSM8K.search(text)
    if not m:
        return text, None
    final = m.group(1).strip().replace(",", "") if re.fullmatch(r"-?[\d,]+(\.\d+)?", m.group(1).strip()) \
        else m.group(1).strip()
    reasoning = text[: m.start()].strip()
    return final, reasoning or None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced; None if absent."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    i = text.find("{", idx)
    if i < 0:
        return None
    depth = 0
    for j in range(i, min(len(text), i + 10_000)):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1: j].strip()
    return None


def normalize_answer(value: Any) -> tuple[Any, str | None]:
    """(gold answer, reasoning found with it) from the shapes datasets use for answers."""
    if value is None:
        return None, None
    if isinstance(value, dict):
        if "ground_truth" in value:  # verl reward_model
            return normalize_answer(value.get("ground_truth"))
        if "aliases" in value or "value" in value:  # TriviaQA
            accepted = [value.get("value")] + list(value.get("aliases") or [])
            out = list(dict.fromkeys(str(a) for a in accepted if a not in (None, "")))
            return (out if len(out) > 1 else (out[0] if out else None)), None
        if "text" in value:  # SQuAD
            texts = value["text"]
            if isinstance(texts, list):
                out = list(dict.fromkeys(str(t) for t in texts if t not in (None, "")))
                return (out if len(out) > 1 else (out[0] if out else None)), None
            return texts, None
        return value, None
    if isinstance(value, str):
        final, reasoning = split_gsm8k(value)
        return final.strip(), reasoning
    if isinstance(value, float) and value.is_integer():
        return int(value), None
    return value, None


def answer_from_solution(solution: str) -> str | None:
    """A final answer inside a worked solution: ``\\boxed{}``, ``#### x``, or a short solution itself."""
    boxed = last_boxed(solution)
    if boxed:
        return boxed
    final, reasoning = split_gsm8k(solution)
    if reasoning is not None:
        return final
    s = solution.strip()
    if s and len(s) <= 40 and "\n" not in s:
        return s
    return None


# ---------------------------------------------------------------- rows -> groups


def row_to_group(row: dict, cols: Columns, *, task: str | None = None, source_name: str | None = None,
                 keep: set[str] | None = None) -> tuple[dict | None, str | None]:
    """(group, None) or (None, reason).

    Other columns are kept (all when ``keep`` is None, else those named; reserved names
    get ``orig_``). A chat prompt ending in assistant turns (an SFT row) is cut before
    them and their text becomes the reference.
    """
    if cols.prompt is None:
        return None, "no prompt column"
    prompt = row.get(cols.prompt)
    if cols.prompt.lower() == "instruction":
        ctx = row.get("input")
        if isinstance(ctx, str) and ctx.strip() and isinstance(prompt, str):
            prompt = f"{prompt}\n\n{ctx}"
    if isinstance(prompt, list) and not is_messages(prompt):
        return None, f"{cols.prompt}: a list that is not chat messages"
    if isinstance(prompt, str):
        if not prompt.strip():
            return None, f"{cols.prompt}: empty prompt"
    elif not is_messages(prompt):
        if prompt is None:
            return None, f"{cols.prompt}: empty prompt"
        prompt = str(prompt)
    trailing = None
    if is_messages(prompt) and prompt[-1].get("role") == "assistant":
        # an SFT conversation: the prompt is everything before the final assistant turn(s)
        cut = len(prompt)
        while cut > 0 and prompt[cut - 1].get("role") == "assistant":
            cut -= 1
        if cut == 0:
            return None, f"{cols.prompt}: a conversation with no user turn"
        trailing = "\n\n".join(content_text(m.get("content")) for m in prompt[cut:])
        prompt = prompt[:cut]
    answer, reference = (None, None)
    if cols.answer is not None:
        answer, reference = normalize_answer(row.get(cols.answer))
    solution = row.get(cols.solution) if cols.solution else None
    if solution is not None and not isinstance(solution, str):
        solution = str(solution)
    if solution:
        reference = solution
        if answer is None:
            answer = answer_from_solution(solution)
    if trailing and not reference:
        reference = trailing
    src = row.get(cols.source) if cols.source else None
    if src is None:
        src = source_name
    used = {c for c in (cols.prompt, cols.answer, cols.solution, cols.source) if c}
    if cols.prompt and cols.prompt.lower() == "instruction":
        used.add("input")
    group: dict[str, Any] = {"prompt": prompt, "answer": answer}
    if task:
        group["task"] = task
    if src is not None:
        group["source"] = str(src)
    if reference:
        group["reference"] = reference
    for k, v in row.items():
        if k in used or (keep is not None and k not in keep):
            continue
        key = f"orig_{k}" if k in GROUP_FIELDS or k in group else k
        group[key] = v
    group["responses"] = []
    return ensure_id(group), None


# ---------------------------------------------------------------- loading


def looks_like_hub_id(src: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", src)) and Path(src).suffix.lower() not in {
        ".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".json", ".gz", ".arrow"}


def iter_source(src: str, *, split: str | None = None, config: str | None = None,
                on_reject: Callable | None = None, streaming: bool = True) -> Iterator[Row]:
    """Rows of a local file/folder, or of a hub dataset (streamed) when src is not a path."""
    from gradeset.io import iter_rows

    p = Path(src)
    if p.exists():
        if p.is_file() and p.stat().st_size == 0:
            raise InputError(src, "the file is empty")
        return iter_rows(p, on_reject, split=split)
    if not looks_like_hub_id(src):
        raise InputError(src, "no such file or folder")
    return _iter_hub(src, split=split, config=config, streaming=streaming)


def _iter_hub(name: str, *, split: str | None, config: str | None, streaming: bool) -> Iterator[Row]:
    from gradeset.errors import require

    datasets = require("datasets", "hf", f"loading {name} from the Hugging Face hub")
    split = split or "train"
    try:
        ds = datasets.load_dataset(name, config, split=split, streaming=streaming)
    except FileNotFoundError as exc:
        raise InputError(name, f"not a local file or folder, and not found on the Hugging Face hub ({exc})") \
            from exc
    except ValueError as exc:
        raise InputError(name, f"cannot load from the hub: {exc}") from exc
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE")
        hint = " (offline mode is set)" if offline else " (is the network reachable? save the dataset with " \
            "save_to_disk or export CSV/Parquet where it is, and pass that path)"
        raise InputError(name, f"cannot load from the Hugging Face hub: {type(exc).__name__}: {msg}{hint}") \
            from exc

    def rows() -> Iterator[Row]:
        try:
            for i, row in enumerate(ds, 1):
                yield i, dict(row)
        except Exception as exc:
            raise InputError(name, f"reading from the hub failed after some rows: {exc}") from exc

    return rows()


def take(rows: Iterable[Row], max_rows: int | None) -> Iterator[Row]:
    """The first max_rows rows (all when None)."""
    if max_rows is None:
        yield from rows
        return
    if max_rows <= 0:
        return
    for n, row in enumerate(rows, 1):
        yield row
        if n >= max_rows:
            return


class _SkipSampler:
    """Algorithm L (Li, 1994): which stream positions replace a reservoir slot, and which slot.

    The decisions depend only on the seed and the positions, so a row-by-row stream and
    a batch-by-batch one (which converts only the chosen rows) pick the same sample.
    """

    def __init__(self, k: int, seed: int):
        self.k = k
        self.rng = random.Random(seed)
        self.w = math.exp(math.log(self._u()) / k)
        self.next = k + self._skip()

    def _u(self) -> float:
        u = self.rng.random()
        while u <= 0.0:
            u = self.rng.random()
        return u

    def _skip(self) -> int:
        if self.w >= 1.0:
            return 0
        return int(math.floor(math.log(self._u()) / math.log1p(-self.w)))

    def advance(self) -> int:
        """The slot the item at ``self.next`` goes to; moves ``next`` on."""
        slot = self.rng.randrange(self.k)
        self.w *= math.exp(math.log(self._u()) / self.k)
        self.next += self._skip() + 1
        return slot


def reservoir_sample(rows: Iterable[Any], k: int, seed: int = 0) -> list[Any]:
    """k items chosen uniformly from a stream of unknown length, in stream order.

    Holds k items at a time; the same seed and stream give the same sample.
    """
    if k <= 0:
        return []
    sampler = _SkipSampler(k, seed)
    reservoir: list[tuple[int, Any]] = []
    for i, item in enumerate(rows):
        if i < k:
            reservoir.append((i, item))
        elif i == sampler.next:
            reservoir[sampler.advance()] = (i, item)
    reservoir.sort(key=lambda t: t[0])
    return [item for _, item in reservoir]


def sample_arrow_batches(batches: Iterable[Any], k: int, seed: int = 0, max_rows: int | None = None,
                         on_row: Callable[[int], None] | None = None) -> list[Row]:
    """The same sample as :func:`reservoir_sample` over Arrow record batches, converting only
    the chosen rows to Python (the rest are never materialised)."""
    if k <= 0:
        return []
    sampler = _SkipSampler(k, seed)
    reservoir: list[tuple[int, dict]] = []
    pos = 0
    for batch in batches:
        n = batch.num_rows
        if max_rows is not None:
            n = min(n, max_rows - pos)
            if n <= 0:
                break
        picks: list[tuple[int, int | None]] = [(i, None) for i in range(max(0, min(n, k - pos)))]
        while sampler.next < pos + n:
            picks.append((sampler.next - pos, sampler.advance()))
        if picks:
            rows = batch.take([i for i, _ in picks]).to_pylist()
            for (i, slot), row in zip(picks, rows):
                if slot is None:
                    reservoir.append((pos + i, row))
                else:
                    reservoir[slot] = (pos + i, row)
        pos += n
        if on_row is not None:
            on_row(n)
    reservoir.sort(key=lambda t: t[0])
    return [(i + 1, row) for i, row in reservoir]


def arrow_batches(src: str) -> Iterator[Any] | None:
    """Record batches of a Parquet file (None for other sources: they are sampled row by row)."""
    p = Path(src)
    if not (p.is_file() and p.suffix.lower() in (".parquet", ".pq")):
        return None
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
    except Exception as exc:
        raise InputError(src, f"not a readable Parquet file: {exc}") from exc
    return pf.iter_batches(batch_size=65536)


def tables_groups(src: str, *, split: str | None = None, config: str | None = None, max_rows: int | None = None,
                  sample: int | None = None, seed: int = 0, prompt_col: str | None = None,
                  answer_col: str | None = None, solution_col: str | None = None, source_col: str | None = None,
                  source_name: str | None = None, task: str | None = None,
                  keep_cols: list[str] | None = None, dataset_split: str | None = None) -> Iterator[dict]:
    """Groups of a table / dataset (what ``gradeset load`` writes), for pipelines and Python use.

    Rows without a usable prompt are skipped here; the command reports them.
    ``dataset_split`` is ``split`` under the name a pipeline's synth source accepts.
    """
    split = split or dataset_split
    batches = arrow_batches(src) if sample is not None else None
    if batches is not None:
        rows: Iterator[Row] = iter(sample_arrow_batches(batches, sample or 0, seed, max_rows))
    else:
        rows = take(iter_source(src, split=split, config=config), max_rows)
        if sample is not None:
            rows = iter(reservoir_sample(rows, sample, seed))
    cols: Columns | None = None
    name = source_name or (Path(src).stem if Path(src).exists() else src)
    for _, row in rows:
        if cols is None:
            cols = detect_columns(row.keys(), prompt=prompt_col, answer=answer_col, solution=solution_col,
                                  source=source_col, sample=row)
            if cols.prompt is None:
                raise GradesetError(f"{src}: no prompt column found among {', '.join(row.keys())}")
        group, _ = row_to_group(row, cols, task=task, source_name=name,
                                keep=set(keep_cols) if keep_cols is not None else None)
        if group is not None:
            yield group
