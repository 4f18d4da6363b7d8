"""Find the final answer in a completion without reading the reasoning as an answer.

Everything here is plain string scanning with bounded work: brace matching is a
linear scan (10,000 nested braces cost 10,000 steps, no recursion), regexes are
anchored on literal markers, and nothing is evaluated.
"""

from __future__ import annotations

import re

# Chat special tokens after which a model is hallucinating the next turn.
_TURN_END = re.compile(r"<\|im_end\|>|<\|im_start\|>|<\|endoftext\|>|<\|eot_id\|>|<\|end\|>|</s>|<\|user\|>"
                       r"|<\|start_header_id\|>|<\|eom_id\|>|<end_of_turn>|<start_of_turn>")
_TURN_OPEN_KEYS = ("assistant", "<s>", "INST]", "<|begin_of_text|>", "<bos>", "<start_of_turn>")
_LEADING_TURN_END = re.compile(r"(?:\s*+(?:" + _TURN_END.pattern + r"))*+")  # possessive: no backtracking
# Template debris that opens the assistant's own turn: removed, never a reason to stop reading.
_TURN_OPEN = re.compile(r"<\|im_start\|>[ \t]*assistant[ \t]*\n?|<\|start_header_id\|>[ \t]*assistant[ \t]*"
                        r"<\|end_header_id\|>\s?|<start_of_turn>[ \t]*model[ \t]*\n?|<\|assistant\|>|<s>|\[/?INST\]"
                        r"|<\|begin_of_text\|>|<bos>")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
# Only the last boxes of a completion can be its answer (runs, hedges and corrections look a few
# boxes back); a hostile text with 100k boxes is read from its last MAX_BOXES.
MAX_BOXES = 256
_BARE_BOX = re.compile(r"[^\s$]+")
_HASHES = re.compile(r"####\s*([^\n]+)")
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)

# Tags a task's format can ask for; name -> (open, close).
TAG_PAIRS = {
    "solution": ("<SOLUTION>", "</SOLUTION>"),
    "answer": ("<answer>", "</answer>"),
}


# A final answer is stated near the end: markers further than this from the end are reasoning,
# and not scanning past it keeps a hostile megabyte from costing a regex scan per marker kind.
HORIZON = 100_000


def last_match(rx: re.Pattern, text: str, window: int = 2000, horizon: int | None = None) -> re.Match | None:
    """The last non-overlapping match (forward scans: no quadratic backtracking from the end).

    The closing ``window`` characters are scanned first; answers live there, and a long
    completion is then read once instead of once per marker kind. With ``horizon``, nothing
    before the last ``horizon`` characters is scanned.
    """
    found = None
    if len(text) > window:
        for found in rx.finditer(text, len(text) - window):  # noqa: B007
            pass
        if found is not None:
            return found
    start = 0 if horizon is None else max(0, len(text) - horizon)
    for found in rx.finditer(text, start):  # noqa: B007
        pass
    return found


_PHRASE_TAIL = re.compile(r"answer[ \t*]{0,4}(is\b|:)\s{0,4}")
_PHRASE_HEAD = re.compile(r"(final|the)\s+$")
_LEAD_NOISE = re.compile(r"^\s*:?\s*(?:\*\*|__|\*|_(?=\S))?")
_EMPHASIS = re.compile(r"^(?:\*\*|__|\*)|(?:\*\*|__|\*)$")


class _Span:
    """start/end/group(0) of a final-answer phrase (the subset of re.Match callers use)."""

    __slots__ = ("_end", "_start", "_text")

    def __init__(self, text: str, start: int, end: int):
        self._text, self._start, self._end = text, start, end

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end

    def group(self, _: int = 0) -> str:
        return self._text[self._start:self._end]


def last_phrase(text: str, end: int | None = None) -> _Span | None:
    """The last "final answer is/:", "the answer is" or "answer:" (case-insensitive) before ``end``.

    Found with ``rfind`` on the word "answer" instead of a regex scan of the whole text:
    the phrase test runs on every completion, which is mostly reasoning.
    """
    spans = phrases(text, end, limit=1)
    return spans[0] if spans else None


def phrases(text: str, end: int | None = None, limit: int = 12, low: str | None = None) -> list[_Span]:
    """Up to ``limit`` answer phrases, last first (bounded work however often "answer" occurs)."""
    low = text.lower() if low is None else low
    i = len(low) if end is None else end
    out: list[_Span] = []
    looked = 0
    while len(out) < limit and looked < 200:
        i = low.rfind("answer", 0, i)
        if i < 0:
            break
        looked += 1
        m = _PHRASE_TAIL.match(low, i)
        if m:
            head = _PHRASE_HEAD.search(low, max(0, i - 12), i)
            if m.group(1) == ":" or head is not None:
                out.append(_Span(text, head.start() if head is not None else i, m.end()))
    return out


def strip_turn_tail(text: str) -> str:
    """Cut the text at the first chat special token after some content (the model started a fake
    next turn); template tokens that open the assistant's turn, or end-tokens before any content,
    are debris and are skipped, so ``<|im_start|>assistant\n… \\boxed{7}`` keeps its answer."""
    if "<" not in text and "[" not in text:
        return text
    if any(k in text for k in _TURN_OPEN_KEYS):
        text = _TURN_OPEN.sub("", text)
    start = _LEADING_TURN_END.match(text).end()  # end tokens before any content: debris
    m = _TURN_END.search(text, start)
    return text[start:m.start()] if m else text[start:]


def after_thinking(text: str) -> str:
    """The part after ``</think>`` (the answer); an unclosed ``<think>`` leaves nothing."""
    if "think>" not in text and "THINK>" not in text and "Think>" not in text:
        return text
    close = last_match(_THINK_CLOSE, text)
    if close is not None:
        return text[close.end():]
    if _THINK_OPEN.search(text):
        return ""
    return text


def match_brace(text: str, open_index: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at open_index, or None if unbalanced.

    Escaped braces (``\\{``) are ordinary characters for this count only in pairs, which
    is how LaTeX writers use them inside \\boxed (sets).
    """
    return closing_braces(text, [open_index]).get(open_index)


_BRACE_RUN = re.compile(r"\{[{]*|\}[}]*")  # written so the engine scans for a brace in C


def closing_braces(text: str, opens: list[int]) -> dict[int, int]:
    """For each ``{`` index in ``opens`` (ascending), the index of its closing ``}``.

    One pass over *runs* of braces (``{{{{`` is one step, found by the regex engine), with a
    stack of the pending opens: 8,000 nested ``\\boxed{`` or 10,000 nested braces cost one
    scan, not one scan per box, and not one Python step per brace.
    """
    out: dict[int, int] = {}
    if not opens:
        return out
    want = iter(opens)
    nxt = next(want, None)
    pending: list[tuple[int, int]] = []  # (depth once this brace is open, its index)
    depth = 0
    for m in _BRACE_RUN.finditer(text, opens[0]):
        a, b = m.span()
        if a > 0 and text[a - 1] == "\\":
            a += 1  # an escaped brace opens the run: an ordinary character
            if a == b:
                continue
        if text[a] == "{":
            while nxt is not None and nxt < a:
                nxt = next(want, None)  # an escaped or skipped position: not an open brace
            while nxt is not None and a <= nxt < b:
                pending.append((depth + nxt - a + 1, nxt))
                nxt = next(want, None)
            depth += b - a
        else:
            k = b - a
            while pending and pending[-1][0] > depth - k:
                d, idx = pending.pop()
                out[idx] = a + (depth - d)
            depth = max(0, depth - k)  # stray closers before our opens do not count
        if not pending and nxt is None:
            break
    return out


def _last_boxes(text: str) -> list[re.Match]:
    """The last MAX_BOXES ``\\boxed``/``\\fbox`` markers in order, found backwards with ``rfind``."""
    found: list[re.Match] = []
    for name in ("\\boxed", "\\fbox"):
        i, n = len(text), 0
        while n < MAX_BOXES:
            i = text.rfind(name, 0, i)
            if i < 0:
                break
            m = _BOXED.match(text, i)
            if m is not None:
                found.append(m)
                n += 1
    found.sort(key=lambda m: m.start())
    return found[-MAX_BOXES:]


_SPANS_MEMO: list = [None, None]  # the last text and its spans: one completion asks several times


def box_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every complete outermost ``\\boxed{}`` / ``\\fbox{}``, in order
    (the last MAX_BOXES markers)."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return []
    if _SPANS_MEMO[0] is text:
        return list(_SPANS_MEMO[1])
    spans = _box_spans(text)
    _SPANS_MEMO[0], _SPANS_MEMO[1] = text, tuple(spans)
    return spans


def _box_spans(text: str) -> list[tuple[int, int, str]]:
    boxes = [m for m in _last_boxes(text) if m.end() < len(text) and text[m.end()] == "{"]
    pairs = closing_braces(text, [m.end() for m in boxes])
    spans: list[tuple[int, int, str]] = []
    for m in boxes:
        start = m.end()
        end = pairs.get(start)
        if end is not None:
            if spans and m.start() < spans[-1][1]:
                continue  # a box nested inside the previous one
            spans.append((m.start(), end + 1, text[start + 1:end].strip()))
    return spans


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` / ``\\fbox{...}``; ``\\boxed 5`` too."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return None
    boxes = _last_boxes(text)
    pairs = closing_braces(text, [m.end() for m in boxes if m.end() < len(text) and text[m.end()] == "{"])
    for m in reversed(boxes):
        start = m.end()
        if start < len(text) and text[start] == "{":
            end = pairs.get(start)
            if end is None:
                continue  # unclosed box (truncated): look for an earlier complete one
            return text[start + 1:end].strip()
        tail = _BARE_BOX.match(text, start)
        if tail:
            return tail.group(0).strip()
    return None


_BOX_JOIN = re.compile(r"^(?:\s|,|;|\$|[a-zA-Z](?:_\{?\w+\}?)?\s*=|\\quad|\\qquad|\\text\{[^{}]{0,30}\}|and|or|\\\(|\\\)|\\\[|\\\]|&)*$")


_WORDS_AND = re.compile(r"^[\sa-zA-Z,;]*\b(?:and|or)\b[\s,;]*$")


def boxed_run(text: str, lenient: bool = False) -> str | None:
    """The last box, or the last run of boxes written as one answer (``\boxed{1} and \boxed{2}``)."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return None
    spans = box_spans(text)
    if not spans:
        return last_boxed(text)
    run = [spans[-1]]
    for prev in reversed(spans[:-1]):
        between = text[prev[1]:run[-1][0]]
        if len(between) > 60 or not (_BOX_JOIN.match(between) or lenient and (_WORDS_AND.match(between) or not re.search(r"[a-zA-Z0-9]", between))):
            break
        run.append(prev)
    if len(run) == 1:
        return run[0][2]
    return ", ".join(r[2] for r in reversed(run))


def unclosed_last_box(text: str) -> bool:
    """The last ``\\boxed{`` never closes: the completion was cut inside its answer."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return False
    m = last_match(_BOXED, text)
    if m is None or m.end() >= len(text) or text[m.end()] != "{":
        return False
    return match_brace(text, m.end()) is None


def tag_content(text: str, open_tag: str, close_tag: str) -> str | None:
    """Content of the last complete open…close tag pair (case-insensitive)."""
    lower = text.lower()
    o, c = open_tag.lower(), close_tag.lower()
    start = lower.rfind(o)
    if start < 0:
        return None
    end = lower.find(c, start + len(o))
    if end < 0:
        return None
    return text[start + len(o):end].strip()


def hashes_answer(text: str) -> str | None:
    """GSM8K's ``#### 42`` line (the last one)."""
    found = last_match(_HASHES, text)
    return found.group(1).strip() if found else None


# What follows "the answer is" when it is commentary or a plan, not an answer.
_NOT_AN_ANSWER = re.compile(
    r"(?:let\b|let's|we\b|we'll|i\b|i'll|i'm|i've|to\b|first\b|this\b|that\b|it\b|reasonable|correct\b|"
    r"consistent|confirmed|verified|right\b|wrong\b|not\b|likely\b|valid\b|plausible|sensible|checked|"
    r"below\b|as follows|given by\b|shown\b|in the following|based on|simply\b|clearly\b|obviously\b|"
    r"(?:the\s+)?same\b|different\b|unchanged|incorrect|close|determined|found|computed|calculated)",
    re.IGNORECASE)
_RESTATE = re.compile(r"(?:actually|really|indeed|now|instead|still|definitely|therefore|thus|so|then)\b[,:]?\s*",
                      re.IGNORECASE)


def phrase_content(text: str, pos: int) -> str | None:
    """The answer written after a phrase ending at ``pos``, up to the sentence end; None when
    what follows is commentary ("is reasonable because …") or a plan ("Answer: let me …")."""
    rest = text[pos:pos + 4000]
    rest = rest.split("\n\n", 1)[0]
    # "The answer is: **42**." -- a colon after "is" and Markdown emphasis are not the answer
    rest = _LEAD_NOISE.sub(" ", rest)
    stripped = rest.lstrip()
    m = _RESTATE.match(stripped)
    if m:  # "the answer is actually B"
        stripped = stripped[m.end():]
    if _NOT_AN_ANSWER.match(stripped):
        return None
    rest = " " + stripped
    # a $...$ span right after the phrase is the answer (it may contain periods)
    m = re.match(r"\s*(\$\$?)(.+?)\1", rest, re.DOTALL)
    if m:
        return m.group(2).strip()
    m = re.match(r"\s*\\[(\[](.+?)\\[)\]]", rest, re.DOTALL)
    if m:
        return m.group(1).strip()
    # up to a sentence end: ". " or end of line, keeping decimal points
    m = re.match(r"(.+?)(?:\.(?:\s|$)|\n|$)", rest.strip())
    ans = _EMPHASIS.sub("", (m.group(1) if m else rest).strip().rstrip(".")).strip()
    if ans.lower().startswith("i hope"):
        return None
    return ans or None


def final_phrase(text: str) -> str | None:
    """What follows the last "final answer is" / "The answer is" / "Answer:", up to the sentence end."""
    found = last_phrase(text)
    if found is None:
        return None
    return phrase_content(text, found.end())


def committed_phrase(text: str) -> tuple[_Span, str] | None:
    """The last answer phrase followed by an answer (commentary phrases after it are skipped)."""
    low = text.lower()
    for span in phrases(text, low=low):
        content = phrase_content(text, span.end())
        if content is not None:
            return span, content
    return None


def overrides_box(content: str) -> bool:
    """A phrase after a box replaces it only when it states a value, not when it comments."""
    from gradeset.verify.final_answer import normalize_answer
    from gradeset.verify.normalize import canonical

    return len(content) <= 200 and canonical(normalize_answer(content)) is not None


def _last_boxed_pos(text: str) -> int:
    return text.rfind("\\boxed") if "\\boxed" in text else text.rfind("\\fbox")


def weak_phrase_far_from_end(text: str, window: int = 300) -> bool:
    """The deciding phrase is a bare "Answer:" far from the end (prompts often start "Answer: let's
    think"); "final answer is" and "the answer is" are strong wherever they are."""
    m = last_phrase(text)
    if m is None or len(text) - m.start() <= window:
        return False
    return m.group(0).strip().lower().startswith("answer")


def extract_final(text: str, tags: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
    """(answer, marker) from the last final-answer marker; (None, None) when there is none.

    Requested tags win. Otherwise the marker written last wins: a model that boxes an
    intermediate result and then writes "The final answer is $10,455$" means the latter.
    """
    for tag in tags:
        pair = TAG_PAIRS.get(tag)
        if pair:
            got = tag_content(text, *pair)
            if got is not None:
                boxed = boxed_run(got)
                return (boxed if boxed is not None else got), tag
    found: list[tuple[int, str, str]] = []
    boxed = boxed_run(text)
    if boxed is not None:
        found.append((_last_boxed_pos(text), boxed, "boxed"))
    h = last_match(_HASHES, text) if "####" in text else None
    if h is not None:
        found.append((h.start(), h.group(1).strip(), "####"))
    got = committed_phrase(text) if "nswer" in text or "NSWER" in text else None
    if got is not None and (not found or got[0].start() > max(f[0] for f in found)):
        ph, p = got
        inner = last_boxed(p)
        if inner is not None or not found or overrides_box(p):
            found.append((ph.start(), inner if inner is not None else p, "phrase"))
    if not found:
        return None, None
    _, ans, marker = max(found, key=lambda f: f[0])
    return ans, marker


_ENDS_CLEANLY = re.compile(r"""(?:[.!?)\]}$'"*]|\\\]|\\\)|\d|[a-zA-Z]{0,20}[.!?])\s*$""")


def looks_truncated(text: str, limit: int = 400) -> bool:
    """A long completion that stops mid-sentence was cut by the token limit.

    Short texts are final answers by construction ("42", "x = 5"); long ones without a
    marker are graded only when they end like a finished sentence.
    """
    if len(text) <= limit:
        return False
    if re.search(r"\\boxed\s*\{[^}]*$", text[-200:]):
        return True
    return not _ENDS_CLEANLY.search(text[-50:])


_DANGLING = re.compile(
    r"(?:[,:;=+\-*/^(]|\b(?:and|or|but|then|so|thus|hence|the|a|an|of|to|with|is|are|was|be|we|by|for|"
    r"plus|minus|times|over|from|into|gives|get|that|which|if|because))\s*$", re.IGNORECASE)


def stops_mid_sentence(text: str) -> bool:
    """The text ends on a word or sign that cannot end a sentence ("... then we add 7 and").

    Used for short completions, where the length-based check does not apply: a text cut
    there has no answer, and its last number is a step of the reasoning.
    """
    return bool(_DANGLING.search(text[-30:]))
