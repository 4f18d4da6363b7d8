"""The ``code`` verifier: run the model's program in the sandbox; decide pass/fail here.

Tests come from the gold (``group["answer"]`` or ``group["tests"]``) as

- assert statements (``"assert f(2) == 4"``, or a HumanEval-style ``def check(candidate)``
  program): split by ``code_tests`` into expressions that run in the sandbox and
  comparisons that run here on the plain values that come back; tests that cannot be split
  run whole in the sandbox (``in_sandbox_asserts``, on by default);
- ``{"input": ..., "output": ...}`` pairs or APPS-style ``{"inputs": [...], "outputs": [...]}``:
  the program reads stdin; its stdout is compared here (trailing whitespace ignored).

Expected values never enter the sandbox, and a test passes only when a result for it came
back from the harness (not from the program) and matched. Score is the share of tests
passed; ``execution_output`` records the pass count and the first failure.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from gradeset.verify import extract
from gradeset.verify.code_tests import EvalError, Split, evaluate, split_test
from gradeset.verify.sandbox import Backend, BadValue, choose, decode, run_job
from gradeset.verify.verdict import Verdict, unparsed

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
UNSAFE_WARNING = ("code verifier: --unsafe-no-sandbox: model-written programs run WITHOUT isolation (they can read "
                  "and write your files, use the network and outlive the run)")


def extract_code(completion: str) -> tuple[str | None, str]:
    text = extract.after_thinking(extract.strip_turn_tail(completion or ""))
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    py = [b for lang, b in blocks if lang in ("python", "py", "python3", "")]
    if py:
        return py[-1], ""
    if text.count("```") % 2 == 1:
        return None, "truncated: unclosed code block"
    if blocks:
        return None, f"no python block (found {blocks[-1][0] or 'unlabelled'})"
    if re.search(r"^\s*(def |import |from |class |print\()", text, re.MULTILINE):
        return text, ""
    return None, "no code"


def normalise_tests(gold: Any) -> list:
    if isinstance(gold, dict):
        if "tests" in gold:
            return normalise_tests(gold["tests"])
        if "inputs" in gold and "outputs" in gold:
            return [{"input": i, "output": o} for i, o in zip(gold["inputs"], gold["outputs"])]
        if "input" in gold and "output" in gold:
            return [gold]
        return []
    if isinstance(gold, str):
        lines = [ln for ln in gold.splitlines() if ln.strip()]
        return lines if lines and all(ln.lstrip().startswith("assert") for ln in lines) else ([gold] if gold.strip() else [])
    if isinstance(gold, list | tuple):
        return list(gold)
    return []


def _lines(text: str) -> str:
    return "\n".join(ln.rstrip() for ln in text.strip().splitlines())


def _short(value: Any, n: int = 200) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else "<unprintable value>"
    return text if len(text) <= n else text[:n] + f"… ({len(text)} chars)"


class CodeVerifier:
    name = "code"

    def __init__(self, test_timeout: float = 5.0, memory_mb: int = 1024, max_tests: int = 50,
                 max_output: int = 2000, max_output_bytes: int = 4 << 20, in_sandbox_asserts: bool = True,
                 sandbox: str | None = None, unsafe_no_sandbox: bool = False, nproc: int = 64):
        self.test_timeout = float(test_timeout)
        self.memory_mb = int(memory_mb)
        self.max_tests = int(max_tests)
        self.max_output = int(max_output)
        self.max_output_bytes = int(max_output_bytes)
        self.in_sandbox_asserts = bool(in_sandbox_asserts)
        self.nproc = int(nproc)
        self.unsafe = bool(unsafe_no_sandbox)
        self.backend: Backend = choose(sandbox, self.unsafe)  # refuses here (exit 2) when nothing isolates
        if self.unsafe:
            warnings.warn(UNSAFE_WARNING, RuntimeWarning, stacklevel=2)

    def time_budget(self, timeout: float) -> float:
        """The pool's per-item limit: every test may use its own time limit."""
        return max(timeout, self.test_timeout * (self.max_tests + 2) + 15)

    def __call__(self, completion: str, gold: Any) -> Verdict:
        code, why = extract_code(completion)
        if code is None:
            return unparsed(why)
        tests = normalise_tests(gold)[: self.max_tests]
        if not tests:
            return Verdict(0.0, False, code, "no tests in the gold")
        outcomes = self._grade(code, tests)
        passed = sum(ok for ok, _ in outcomes)
        log = [f"passed {passed}/{len(tests)}"]
        first = next((f"test {i}: {msg}" for i, (ok, msg) in enumerate(outcomes) if not ok), None)
        if first:
            log.append(first[: self.max_output])
        if self.unsafe:
            log.append("UNSAFE: ran without a sandbox (--unsafe-no-sandbox)")
        detail = None if passed == len(tests) else f"{len(tests) - passed} test(s) failed"
        return Verdict(passed / len(tests), passed == len(tests), code, detail, "\n".join(log))

    # ------------------------------------------------------------ planning and judging
    def _grade(self, code: str, tests: list) -> list[tuple[bool, str]]:
        calls: list[str] = []
        setup: list[str] = []
        programs: list[str] = []
        stdio: list[str] = []
        plans: list[tuple[str, Any]] = []
        for t in tests:
            if isinstance(t, dict):
                plans.append(("stdio", (len(stdio), t.get("output", ""))))
                stdio.append(str(t.get("input", "")))
                continue
            try:
                split = split_test(str(t), calls)
            except ValueError as exc:
                plans.append(("bad", str(exc)))
                continue
            if isinstance(split, Split):
                setup += [s for s in split.setup if s not in setup]
                plans.append(("split", split))
            elif self.in_sandbox_asserts:
                plans.append(("prog", len(programs)))
                programs.append(split.source)
            else:
                plans.append(("bad", f"test cannot be checked outside the sandbox ({split.why}) and "
                                     "in_sandbox_asserts is off"))
        units = len(calls) + len(programs) + len(stdio) + 2
        job = {"code": code, "setup": setup, "calls": calls if any(p[0] == "split" for p in plans) else None,
               "programs": programs, "stdio": stdio, "timeout": self.test_timeout,
               "max_bytes": self.max_output_bytes}
        res = run_job(self.backend, job, wall_timeout=self.test_timeout * units + 10, memory_mb=self.memory_mb,
                      nproc=self.nproc)
        if res.fatal or (not res.done and not res.timed_out and not (res.calls or res.progs or res.stdio)):
            why = res.fatal or f"sandbox failed: {res.stderr.strip()[-300:] or 'no result'}"
            return [(False, f"error: {why}")] * len(tests)
        return [self._judge(kind, plan, res) for kind, plan in plans]

    def _judge(self, kind: str, plan: Any, res) -> tuple[bool, str]:
        if kind == "bad":
            return False, plan
        if kind == "stdio":
            i, expected = plan
            rec = res.stdio.get(i)
            if rec is None:
                return False, "no result (the run was stopped)" + (" at the time limit" if res.timed_out else "")
            if rec.get("timeout"):
                return False, "timeout"
            got, want = _lines(str(rec.get("out", ""))), _lines(str(expected))
            if rec.get("trunc"):
                if want.startswith(got) or got.startswith(want):
                    return False, (f"output over the capture limit ({self.max_output_bytes} bytes): not compared; "
                                   "raise max_output_bytes")
                return False, f"output over the capture limit ({self.max_output_bytes} bytes) and differs: " \
                              f"expected {want[:200]!r}, got {got[:200]!r}"
            if got == want and rec.get("code") == 0:
                return True, ""
            tail = str(rec.get("err") or "").strip()[-300:]
            code = rec.get("code")
            return False, f"expected {want[:200]!r}, got {got[:200]!r}" + (f" (exit code {code})" if code else "") \
                + (f" {tail}" if tail else "")
        if kind == "prog":
            rec = res.progs.get(plan)
            if rec is None:
                return False, "no result (the run was stopped)"
            return bool(rec.get("ok") is True), str(rec.get("err") or "")
        split: Split = plan
        if res.load is None:
            return False, "no result (the run was stopped)"
        if not res.load.get("ok"):
            return False, f"the solution failed to load: {res.load.get('err')}"
        for check in split.checks:
            values = {}
            for k in check.leaves:
                rec = res.calls.get(k)
                if rec is None:
                    return False, f"assert {check.source}: no result (the run was stopped)"
                if not rec.get("ok"):
                    return False, f"assert {check.source}: {rec.get('err')}"
                try:
                    values[k] = decode(rec.get("v"))
                except BadValue as exc:
                    return False, f"assert {check.source}: bad result ({exc})"
            try:
                ok = bool(evaluate(check.expr, values))
            except (EvalError, ArithmeticError, TypeError, ValueError, KeyError, IndexError, RecursionError) as exc:
                return False, f"assert {check.source}: {type(exc).__name__}: {str(exc)[:200]}"
            if not ok:
                got = ", ".join(_short(values[k]) for k in check.leaves[:3])
                return False, f"assert {check.source} failed" + (f" (got {got})" if got else "")
        return True, ""
