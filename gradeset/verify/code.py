"""The ``code`` verifier: run the model's program against tests in the sandbox.

Tests come from the gold (``group["answer"]`` or ``group["tests"]``) as

- a list of Python statements (``"assert f(2) == 4"``), each run in its own process
  after the solution, or
- a list of ``{"input": ..., "output": ...}`` pairs, or ``{"inputs": [...], "outputs": [...]}``
  (APPS style): the program reads stdin and its stdout must match (trailing
  whitespace ignored).

Score is the share of tests passed; correct means all passed; ``execution_output``
records the pass count and the first failure's output. An assert test passes only if
the harness prints a random per-run token *after* the test ran, so a program that
calls ``os._exit(0)`` or prints "passed" does not pass.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from gradeset.verify import extract
from gradeset.verify.sandbox import run_python, sandbox_info
from gradeset.verify.verdict import Verdict, unparsed

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)

_HARNESS = """import os, sys
_fd = int(sys.argv[1]); _tok = os.read(_fd, 64); os.close(_fd)
_g = {"__name__": "__main__"}
with open("solution.py", encoding="utf-8") as _f: _src = _f.read()
with open("test.py", encoding="utf-8") as _f: _test = _f.read()
exec(compile(_src, "solution.py", "exec"), _g)
exec(compile(_test, "test.py", "exec"), _g)
sys.stdout.flush()
os.write(1, b"\\n" + _tok + b"\\n")
"""


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


class CodeVerifier:
    name = "code"

    def __init__(self, test_timeout: float = 5.0, memory_mb: int = 1024, max_tests: int = 50,
                 max_output: int = 2000):
        self.test_timeout = float(test_timeout)
        self.memory_mb = int(memory_mb)
        self.max_tests = int(max_tests)
        self.max_output = int(max_output)

    def time_budget(self, timeout: float) -> float:
        """The pool's per-item limit: every test may use its own time limit."""
        return max(timeout, self.test_timeout * self.max_tests + 10)

    def __call__(self, completion: str, gold: Any) -> Verdict:
        code, why = extract_code(completion)
        if code is None:
            return unparsed(why)
        tests = normalise_tests(gold)[: self.max_tests]
        if not tests:
            return Verdict(0.0, False, code, "no tests in the gold")
        passed, first_fail, log = 0, None, []
        for i, t in enumerate(tests):
            ok, out = self._run_one(code, t)
            passed += ok
            if not ok and first_fail is None:
                first_fail = f"test {i}: {out}"
        log.append(f"passed {passed}/{len(tests)}")
        if first_fail:
            log.append(first_fail[: self.max_output])
        info = sandbox_info()
        detail = None if passed == len(tests) else f"{len(tests) - passed} test(s) failed"
        if not info["network_isolated"]:
            log.append("sandbox: rlimits + new session + isolated python (bubblewrap not available: network not isolated)")
        return Verdict(passed / len(tests), passed == len(tests), code, detail, "\n".join(log))

    def _run_one(self, code: str, test: Any) -> tuple[bool, str]:
        if isinstance(test, dict):
            stdin = str(test.get("input", ""))
            expected = str(test.get("output", ""))
            r = run_python({"solution.py": code}, "solution.py", stdin=stdin, timeout=self.test_timeout,
                           memory_mb=self.memory_mb)
            if r.timed_out:
                return False, "timeout"
            got = "\n".join(ln.rstrip() for ln in r.stdout.strip().splitlines())
            want = "\n".join(ln.rstrip() for ln in expected.strip().splitlines())
            if got == want and r.returncode == 0:
                return True, ""
            return False, f"expected {want[:200]!r}, got {got[:200]!r} {r.stderr[-300:]}"
        token = secrets.token_hex(16)
        r = run_python({"solution.py": code, "test.py": str(test), "harness.py": _HARNESS}, "harness.py",
                       timeout=self.test_timeout, memory_mb=self.memory_mb, secret=token.encode())
        if r.timed_out:
            return False, "timeout"
        if r.stdout.rstrip().endswith(token) and r.returncode == 0:
            return True, ""
        err = r.stderr.strip().splitlines()
        return False, (err[-1] if err else f"exit code {r.returncode}")[:500]
