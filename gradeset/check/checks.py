"""The checks: one streaming pass over groups, a verdict per check, the failing rows listed.

:class:`CheckRunner` is fed groups one at a time (``add``), reader rejects
(``add_reject``) and groups of other splits (``add_split_group``); ``finish`` turns its
counters into a :class:`CheckReport`. Memory is bounded by counters, one 8-byte hash and
one MinHash signature per distinct prompt, and the first ``examples`` failing rows of each
check; the rows themselves are never kept.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from gradeset.check.config import SCORELESS_LAYOUTS, CheckConfig, mode_for_layout
from gradeset.check.stats import DatasetStats, LengthFn, quantile, valid_score, word_lengths
from gradeset.records import group_id, prompt_text, response_text, validate_group
from gradeset.shape.decontaminate import BenchmarkIndex
from gradeset.shape.dedup import NearIndex, numbers_guard
from gradeset.shape.text import normalize, text_hash

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

# name -> (title, threshold flag); the order is the order of the summary table
CHECKS: dict[str, tuple[str, str | None]] = {
    "layout": ("rows valid for the layout", "--max-invalid"),
    "group_size": ("group size equals N", "--group-size"),
    "scores": ("scores present and in [0, 1]", None),
    "coverage": ("verification coverage", "--min-coverage"),
    "zero_variance": ("groups with no GRPO signal (all scores equal)", "--max-zero-variance"),
    "tied_pairs": ("tied or identical preference pairs", "--max-tied"),
    "empty_text": ("empty or whitespace texts", "--max-empty"),
    "duplicates": ("exact duplicate prompts", "--max-duplicates"),
    "near_duplicates": ("near-duplicate prompts (MinHash)", "--max-near-duplicates"),
    "test_overlap": ("prompt / test set overlap", "--max-test-overlap"),
    "truncated": ("truncated responses (finish_reason length)", "--max-truncated"),
    "length_outliers": ("length outliers", "--max-length / --iqr-factor"),
    "label_balance": ("KTO label balance", "--label-band"),
    "split_leakage": ("prompt in two splits", None),
}
TRUNCATED_REASONS = frozenset({"length", "max_tokens", "max_length"})


@dataclass
class Example:
    id: str | None
    line: int | None
    detail: str
    source: str | None = None


@dataclass
class CheckResult:
    name: str
    title: str
    status: str
    message: str
    count: int = 0
    total: int = 0
    value: float | None = None
    threshold: str | None = None
    flag: str | None = None
    examples: list[Example] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == FAIL


@dataclass
class CheckReport:
    results: list[CheckResult]
    stats: dict
    config: dict
    inputs: list[str] = field(default_factory=list)
    layout: str | None = None
    mode: str = "groups"
    stages: list[dict] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)
    exports: list[dict] = field(default_factory=list)  # a pipeline's trainer files: path, layout, rows

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == FAIL]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def result(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self, include_sample: bool = False) -> dict:
        """JSON-ready report; the sample of groups (large) only when asked."""
        return {"passed": not self.failed, "failed": [r.name for r in self.failed],
                "inputs": self.inputs, "layout": self.layout, "mode": self.mode,
                "checks": [asdict(r) for r in self.results], "stats": self.stats,
                "stages": self.stages, "exports": self.exports, "config": self.config,
                **({"sample": self.sample} if include_sample else {})}


class _Tally:
    """Count of hits of one check plus its first few examples."""

    def __init__(self, limit: int):
        self.count = 0
        self.limit = limit
        self.examples: list[Example] = []

    def hit(self, gid: str | None, line: int | None, detail: str, source: str | None = None) -> None:
        self.count += 1
        if len(self.examples) < self.limit:
            self.examples.append(Example(gid, line, detail[:300], source))


def _share(n: int, d: int) -> float | None:
    return n / d if d else None


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


class CheckRunner:
    """Feed groups, get a report. The same object serves the CLI, the library and the step."""

    def __init__(self, config: CheckConfig | None = None, *, layout: str | None = None,
                 length_fn: LengthFn = word_lengths, unit: str = "words",
                 test_prompts: Iterable[str] | None = None, splits: bool = False,
                 source: str | None = None, validated: bool = False):
        self.config = cfg = config or CheckConfig()
        self.validated = validated  # the reader already ran validate_group (the group layout does)
        self.layout = layout
        self.mode = cfg.mode or mode_for_layout(layout)
        self.source = source
        self.stats = DatasetStats(length_fn=length_fn, unit=unit, sample_size=cfg.sample, seed=cfg.seed)
        lim = cfg.examples
        self.t = {name: _Tally(lim) for name in CHECKS}
        self.score_missing = _Tally(lim)
        self.groups = 0
        self.invalid = 0
        self.responses = 0
        self.scored = 0
        self.variance_groups = 0
        self.pairs = 0
        self.labelled = 0
        self.desirable = 0
        self.sizes_seen: dict[int, int] = {}
        self.prompts_seen: dict[bytes, tuple[Any, Any]] = {}
        self.distinct_prompts: set[bytes] = set()
        self.near: NearIndex | None = None
        self.near_unavailable: str | None = None
        if cfg.enabled("near_duplicates"):
            try:
                # the same index and number guard as `gradeset dedup --method near`
                self.near = NearIndex(cfg.near_duplicate_threshold, cfg.num_perm, 3, cfg.seed)
            except ImportError:  # numpy is not a core dependency of every install
                self.near_unavailable = "numpy is not installed (pip install numpy)"
        self.test_index = None
        if test_prompts is not None:
            # the same rule as `gradeset decontaminate`, so the check flags what that step removes
            self.test_index = BenchmarkIndex(cfg.ngram)
            for i, t in enumerate(test_prompts, 1):
                if t and t.strip():
                    self.test_index.add(t, "test", i, {"question": t})
        self.splits = splits
        self.split_of: dict[bytes, tuple[str, str | None, int | None]] = {}
        self._long: list[tuple] = []  # min-heap of the longest texts: (length, -order, id, line, where, source)
        self._tick = 0
        self._src: str | None = None

    # -- input -----------------------------------------------------------------------
    def add_reject(self, line: int | None, reason: str, source: str | None = None) -> None:
        """A row the reader could not turn into a group."""
        source = None if source == self.source else source
        self.invalid += 1
        self.t["layout"].hit(None, line, reason, source)
        if ".score" in reason:
            self.t["scores"].hit(None, line, reason, source)

    def _hit(self, name: str, gid: Any, line: int | None, detail: str) -> None:
        tally = self.score_missing if name == "_missing" else self.t[name]
        tally.hit(gid, line, detail, self._src)

    def add(self, group: Mapping[str, Any], line: int | None = None, source: str | None = None) -> None:
        """One group; ``source`` names the file when the input is a folder of shards."""
        self._src = source
        errors = [] if self.validated else validate_group(group)
        if errors:
            gid = group.get("id") if isinstance(group, Mapping) else None
            reason = "; ".join(errors[:3])
            self.invalid += 1
            self._hit("layout", gid, line, reason)
            if ".score" in reason:
                self._hit("scores", gid, line, reason)
            return
        cfg = self.config
        self.groups += 1
        gid = group.get("id") or group_id(group.get("prompt"), group.get("answer"), group.get("source"))
        responses = [r for r in group.get("responses") or []]
        ptext = prompt_text(group.get("prompt"))
        rtexts = [response_text(r) for r in responses]
        lengths = self.stats.lengths_of(group)
        self.stats.add(group, line, lengths)

        # group size
        n = len(responses)
        self.sizes_seen[n] = self.sizes_seen.get(n, 0) + 1
        if cfg.group_size is not None and n != cfg.group_size:
            self._hit("group_size", gid, line, f"{n} responses, expected {cfg.group_size}")

        # scores and coverage
        scores = []
        for i, r in enumerate(responses):
            self.responses += 1
            s = r.get("score")
            if s is None:
                self._hit("_missing", gid, line, f"responses[{i}]: missing score")
            elif valid_score(s):
                self.scored += 1
                scores.append(float(s))
            else:
                self._hit("scores", gid, line, f"responses[{i}].score: invalid {s!r}")

        # zero variance (GRPO signal): every scored response equal
        if self.mode == "groups":
            signal = scores if len(scores) >= 2 else [float(r["correct"]) for r in responses
                                                       if isinstance(r.get("correct"), bool)]
            if len(signal) >= 2:
                self.variance_groups += 1
                if max(signal) == min(signal):
                    kind = "all correct" if min(signal) >= 1.0 else "all wrong" if max(signal) <= 0.0 \
                        else f"all scores {signal[0]:g}"
                    self._hit("zero_variance", gid, line, f"{kind} ({len(signal)} responses)")

        # preference pairs
        if self.mode == "pairs":
            self.pairs += 1
            if n != 2:
                self._hit("tied_pairs", gid, line, f"a pair needs 2 responses [chosen, rejected], got {n}")
            else:
                c, rj = responses
                if normalize(rtexts[0]) == normalize(rtexts[1]):
                    self._hit("tied_pairs", gid, line, "chosen == rejected (same text)")
                elif valid_score(c.get("score")) and valid_score(rj.get("score")):
                    if c["score"] == rj["score"]:
                        self._hit("tied_pairs", gid, line, f"tied scores {c['score']:g} == {rj['score']:g}")
                    elif c["score"] < rj["score"]:
                        self._hit("tied_pairs", gid, line,
                                                 f"chosen scored below rejected ({c['score']:g} < {rj['score']:g})")

        # KTO labels
        if self.mode == "kto":
            for r in responses:
                label = r.get("label", group.get("label"))
                if not isinstance(label, bool):
                    label = r.get("correct")
                if isinstance(label, bool):
                    self.labelled += 1
                    self.desirable += label

        # empty texts
        if not ptext.strip():
            self._hit("empty_text", gid, line, "prompt is empty or whitespace")
        for i, t in enumerate(rtexts):
            if not t.strip():
                self._hit("empty_text", gid, line, f"responses[{i}] is empty or whitespace")

        # duplicates: in pair / KTO layouts several rows per prompt are by design, so the
        # exact key includes the responses and near duplicates compare distinct prompts only
        norm_prompt = normalize(ptext)
        phash = text_hash(norm_prompt)
        key = phash if self.mode == "groups" else text_hash(
            "\x1f".join([norm_prompt, *(normalize(t) for t in rtexts)]))
        if cfg.enabled("duplicates") and ptext.strip():
            first = self.prompts_seen.get(key)
            if first is not None:
                self._hit("duplicates", gid, line, f"same prompt as line {first[1]} (id {first[0]})")
            else:
                self.prompts_seen[key] = (gid, line if source is None else f"{source}:{line}")
        if self.near is not None and ptext.strip() and phash not in self.distinct_prompts:
            self.distinct_prompts.add(phash)
            twin = self.near.query_add(norm_prompt, (gid, line if source is None else f"{source}:{line}"),
                                       numbers_guard(norm_prompt))
            if twin is not None:
                (tid, tline), sim = twin
                self._hit("near_duplicates", gid, line, f"~{sim:.2f} similar to line {tline} (id {tid})")
        elif ptext.strip():
            self.distinct_prompts.add(phash)

        # test overlap
        if self.test_index is not None and ptext.strip():
            hit = self.test_index.match(ptext)
            if hit is not None:
                what = "is in the test set" if hit["overlap"] >= 1.0 and normalize(hit["text"]) == norm_prompt \
                    else f"overlaps test prompt {hit['line']} ({hit['overlap']:.0%} of {cfg.ngram}-grams)"
                self._hit("test_overlap", gid, line, f"prompt {what}")

        # truncation
        for i, r in enumerate(responses):
            meta = r.get("meta")
            fr = meta.get("finish_reason") if isinstance(meta, Mapping) else r.get("finish_reason")
            if isinstance(fr, str) and fr.lower() in TRUNCATED_REASONS:
                self._hit("truncated", gid, line, f"responses[{i}] stopped at max tokens")

        # lengths: hard cap now, IQR outliers at the end from the length table
        measured = lengths[1] if responses else [lengths[0]]
        what = "responses" if responses else "prompt"
        for i, m in enumerate(measured):
            if cfg.max_length is not None and m > cfg.max_length:
                self._hit("length_outliers", gid, line, f"{what}[{i}] has {m} {self.stats.unit} > {cfg.max_length}")
            self._tick += 1
            item = (m, -self._tick, gid, line, f"{what}[{i}]" if responses else "prompt", source)
            if len(self._long) < cfg.examples:
                heapq.heappush(self._long, item)
            elif item > self._long[0]:
                heapq.heapreplace(self._long, item)

        # split leakage: the main input is one split
        if self.splits and ptext.strip():
            self._note_split(phash, self.source or "input", gid, line if source is None else f"{source}:{line}")

    def add_split_group(self, group: Mapping[str, Any], split: str, line: int | None = None) -> None:
        """A group of another split: only compared for leakage."""
        ptext = prompt_text(group.get("prompt"))
        if ptext.strip():
            self._note_split(text_hash(normalize(ptext)), split, group.get("id"), line)

    def _note_split(self, phash: bytes, split: str, gid: Any, line: int | None) -> None:
        first = self.split_of.get(phash)
        if first is None:
            self.split_of[phash] = (split, gid, line)
        elif first[0] != split:
            self.t["split_leakage"].hit(gid, line, f"also in {first[0]} line {first[2]} (id {first[1]})", split)

    # -- verdicts --------------------------------------------------------------------
    def finish(self) -> CheckReport:
        cfg = self.config
        rows = self.groups + self.invalid
        res: list[CheckResult] = []

        def add(name: str, status: str, message: str, count: int = 0, total: int = 0,
                value: float | None = None, threshold: str | None = None,
                tally: _Tally | None = None) -> None:
            title, flag = CHECKS[name]
            if not cfg.enabled(name):
                status, message = SKIP, "disabled"
            ex = (tally or self.t[name]).examples if status in (FAIL, WARN) else []
            res.append(CheckResult(name, title, status, message, count, total, value, threshold, flag, list(ex)))

        t = self.t
        n = t["layout"].count
        add("layout", FAIL if n > cfg.max_invalid else PASS,
            f"{n} of {rows} rows invalid" + (f" (layout {self.layout})" if self.layout else ""),
            n, rows, _share(n, rows), f"<= {cfg.max_invalid}")

        if cfg.group_size is None:
            sizes = sorted(self.sizes_seen)
            if len(sizes) > 1:
                add("group_size", WARN, f"group sizes vary: {sizes[:8]}; pass --group-size N to enforce",
                    0, self.groups)
            else:
                add("group_size", SKIP, f"all groups have {sizes[0] if sizes else 0} responses; "
                    "no --group-size given", 0, self.groups)
        else:
            n = t["group_size"].count
            add("group_size", FAIL if n else PASS, f"{n} of {self.groups} groups without {cfg.group_size} "
                "responses", n, self.groups, _share(n, self.groups), f"== {cfg.group_size}")

        n_bad, n_miss = t["scores"].count, self.score_missing.count
        if self.responses == 0 and n_bad == 0:
            add("scores", SKIP, "no responses", 0, 0)
        elif n_bad:
            add("scores", FAIL, f"{n_bad} invalid scores, {n_miss} missing", n_bad, self.responses,
                threshold="in [0, 1]")
        elif n_miss and self.scored == 0 and self.layout in SCORELESS_LAYOUTS:
            add("scores", SKIP, f"layout {self.layout} carries no scores", 0, self.responses)
        elif n_miss:
            add("scores", WARN, f"{n_miss} of {self.responses} responses have no score", n_miss,
                self.responses, _share(n_miss, self.responses), tally=self.score_missing)
        else:
            add("scores", PASS, f"all {self.responses} scores in [0, 1]", 0, self.responses)

        cov = _share(self.scored, self.responses)
        if cov is None:
            add("coverage", SKIP, "no responses", 0, 0)
        elif self.scored == 0 and self.layout in SCORELESS_LAYOUTS:
            add("coverage", SKIP, f"layout {self.layout} carries no scores (an SFT or prompt export): "
                "coverage does not apply", 0, self.responses)
        else:
            add("coverage", FAIL if cov < cfg.min_coverage else PASS,
                f"{_pct(cov)} of responses scored ({self.scored}/{self.responses})",
                self.responses - self.scored, self.responses, cov, f">= {_pct(cfg.min_coverage)}",
                tally=self.score_missing)

        n, d = t["zero_variance"].count, self.variance_groups
        if self.mode != "groups" or d == 0:
            add("zero_variance", SKIP, "no groups with 2+ scored responses" if self.mode == "groups"
                else f"not a group layout ({self.mode})", 0, 0)
        else:
            v = n / d
            add("zero_variance", FAIL if v > cfg.max_zero_variance else (WARN if n else PASS),
                f"{_pct(v)} of groups all correct or all wrong ({n}/{d})", n, d, v,
                f"<= {_pct(cfg.max_zero_variance)}")

        n, d = t["tied_pairs"].count, self.pairs
        if self.mode != "pairs":
            add("tied_pairs", SKIP, "not a preference-pair layout", 0, 0)
        else:
            v = _share(n, d) or 0.0
            add("tied_pairs", FAIL if v > cfg.max_tied else PASS,
                f"{n} of {d} pairs tied, identical or inverted", n, d, v, f"<= {_pct(cfg.max_tied)}")

        n = t["empty_text"].count
        add("empty_text", FAIL if n > cfg.max_empty else PASS, f"{n} empty or whitespace texts",
            n, self.groups + self.responses, None, f"<= {cfg.max_empty}")

        n = t["duplicates"].count
        v = _share(n, self.groups) or 0.0
        what = "prompts" if self.mode == "groups" else "rows (prompt and responses)"
        add("duplicates", FAIL if v > cfg.max_duplicates else PASS,
            f"{n} of {self.groups} {what} repeat an earlier one", n, self.groups, v,
            f"<= {_pct(cfg.max_duplicates)}")

        n, d = t["near_duplicates"].count, len(self.distinct_prompts)
        v = _share(n, d) or 0.0
        if self.near_unavailable:
            add("near_duplicates", SKIP, self.near_unavailable)
        else:
            add("near_duplicates", FAIL if v > cfg.max_near_duplicates else (WARN if n else PASS),
                f"{n} of {d} distinct prompts ~{cfg.near_duplicate_threshold:g} similar to an earlier one",
                n, d, v, f"<= {_pct(cfg.max_near_duplicates)}")

        n = t["test_overlap"].count
        if self.test_index is None:
            add("test_overlap", SKIP, "no --test file given", 0, 0)
        else:
            add("test_overlap", FAIL if n > cfg.max_test_overlap else PASS,
                f"{n} of {self.groups} prompts overlap the test set ({cfg.ngram}-grams)",
                n, self.groups, _share(n, self.groups), f"<= {cfg.max_test_overlap}")

        n = t["truncated"].count
        if self.responses == 0:
            add("truncated", SKIP, "no responses", 0, 0)
        else:
            v = n / self.responses
            add("truncated", FAIL if v > cfg.max_truncated else (WARN if n else PASS),
                f"{_pct(v)} of responses hit max tokens ({n}/{self.responses})", n, self.responses, v,
                f"<= {_pct(cfg.max_truncated)}")

        self._length_verdict(add)

        if self.mode != "kto":
            add("label_balance", SKIP, "not a KTO layout", 0, 0)
        elif self.labelled == 0:
            add("label_balance", FAIL, "no labelled completions", 0, 0)
        else:
            lo, hi = cfg.label_band
            v = self.desirable / self.labelled
            add("label_balance", PASS if lo <= v <= hi else FAIL,
                f"{_pct(v)} desirable ({self.desirable}/{self.labelled})", self.desirable, self.labelled, v,
                f"in [{_pct(lo)}, {_pct(hi)}]")

        n = t["split_leakage"].count
        if not self.splits:
            add("split_leakage", SKIP, "no --splits given", 0, 0)
        else:
            add("split_leakage", FAIL if n else PASS, f"{n} prompts appear in more than one split",
                n, len(self.split_of) + n)

        return CheckReport(results=res, stats=self.stats.to_dict(), config=cfg.to_dict(),
                           inputs=[self.source] if self.source else [], layout=self.layout, mode=self.mode,
                           sample=self.stats.sample())

    def _length_verdict(self, add) -> None:
        cfg = self.config
        table = self.stats.response_lengths if self.responses else self.stats.prompt_lengths
        unit = self.stats.unit
        if not table:
            add("length_outliers", SKIP, "no texts", 0, 0)
            return
        q1, q3 = quantile(table, 0.25), quantile(table, 0.75)
        assert q1 is not None and q3 is not None
        limit = q3 + cfg.iqr_factor * max(q3 - q1, 1.0)
        n_out = sum(c for v, c in table.items() if v > limit)
        total = sum(table.values())
        capped = self.t["length_outliers"].count
        if capped:
            add("length_outliers", FAIL, f"{capped} texts longer than --max-length {cfg.max_length} {unit}; "
                f"{n_out} above Q3 + {cfg.iqr_factor:g}*IQR = {limit:.0f}", capped, total,
                capped / total, f"<= {cfg.max_length} {unit}")
            return
        if n_out:
            tally = _Tally(cfg.examples)
            for m, _, gid, line, where, src in sorted(self._long, reverse=True):
                if m > limit:
                    tally.hit(gid, line, f"{where} has {m} {unit} > {limit:.0f}", src)
            add("length_outliers", WARN, f"{n_out} of {total} texts above Q3 + {cfg.iqr_factor:g}*IQR = "
                f"{math.floor(limit)} {unit} (longest {max(table)})", n_out, total, n_out / total,
                f"<= {math.floor(limit)} {unit}", tally=tally)
        else:
            add("length_outliers", PASS, f"no text above Q3 + {cfg.iqr_factor:g}*IQR = {math.floor(limit)} "
                f"{unit}", 0, total, 0.0, f"<= {math.floor(limit)} {unit}")


def run_checks(groups: Iterable[Any], config: CheckConfig | None = None, *, layout: str | None = None,
               length_fn: LengthFn = word_lengths, unit: str = "words",
               test_prompts: Iterable[str] | None = None,
               splits: Mapping[str, Iterable[Any]] | None = None) -> CheckReport:
    """Check groups (dicts, or ``(line, dict)`` pairs) in one pass and return the report.

    ``splits`` maps other split names to their groups, compared for leakage only.
    """
    runner = CheckRunner(config, layout=layout, length_fn=length_fn, unit=unit,
                         test_prompts=test_prompts, splits=splits is not None, source="input")
    for i, item in enumerate(groups, 1):
        if isinstance(item, tuple):
            runner.add(item[1], item[0])
        else:
            runner.add(item, i)
    for name, items in (splits or {}).items():
        for i, item in enumerate(items, 1):
            if isinstance(item, tuple):
                runner.add_split_group(item[1], name, item[0])
            else:
                runner.add_split_group(item, name, i)
    return runner.finish()
