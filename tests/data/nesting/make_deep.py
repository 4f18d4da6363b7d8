"""Write deep.jsonl: grouped rows whose prompt, response text, response meta or answer is
nested 100, 1000 or 1023 levels deep (orjson reads at most 1024), around two plain rows.

Why: a recursive walk over row values dies with RecursionError on such rows; every command
must reject them with a reason instead of a traceback. Run: python make_deep.py
"""

from __future__ import annotations

from pathlib import Path

DEPTHS = (100, 1000, 1023)
FIELDS = ("prompt", "text", "meta", "answer")


def nested(levels: int, kind: str) -> str:
    """JSON text for a value `levels` deep counted from the row object (the row is level 1)."""
    # the row is 1 level; a response's text/meta sit inside responses[] and a response object (3 levels)
    inner = levels - (3 if kind in ("text", "meta") else 1)
    if kind == "meta":
        inner -= 1  # meta is an object holding the nested list under "k"
        return '{"k": ' + "[" * inner + '"deep"' + "]" * inner + "}"
    return "[" * inner + '"deep"' + "]" * inner


def row(i: int, depth: int | None, field: str | None) -> str:
    prompt = nested(depth, "prompt") if field == "prompt" else f'"What is {i} + {i}?"'
    answer = nested(depth, "answer") if field == "answer" else f'"{2 * i}"'
    text = nested(depth, "text") if field == "text" else f'"The answer is \\\\boxed{{{2 * i}}}."'
    meta = nested(depth, "meta") if field == "meta" else '{"model": "m"}'
    resp = ('{"text": ' + text + ', "meta": ' + meta + '}, '
            + '{"text": "The answer is \\\\boxed{0}.", "meta": {"model": "m"}}')
    return (f'{{"id": "r{i}", "prompt": {prompt}, "answer": {answer}, "task": "math", '
            f'"responses": [{resp}]}}')


def lines() -> list[str]:
    out = [row(0, None, None)]
    i = 1
    for depth in DEPTHS:
        for field in FIELDS:
            out.append(row(i, depth, field))
            i += 1
    out.append(row(i, None, None))
    return out


if __name__ == "__main__":
    Path(__file__).with_name("deep.jsonl").write_text("\n".join(lines()) + "\n")
