"""Decode the tagged values a sandboxed program sends back (read with ``ast.literal_eval``).

Only builtin types come out (None, bool, int, float, complex, str, bytes, list, tuple, dict,
set, frozenset), so comparing them with expected values never runs code the program wrote.
"""

from __future__ import annotations

from typing import Any

_SEQ = {"l": list, "t": tuple, "set": set, "fs": frozenset}


class BadValue(ValueError):
    """A message that is not a well-formed encoded value."""


def decode(node: Any, depth: int = 0) -> Any:
    if depth > 220:
        raise BadValue("value nested too deeply")
    if type(node) is not list or not node or type(node[0]) is not str:
        raise BadValue("not an encoded value")
    tag, rest = node[0], node[1:]
    try:
        if tag == "n" and not rest:
            return None
        if tag == "b" and len(rest) == 1 and type(rest[0]) is bool:
            return rest[0]
        if tag == "i" and len(rest) == 1 and type(rest[0]) is str and len(rest[0]) < 2_000_000:
            return int(rest[0], 16)
        if tag == "f" and len(rest) == 1 and type(rest[0]) is str:
            return float.fromhex(rest[0])
        if tag == "c" and len(rest) == 2:
            return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
        if tag == "s" and len(rest) == 1 and type(rest[0]) is str:
            return rest[0]
        if tag == "y" and len(rest) == 1 and type(rest[0]) is str:
            return bytes.fromhex(rest[0])
        if tag in _SEQ and len(rest) == 1 and type(rest[0]) is list:
            return _SEQ[tag](decode(e, depth + 1) for e in rest[0])
        if tag == "d" and len(rest) == 1 and type(rest[0]) is list:
            out = {}
            for pair in rest[0]:
                if type(pair) is not list or len(pair) != 2:
                    raise BadValue("bad dict item")
                out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
            return out
    except (TypeError, ValueError) as exc:  # unhashable key, bad hex
        raise BadValue(str(exc)) from exc
    raise BadValue(f"unknown tag {tag!r}")
