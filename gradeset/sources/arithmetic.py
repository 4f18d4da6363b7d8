"""Seed 002's arithmetic preference data, without its duplicates, overlap and easy negatives.

Seed 002 draws two numbers in 1..100 per operator and writes, for each accepted draw,
a direct question and its find-x forms::

    +   a+b=?      x-a=b,x=?                       (skipped when a+b > 100)
    -   a-b=?      x+b=a,x=? | b+x=a,x=?   a-x=b,x=?
    *   a*b=?      x/b=a,x=?                       (skipped when a*b > 100)
    /   a/b=?      b*x=a,x=? | x*b=a,x=?   a/x=b,x=?   (a rounded down to a multiple of b;
                                                         quotient 1 kept only half the time)

with ``"{question} The answer is {answer} because {calculation}."`` as the positive and
"Sorry, I don't know." as the negative, 100,000 rows per operator (~400k), and a test
file of ``{"question", "answer"}`` from a second run with 100 per operator.

Those rules allow exactly :data:`DISTINCT_PROMPTS` (52,792) different questions, so
400k rows are ~87% duplicates, and the second run overlaps the first. Here, by default:

* every prompt appears once (``allow_duplicates=True`` restores the seed's sampling,
  with its per-operator counts and its duplicates);
* the test prompts are drawn first and never appear in training (in both modes);
* negatives can be ``refusal`` (the seed's), ``wrong-answer`` (a plausible wrong
  answer: off by one, sign flipped, or an operator slip, each checked to differ from
  the right answer) or ``mixed`` (half and half).

Everything is reproducible from ``seed``. The whole question space is enumerated once
(~53k items) and sampling works on integer ids, which is what makes this several
times faster than the seed's loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

REFUSAL = "Sorry, I don't know."
OPERATORS = ("+", "-", "*", "/")
OP_NAMES = {"+": "addition", "-": "subtraction", "*": "multiplication", "/": "division"}
NEGATIVES = ("refusal", "wrong-answer", "mixed")
SEED_PER_OPERATOR = 100_000  # generate_data()'s default num_samples
SEED_TEST_PER_OPERATOR = 100  # generate_data(100) for the test file
DEFAULT_N = 400_000
DEFAULT_TEST_N = 400
SOURCE = "synth:arithmetic"


class Space:
    """Every distinct question seed 002's rules can produce, as parallel lists (fast to build).

    ``table[(op, form)]`` is a 101x101 array of item ids indexed by the seed's two draws
    (for division: quotient and divisor), -1 where the rules skip the draw.
    """

    def __init__(self) -> None:
        import numpy as np

        self.op: list[str] = []
        self.form: list[str] = []
        self.question: list[str] = []
        self.answer: list[int] = []
        self.calc: list[str] = []
        self.a: list[int] = []
        self.b: list[int] = []
        self.table: dict[tuple[str, str], np.ndarray] = {}
        self._wrong: dict[int, list[tuple[str, int, str]]] = {}
        self._line: dict[int, str] = {}
        self._tail: dict[int, str] = {}
        r = range(1, 101)

        tables: dict[tuple[str, str], list[int]] = {}

        def add(op, form, k1, k2, question, answer, calc, a, b):
            t = tables.get((op, form))
            if t is None:
                t = tables[(op, form)] = [-1] * (101 * 101)
            t[k1 * 101 + k2] = len(self.question)
            self.op.append(op)
            self.form.append(form)
            self.question.append(question)
            self.answer.append(answer)
            self.calc.append(calc)
            self.a.append(a)
            self.b.append(b)

        for n1 in r:
            for n2 in range(1, 101 - n1):
                ans = n1 + n2
                calc = f"{n1}+{n2} equals {ans}"
                add("+", "direct", n1, n2, f"{n1}+{n2}=?", ans, calc, n1, n2)
                add("+", "x-a=b", n1, n2, f"x-{n1}={n2},x=?", ans, calc, n1, n2)
        for n1 in r:
            for n2 in r:
                ans = n1 - n2
                calc = f"{n1}-{n2} equals {ans}"
                add("-", "direct", n1, n2, f"{n1}-{n2}=?", ans, calc, n1, n2)
                add("-", "x+b=a", n1, n2, f"x+{n2}={n1},x=?", ans, calc, n1, n2)
                add("-", "b+x=a", n1, n2, f"{n2}+x={n1},x=?", ans, calc, n1, n2)
                add("-", "a-x=b", n1, n2, f"{n1}-x={n2},x=?", ans, calc, n1, n2)
        for n1 in r:
            for n2 in range(1, 100 // n1 + 1):
                ans = n1 * n2
                calc = f"{n1}*{n2} equals {ans}"
                add("*", "direct", n1, n2, f"{n1}*{n2}=?", ans, calc, n1, n2)
                add("*", "x/b=a", n1, n2, f"x/{n2}={n1},x=?", ans, calc, n1, n2)
        for q in r:
            for n2 in range(1, 100 // q + 1):
                n1 = q * n2
                calc = f"{n1}/{n2} equals {q}"
                add("/", "direct", q, n2, f"{n1}/{n2}=?", q, calc, n1, n2)
                add("/", "b*x=a", q, n2, f"{n2}*x={n1},x=?", q, calc, n1, n2)
                add("/", "x*b=a", q, n2, f"x*{n2}={n1},x=?", q, calc, n1, n2)
                add("/", "a/x=b", q, n2, f"{n1}/x={n2},x=?", q, calc, n1, n2)
        self.table = {k: np.array(v, dtype=np.int64).reshape(101, 101) for k, v in tables.items()}

    def __len__(self) -> int:
        return len(self.question)

    def positive_text(self, i: int) -> str:
        return f"The answer is {self.answer[i]} because {self.calc[i]}."

    def positive_line(self, i: int) -> str:
        """The start of a seed-layout JSON line for item i (cached: dup-mode rows repeat items)."""
        line = self._line.get(i)
        if line is None:
            line = self._line[i] = f'{{"positive": "{self.question[i]} {self.positive_text(i)}"'
        return line

    def wrong_tail(self, i: int, u: float) -> str:
        """The negative half of a seed-layout JSON line with a wrong answer (cached per choice)."""
        wrong = self.wrong(i)
        k = int(u * len(wrong))
        key = i * 8 + k
        tail = self._tail.get(key)
        if tail is None:
            _, value, calc = wrong[k]
            tail = self._tail[key] = f', "negative": "{self.question[i]} The answer is {value} because {calc}."}}\n'
        return tail

    def wrong(self, i: int) -> list[tuple[str, int, str]]:
        """Plausible wrong answers of item i (off by one, sign flip, operator slip), each != the answer."""
        got = self._wrong.get(i)
        if got is not None:
            return got
        answer, op, a, b = self.answer[i], self.op[i], self.a[i], self.b[i]
        expr = self.calc[i].rsplit(" equals ", 1)[0]
        cands = [("off-by-one", answer + 1, f"{expr} equals {answer + 1}"),
                 ("off-by-one", answer - 1, f"{expr} equals {answer - 1}")]
        if answer != 0:
            cands.append(("sign-flip", -answer, f"{expr} equals {-answer}"))
        for slip_expr, value in _slips(op, a, b):
            cands.append(("operator-slip", value, f"{slip_expr} equals {value}"))
        seen: set[int] = set()
        out = []
        for kind, value, calc in cands:
            if value != answer and value not in seen:
                seen.add(value)
                out.append((kind, value, calc))
        self._wrong[i] = out
        return out


def _slips(op: str, a: int, b: int) -> list[tuple[str, int]]:
    """What a model computes when it applies the wrong operator (integer results only)."""
    out = []
    for other in OPERATORS:
        if other == op:
            continue
        if other == "+":
            out.append((f"{a}+{b}", a + b))
        elif other == "-":
            out.append((f"{a}-{b}", a - b))
        elif other == "*":
            out.append((f"{a}*{b}", a * b))
        elif b and a % b == 0:
            out.append((f"{a}/{b}", a // b))
    return out


_SPACE: Space | None = None


def space() -> Space:
    global _SPACE
    if _SPACE is None:
        _SPACE = Space()
    return _SPACE


DISTINCT_PROMPTS = 52_792  # len(space()); checked by the tests


@dataclass
class Result:
    """Item ids of the training rows and the test rows, plus what the caller should be told."""

    train: list[int]
    test: list[int]
    negatives: list[float]  # per training row: -1 = refusal, else u in [0, 1) picking a wrong answer
    notes: list[str]


def _split_quota(total: int, caps: dict[str, int]) -> dict[str, int]:
    """total spread evenly over operators (as the seed does), leftovers to those with room."""
    quota = dict.fromkeys(caps, 0)
    left = total
    open_ops = [op for op in caps if caps[op] > 0]
    while left > 0 and open_ops:
        share, extra = divmod(left, len(open_ops))
        for i, op in enumerate(open_ops):
            give = min(share + (1 if i < extra else 0), caps[op] - quota[op])
            quota[op] += give
            left -= give
        open_ops = [op for op in open_ops if quota[op] < caps[op]]
    return quota


def parse_operators(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"+-"``, ``"+,-"`` or ``["+", "-"]`` -> operators in seed order; None -> all four.

    A subset narrows the question space *before* anything is drawn, so the test file
    and the training rows come from the same operators: a model built on a subset is
    then evaluated on held-out questions of the same kind."""
    if spec is None or spec == "" or spec == []:
        return OPERATORS
    items = list(spec) if isinstance(spec, (list, tuple)) else [c for c in str(spec) if not c.isspace() and c != ","]
    bad = sorted({str(o) for o in items} - set(OPERATORS))
    if bad:
        raise ValueError(f"unknown operator(s) {' '.join(bad)}; choose from {' '.join(OPERATORS)}")
    return tuple(o for o in OPERATORS if o in items)


def sample(n: int = DEFAULT_N, seed: int = 0, negatives: str = "refusal", allow_duplicates: bool = False,
           test_n: int = DEFAULT_TEST_N, operators: str | list[str] | tuple[str, ...] | None = None) -> Result:
    """Choose the training and test questions (as item ids) and each row's negative.

    With every operator (the default) the draws are exactly the ones earlier releases
    made for the same seed; a subset draws from that subset only."""
    import numpy as np

    ops_used = parse_operators(operators)
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {', '.join(NEGATIVES)}, not {negatives!r}")
    if n < 0 or test_n < 0:
        raise ValueError("n and test_n must be >= 0")
    sp = space()
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    ops = np.array([OPERATORS.index(o) for o in sp.op])
    by_op = {op: rng.permutation(np.flatnonzero(ops == k)) for k, op in enumerate(OPERATORS) if op in ops_used}
    space_size = sum(len(v) for v in by_op.values())
    # test prompts first, spread over the operators like the seed's test run
    test_quota = _split_quota(min(test_n, space_size), {op: len(v) for op, v in by_op.items()})
    test = [int(i) for op in ops_used for i in by_op[op][: test_quota[op]]]
    pools = {op: by_op[op][test_quota[op]:] for op in ops_used}
    if allow_duplicates:
        train = _seed_sampling(n, rng, sp, np.array(test, dtype=np.int64), ops_used)
    else:
        available = sum(len(p) for p in pools.values())
        if n > available:
            notes.append(
                f"--n {n} is more than the distinct prompts there are: seed 002's rules ({len(ops_used)} "
                f"operator(s) {''.join(ops_used)}, its question forms, numbers in -100..100) allow "
                f"{space_size:,} distinct questions, {len(test):,} "
                f"of them held out for the test file, so {available:,} training rows are written. "
                "--allow-duplicates samples with repeats as seed 002 does")
        quota = _split_quota(min(n, available), {op: len(p) for op, p in pools.items()})
        chosen = np.concatenate([pools[op][: quota[op]] for op in ops_used])
        train = rng.permutation(chosen).tolist()
    u = rng.random(len(train))
    if negatives == "refusal":
        u[:] = -1.0
    elif negatives == "mixed":
        u[rng.random(len(train)) < 0.5] = -1.0
    return Result(train, test, u.tolist(), notes)


def _seed_sampling(n: int, rng, sp: Space, test: np.ndarray, ops_used: tuple[str, ...] = OPERATORS) -> list[int]:
    """Seed 002's generate_data loop, vectorised: the same draws (two numbers in 1..100),
    the same skip rules and find-x coin flips, the same per-operator counts (in whole
    draws, so ~100,002 for three-row operators), duplicates included.

    Rows whose question is in the test set are left out (and drawn again), so the test
    stays unseen.
    """
    import numpy as np

    per_op = -(-n // len(ops_used)) if n else 0
    is_test = np.zeros(len(sp), dtype=bool)
    is_test[test] = True
    out: list[np.ndarray] = []
    t = sp.table
    for op in ops_used:
        got: list[np.ndarray] = []
        have = 0
        while have < per_op:
            m = max(4096, per_op * 3)
            n1 = rng.integers(1, 101, m)
            n2 = rng.integers(1, 101, m)
            coin = rng.integers(0, 2, m)
            if op == "+":
                keep = n1 + n2 <= 100
                n1, n2 = n1[keep], n2[keep]
                rows = np.stack([t[("+", "direct")][n1, n2], t[("+", "x-a=b")][n1, n2]], axis=1)
            elif op == "-":
                fx = np.where(coin == 0, t[("-", "x+b=a")][n1, n2], t[("-", "b+x=a")][n1, n2])
                rows = np.stack([t[("-", "direct")][n1, n2], fx, t[("-", "a-x=b")][n1, n2]], axis=1)
            elif op == "*":
                keep = n1 * n2 <= 100
                n1, n2 = n1[keep], n2[keep]
                rows = np.stack([t[("*", "direct")][n1, n2], t[("*", "x/b=a")][n1, n2]], axis=1)
            else:
                hi, lo = np.maximum(n1, n2), np.minimum(n1, n2)
                q = hi // lo
                skip_coin = rng.integers(0, 2, m)
                keep = (q != 1) | (skip_coin == 1)
                q, lo, coin = q[keep], lo[keep], coin[keep]
                fx = np.where(coin == 0, t[("/", "b*x=a")][q, lo], t[("/", "x*b=a")][q, lo])
                rows = np.stack([t[("/", "direct")][q, lo], fx, t[("/", "a/x=b")][q, lo]], axis=1)
            ok = ~is_test[rows]
            kept = rows[ok]  # row-major: draw by draw, in the seed's order within a draw
            # stop after the draw that reaches the quota, like the seed's `while i < num_samples`
            per_draw = ok.sum(axis=1)
            csum = np.cumsum(per_draw) + have
            stop = int(np.searchsorted(csum, per_op)) + 1
            if stop <= len(rows):
                kept = kept[: int(csum[stop - 1] - have)]
            got.append(kept)
            have += len(kept)
        out.append(np.concatenate(got) if got else np.empty(0, dtype=np.int64))
    return np.concatenate(out).tolist() if out else []


# ----------------------------------------------------------------------------- rows and groups

def negative_of(sp: Space, i: int, u: float) -> tuple[str, str, int | None]:
    """(kind, text without the question, wrong answer or None) of a row's negative."""
    if u < 0:
        return "refusal", REFUSAL, None
    wrong = sp.wrong(i)
    kind, value, calc = wrong[int(u * len(wrong))]
    return kind, f"The answer is {value} because {calc}.", value


def seed002_rows(res: Result) -> Iterator[dict]:
    """Rows in seed 002's layout: positive = question + answer; negative as the seed writes it.

    A refusal stands alone (as in the seed); a wrong answer repeats the question like the
    positive, so the pair differs only in the answer.
    """
    sp = space()
    for i, u in zip(res.train, res.negatives):
        _, text, _ = negative_of(sp, i, u)
        yield {"positive": f"{sp.question[i]} {sp.positive_text(i)}",
               "negative": text if u < 0 else f"{sp.question[i]} {text}"}


def seed002_jsonl(res: Result, chunk: int = 65536) -> Iterator[bytes]:
    """The same rows as JSON Lines, formatted directly (the texts hold no quote or backslash)."""
    sp = space()
    refusal = f', "negative": "{REFUSAL}"}}\n'
    line = sp.positive_line
    buf: list[str] = []
    for i, u in zip(res.train, res.negatives):
        if u < 0:
            buf.append(line(i) + refusal)
        else:
            buf.append(line(i) + sp.wrong_tail(i, u))
        if len(buf) >= chunk:
            yield "".join(buf).encode()
            buf = []
    if buf:
        yield "".join(buf).encode()


def group_of(sp: Space, i: int, u: float) -> dict:
    """A training group: the prompt, its answer, and [positive, negative] scored 1 and 0."""
    from gradeset.records import ensure_id

    kind, text, wrong = negative_of(sp, i, u)
    neg: dict = {"text": text, "score": 0.0, "correct": False, "meta": {"negative": kind}}
    if wrong is not None:
        neg["parsed"] = str(wrong)
    g = {"prompt": sp.question[i], "answer": sp.answer[i], "task": "math", "category": OP_NAMES[sp.op[i]],
         "source": SOURCE, "form": sp.form[i],
         "responses": [{"text": sp.positive_text(i), "score": 1.0, "correct": True, "parsed": str(sp.answer[i])},
                       neg]}
    return ensure_id(g)


def test_group(sp: Space, i: int) -> dict:
    from gradeset.records import ensure_id

    return ensure_id({"prompt": sp.question[i], "answer": sp.answer[i], "task": "math",
                      "category": OP_NAMES[sp.op[i]], "source": SOURCE, "form": sp.form[i], "responses": []})


def test_rows(res: Result) -> Iterator[dict]:
    """Seed 002's test layout: ``{"question": "79-7=?", "answer": 72}``."""
    sp = space()
    for i in res.test:
        yield {"question": sp.question[i], "answer": sp.answer[i]}


def generate(n: int = DEFAULT_N, seed: int = 0, negatives: str = "refusal", allow_duplicates: bool = False,
             test_n: int = DEFAULT_TEST_N, operators: str | list[str] | None = None) -> tuple[list[dict], list[dict]]:
    """(training groups, test groups): the library form of ``gradeset synth arithmetic``."""
    res = sample(n, seed, negatives, allow_duplicates, test_n, operators)
    sp = space()
    train = [group_of(sp, i, u) for i, u in zip(res.train, res.negatives)]
    test = [test_group(sp, i) for i in res.test]
    return train, test


def synth_groups(n: int = 3000, seed: int = 0, negatives: str = "wrong-answer", allow_duplicates: bool = False,
                 test_n: int = DEFAULT_TEST_N, test_out: str | None = None,
                 prompts_only: bool = False, operators: str | list[str] | None = None) -> tuple[list[dict], list[dict]]:
    """Pipeline source ``synth: arithmetic``: groups, and the test file written when ``test_out`` is set.

    Defaults suit a quick pipeline (3,000 prompts, wrong-answer negatives); the CLI keeps
    the seed's defaults. ``prompts_only`` leaves out the synthetic positive/negative
    responses, for pipelines that sample their responses from a model (on-policy data).
    """
    train, test = generate(n, seed, negatives, allow_duplicates, test_n, operators)
    if prompts_only:
        train = [{**g, "responses": []} for g in train]
    if test_out:
        from gradeset.io import write_rows

        write_rows(test_out, ({"question": g["prompt"], "answer": g["answer"]} for g in test))
    return train, test
