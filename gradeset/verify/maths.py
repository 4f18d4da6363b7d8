"""The ``math`` verifier: extract the final answer, decide equivalence fast, fall back to sympy.

Order of work per completion (most completions stop at step 3):

1. cut a hallucinated next chat turn, drop an unfinished ``<think>`` block;
2. find the final answer (tags, last ``\\boxed``, ``####``, "final answer is"); a long
   completion with no marker that stops mid-sentence is *truncated*: ``parsed=None``;
3. canonicalise both sides with the exact fast path (``normalize``) and compare;
4. only when (3) cannot decide, parse LaTeX into sympy (``symbolic``), in the worker
   process that the pool kills at the time limit.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from gradeset.verify import extract, final_answer, hedges, normalize, truncation, unicode_math
from gradeset.verify.rewrite import rewrite
from gradeset.verify.unicode_math import to_latex
from gradeset.verify.verdict import Asked, Verdict, graded, unparsed

_DELIM = re.compile(r"(?<!\\)\$\$|(?<!\\)\$|\\\(|\\\)|\\\[|\\\]")
_CLOSERS = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
_NUMBER = (r"(?<![A-Za-z0-9.])(?:-?\d+ \d+/\d+(?![\d/])|-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d{1,3}(?: \d{3})+(?![\d.])|-?\d+(?:\.\d+)?"
           r"(?:/\d+)?|-?\.\d+)(?![0-9])")
_LAST_NUMBER = re.compile(_NUMBER)
_LAST_NUMBER_COMMA = re.compile(r"(?<![A-Za-z0-9.,])(?:-?\d+,\d{1,2}|-?0,\d+)(?![A-Za-z0-9,])|" + _NUMBER)


def gold_text(gold: Any) -> str:
    """The answer part of a gold field: ``\\boxed{}`` content or GSM8K's ``#### n`` line."""
    if isinstance(gold, dict):
        gold = gold.get("answer", gold.get("ground_truth", gold.get("value")))
    if gold is None:
        return ""
    if not isinstance(gold, str):
        return str(gold)
    gold = to_latex(gold)
    if "\\boxed" in gold or "\\fbox" in gold:
        boxed = extract.boxed_run(gold, lenient=True)
        if boxed is not None:
            return boxed
    if "####" in gold:
        h = extract.hashes_answer(gold)
        if h is not None:
            return h
    if len(gold) > 400:  # a worked solution as gold: its stated final answer
        ans, _ = extract.extract_final(gold)
        if ans is not None:
            return final_answer.normalize_answer(ans)
    return gold.strip()


def last_latex_span(text: str) -> tuple[str, int] | None:
    """Content and end of the last complete math span; inline spans do not cross lines."""
    toks = list(_DELIM.finditer(text))
    for j in range(len(toks) - 1, 0, -1):
        close = toks[j].group(0)
        if close in ("\\(", "\\["):
            continue
        for k in range(j - 1, -1, -1):
            opener = toks[k].group(0)
            if _CLOSERS.get(opener) == close:
                content = text[toks[k].end():toks[j].start()]
                if opener in ("$", "\\(") and "\n" in content.strip(" "):
                    break
                if content.strip():
                    return content.strip(), toks[j].end()
                break
            if opener in ("$$", "$") or close in ("$$", "$"):
                break
    return None


def fallback_answer(text: str, decimal_comma: bool = False) -> str | None:
    """No marker: the later of the last LaTeX span and the last number in the closing lines."""
    tail = text[-600:]
    best, end = None, -1
    span = last_latex_span(tail)
    if span is not None:
        best, end = span
    for m in (_LAST_NUMBER_COMMA if decimal_comma else _LAST_NUMBER).finditer(tail):
        if m.start() >= end:
            best, end = m.group(0), m.end()
    return best


class MathVerifier:
    """``(completion, gold) -> Verdict`` for math answers; picklable, options as attributes."""

    name = "math"
    wants_question = True  # the grader passes ``Asked(gold, question)``: rounding requests

    def __init__(self, tags: tuple[str, ...] | list[str] = (), precision: int = 6, strict: bool = True,
                 allow_set_relation_comp: bool = False, symbolic: bool = True, truncation_chars: int = 400,
                 whole_text: bool = True, decimal_comma: bool = False):
        self.decimal_comma = bool(decimal_comma)
        self.tags = tuple(tags)
        self.precision = int(precision)
        self.strict = bool(strict)
        self.allow_set_relation_comp = bool(allow_set_relation_comp)
        self.symbolic = bool(symbolic)
        self.truncation_chars = int(truncation_chars)
        self.whole_text = bool(whole_text)
        self._gold_cache: OrderedDict = OrderedDict()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_gold_cache"] = OrderedDict()
        return state

    def _gold(self, gold: Any):
        key = gold if isinstance(gold, str | int | float) else repr(gold)
        hit = self._gold_cache.get(key)
        if hit is None:
            text = gold_text(gold)
            hit = (text, normalize.canonical(text))
            self._gold_cache[key] = hit
            if len(self._gold_cache) > 4096:
                self._gold_cache.popitem(last=False)
        return hit

    def extract(self, completion: str) -> tuple[str | None, str | None]:
        """(answer, detail): the committed answer text, or None with the reason.

        A detail starting with "hedge" comes with the answer: the completion committed to
        alternatives, which is graded wrong (see ``hedges``).
        """
        text = extract.strip_turn_tail(completion or "")
        text = extract.after_thinking(text)
        if not text.strip():
            return None, "no answer after thinking" if completion else "empty"
        if extract.unclosed_last_box(text):
            return None, "truncated: unclosed \\boxed"
        ans, marker = extract.extract_final(text, self.tags)
        if (ans is not None and marker == "phrase" and extract.looks_truncated(text, self.truncation_chars)
                and extract.weak_phrase_far_from_end(text)):
            # "Answer: let me think ..." at the top of a completion cut mid-reasoning is no answer
            return None, "truncated: no final answer"
        if ans is not None:
            hedge = hedges.text_hedge(ans)
            if hedge is None and marker == "boxed":
                hedge = hedges.boxed_hedge(text, extract.box_spans(text))
            if hedge is not None:
                return ans, hedge
            ans = final_answer.normalize_answer(ans)
            if marker == "phrase" and normalize.canonical(ans) is None and _has_prose(ans):
                # "The final answer is: the volume of $ABCD$ is 120" -> 120
                inner = fallback_answer(ans, self.decimal_comma)
                if inner is not None and normalize.canonical(inner) is not None:
                    return inner, None
            return ans, None
        if extract.looks_truncated(text, self.truncation_chars):
            return None, "truncated: no final answer"
        if not self.whole_text:
            return None, "no final answer"
        if extract.stops_mid_sentence(text):
            # no marker and cut mid-sentence: the last number is a stray step, not an answer
            return None, "truncated: no final answer"
        short = final_answer.normalize_answer(text.strip()) if len(text) <= 400 else ""
        if short and len(short) <= 200 and (normalize.canonical(short) is not None
                                            or final_answer.locale_number(short) is not None):
            return short, None
        wip = truncation.work_in_progress(text)
        if wip is not None:
            return None, f"truncated: {wip}"
        said = self._sentence_answer(text)
        if said is not None:
            return said
        ans = fallback_answer(text, self.decimal_comma)
        if ans is None:
            return None, "no final answer"
        return (final_answer.normalize_answer(ans) if unicode_math.has_unicode_math(ans) else ans), None

    @staticmethod
    def _sentence_answer(text: str) -> tuple[str, str | None] | None:
        """A final prose sentence without LaTeX delimiters ("The solutions are x = 1 and x = 4.",
        "So sin 45° = √2/2."): the value after its first copula that reads as one. Sentences with
        ``$…$`` keep math-verify's rule (the last math span), which reads them better."""
        sentence = final_answer.last_sentence(text)
        if not sentence:
            return None
        labelled = final_answer.labelled_values(sentence)
        if labelled is not None and _is_value(normalize.canonical(final_answer.normalize_answer(labelled))):
            return final_answer.normalize_answer(labelled), None
        joined = final_answer.spans_after_copula(sentence)
        if joined is not None:
            hedge = hedges.text_hedge(joined)
            if hedge is not None:
                return joined, hedge
            if _is_value(normalize.canonical(joined)):
                return joined, None
        if "$" in sentence or "\\(" in sentence or "\\[" in sentence:
            return None
        if sentence.lower().startswith(("i hope", "hope", "let me know")):
            return None
        for said in final_answer.sentence_answers(sentence):
            said = final_answer.normalize_answer(said)
            hedge = hedges.text_hedge(said)
            if hedge is not None:
                return said, hedge
            if _is_value(normalize.canonical(said)) or final_answer.locale_number(said) is not None \
                    or final_answer.decimal_comma_number(said) is not None:
                return said, None
        return None

    def __call__(self, completion: str, gold: Any) -> Verdict:
        """Grade one completion. In-process there is no time limit: run untrusted text through
        ``gradeset.verify.pool`` (``verify_groups(..., workers=N, timeout=S)``), which kills a stuck worker."""
        question = ""
        if isinstance(gold, Asked):
            gold, question = gold.answer, gold.question
        if isinstance(gold, list | tuple) and gold and not isinstance(gold, str):
            verdicts = [self(completion, Asked(g, question)) for g in gold]
            return next((v for v in verdicts if v.correct), verdicts[0])
        ans, why = self.extract(completion)
        if ans is None:
            return unparsed(why or "no final answer", "exact")
        too = final_answer.too_complex(ans)
        if too is not None:
            return unparsed(too, "exact")
        too = final_answer.too_complex(self._gold(gold)[0])
        if too is not None:  # dataset text is as hostile as model text
            return graded(False, ans, "gold " + too.replace("answer ", "", 1), "exact")
        if why is not None and why.startswith("hedge"):
            return graded(False, ans, why, "exact")
        if not ans.strip():
            return unparsed("empty answer", "exact")
        verdict = self.compare(ans, gold, question)
        if not verdict.correct:
            alt = self._locale_reading(ans, gold)
            if alt is not None:
                again = self.compare(alt, gold, question)
                if again.correct:
                    return graded(True, ans, f"read as {alt}", again.path)
        return verdict

    def _locale_reading(self, ans: str, gold: Any) -> str | None:
        """``2.500.000``, ``12,50,000``, ``3'000'000`` always; ``7,5`` only against a single-number
        gold, where a two-item list could not be right anyway."""
        alt = final_answer.locale_number(ans)
        if alt is not None:
            return alt
        alt = final_answer.decimal_comma_number(ans)
        if alt is not None:
            _, gcanon = self._gold(gold)
            if gcanon is not None and gcanon[0] == "num":
                return alt
        return None

    def compare(self, ans: str, gold: Any, question: str = "") -> Verdict:
        """Exact rules first (``normalize``, then ``cascade.exact``), sympy only when they cannot decide."""
        from gradeset.verify import cascade

        gtext, _ = self._gold(gold)
        v = self._compare(ans, gold)
        if not v.correct and question and cascade.rounded_ok(gtext, ans, question):
            return graded(True, ans, "rounded as the question asks", "exact")
        return v

    def _compare(self, ans: str, gold: Any) -> Verdict:
        gtext, gcanon = self._gold(gold)
        if self.decimal_comma:
            ans = _decimal_comma(ans)
            gtext = _decimal_comma(gtext)
            gcanon = normalize.canonical(gtext)
        # notation rewrites first (units after pi, ordinals, inequalities...): see ``rewrite``
        g_r, a_r = rewrite(gtext), rewrite(ans)
        if g_r != gtext:
            gcanon = normalize.canonical(g_r)
        pcanon = normalize.canonical(a_r)
        if gcanon is not None and pcanon is not None and self.strict:  # non-strict renames variables: sympy
            decided = normalize.equal(gcanon, pcanon, self.precision)
            if decided is not None:
                return graded(decided, ans, path="exact")
        if _same_text(gtext, ans):
            return graded(True, ans, path="exact")
        from gradeset.verify import cascade

        decided = cascade.exact(gtext, ans, self.precision)
        if decided is not None and (self.strict or decided):  # non-strict may rename variables: sympy
            return graded(decided, ans, path="exact")
        if cascade.too_large(gtext) or cascade.too_large(ans):
            # beyond the exact bounds; sympy's float rounding must not decide these
            return graded(False, ans, "not compared: numbers beyond the exact path's bounds", "exact")
        if not self.symbolic:
            return graded(False, ans, "not comparable without the symbolic path", "exact")
        from gradeset.verify import symbolic

        if not symbolic.available():
            return graded(False, ans, "not comparable: install gradeset[symbolic] for the symbolic path", "exact")
        g = symbolic.parse_gold(gtext)
        p = symbolic.parse_answer(ans)
        if not p:
            return graded(False, ans, "answer not parseable", "symbolic")
        if not g:
            return graded(False, ans, "gold not parseable", "symbolic")
        ok = symbolic.symbolic_equal(g, p, self.precision, self.strict, self.allow_set_relation_comp)
        return graded(ok, ans, path="symbolic")


def _is_value(canon) -> bool:
    """A canonical form made of values only (no words): what a final sentence may state."""
    if canon is None or canon[0] == "text":
        return False
    if canon[0] in ("set", "union"):
        return all(_is_value(c) for c in canon[-1])
    if canon[0] == "seq":
        return all(_is_value(c) for c in canon[3])
    return True


def _same_text(a: str, b: str) -> bool:
    return normalize.clean(a).replace(" ", "") == normalize.clean(b).replace(" ", "")


def _decimal_comma(s: str) -> str:
    """European decimals (``2,74``): only single commas not followed by a 3-digit group."""
    return re.sub(r"^(-?\d+),(\d{1,2}|\d{4,})$|^(0),(\d+)$", lambda m: ".".join(g for g in m.groups() if g), s.strip())


def _has_prose(s: str) -> bool:
    """Words or math delimiters around the answer ("the volume of $ABCD$ is 120")."""
    return "$" in s or re.search(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}", s) is not None
