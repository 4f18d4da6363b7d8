"""The layout registry: how rows of some layout become groups, and groups become rows.

A layout module registers a :class:`Layout` with three pure functions:

* ``detect(fields, row) -> int`` scores how well a sample row matches (0 = not at all);
* ``to_groups(rows, ctx) -> Iterator[dict]`` turns ``(location, row)`` pairs into
  canonical groups, reporting bad rows through ``ctx.reject`` instead of raising;
* ``from_groups(groups, **opts) -> Iterator[dict]`` exports groups as rows.

Keeping the three apart (and file I/O out of them) lets the same code run in the
CLI, the in-process runner and Ray workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gradeset.errors import GradesetError
from gradeset.io.rejects import Reject

Row = tuple[int, dict]


@dataclass
class ImportContext:
    """What an importer needs besides the rows: where they come from and where rejects go."""

    source: str = "<input>"
    on_reject: Callable[[Reject], None] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def reject(self, line: int | None, reason: str, raw: Any = None) -> None:
        if self.on_reject is not None:
            if isinstance(raw, dict):
                from gradeset.io.writers import dumps

                try:
                    raw = dumps(raw)
                except GradesetError:  # too deep for orjson to write: keep the reason, say why raw is missing
                    raw = b'"<row nested too deep to write back; see the input file>"'
            self.on_reject(Reject(self.source, line, reason, raw))

    def note(self, message: str) -> None:
        """Say once how something was inferred (e.g. which rule derived a prompt)."""
        if message not in self.notes:
            self.notes.append(message)


@dataclass
class Layout:
    name: str
    description: str
    detect: Callable[[frozenset[str], dict], int] | None = None
    to_groups: Callable[[Iterable[Row], ImportContext], Iterator[dict]] | None = None
    from_groups: Callable[..., Iterator[dict]] | None = None
    aliases: tuple[str, ...] = ()


LAYOUTS: dict[str, Layout] = {}
_ALIASES: dict[str, str] = {}


def register(layout: Layout) -> Layout:
    LAYOUTS[layout.name] = layout
    for a in layout.aliases:
        _ALIASES[a] = layout.name
    return layout


def get_layout(name: str) -> Layout:
    _load_builtin()
    key = _ALIASES.get(name, name)
    if key not in LAYOUTS:
        raise GradesetError(f"unknown layout {name!r}; known: {', '.join(sorted(LAYOUTS))}")
    return LAYOUTS[key]


def readable_layouts() -> list[str]:
    _load_builtin()
    return sorted(n for n, lay in LAYOUTS.items() if lay.to_groups is not None)


def writable_layouts() -> list[str]:
    _load_builtin()
    return sorted(n for n, lay in LAYOUTS.items() if lay.from_groups is not None)


def layout_votes(rows: list[dict]) -> tuple[dict[str, int], dict[str, int]]:
    """(rows won per layout, best score per layout) over sample rows: each row votes for the
    readable layout whose ``detect`` scores it highest. ``inspect`` shows both as its reasons."""
    _load_builtin()
    votes: dict[str, int] = {}
    best_scores: dict[str, int] = {}
    for row in rows:
        fields = frozenset(row)
        best, best_score = None, 0
        for lay in LAYOUTS.values():
            if lay.detect is None or lay.to_groups is None:
                continue
            s = lay.detect(fields, row)
            if s > 0:
                best_scores[lay.name] = max(best_scores.get(lay.name, 0), s)
            if s > best_score:
                best, best_score = lay.name, s
        if best is not None:
            votes[best] = votes.get(best, 0) + 1
    return votes, best_scores


def detect_layout(rows: list[dict], source: str = "<input>") -> str:
    """The best-scoring readable layout for sample rows; a clear error when none fits."""
    if not rows:
        raise GradesetError(f"{source}: no records to detect a layout from (empty input?)")
    votes, _ = layout_votes(rows)
    if not votes:
        raise GradesetError(f"{source}: fields {sorted(rows[0])} match no known layout "
                            f"(known: {', '.join(readable_layouts())}). For a table with other column names, "
                            f"'gradeset load {source} --prompt-col COLUMN --answer-col COLUMN --out groups.jsonl' "
                            "maps them to groups")
    return max(votes.items(), key=lambda kv: kv[1])[0]


def _load_builtin() -> None:
    """Import the layout modules (each registers itself) on first use."""
    if getattr(_load_builtin, "done", False):
        return
    _load_builtin.done = True  # type: ignore[attr-defined]
    import importlib
    import pkgutil

    import gradeset.formats as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("registry",) and not mod.name.startswith("_"):
            importlib.import_module(f"gradeset.formats.{mod.name}")
