"""The terminal table printed by ``gradeset check``: one line per check, then the failing rows."""

from __future__ import annotations

from gradeset.check.checks import FAIL, WARN, CheckReport


def summary_table(report: CheckReport, *, examples: int = 5) -> str:
    rows = [("STATUS", "CHECK", "RESULT", "THRESHOLD")]
    for r in report.results:
        rows.append((r.status.upper(), r.name, r.message, r.threshold or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3] for row in rows]
    lines.insert(1, "-" * min(120, sum(widths) + 6 + max(len(r[3]) for r in rows)))
    for r in report.results:
        if r.status not in (FAIL, WARN) or not r.examples:
            continue
        lines.append(f"{r.status.upper()} {r.name}: {r.count} rows; first {min(examples, len(r.examples))}:")
        for x in r.examples[:examples]:
            where = f"{x.source}:" if x.source else "line "
            ident = f" id={x.id}" if x.id is not None else ""
            lines.append(f"  {where}{x.line}{ident}: {x.detail}")
    paths = (report.stats or {}).get("verify_paths") if isinstance(report.stats, dict) else None
    if paths:
        lines.append("verdicts by path: " + ", ".join(f"{k} {v}" for k, v in paths.items()))
    tokens = (report.stats or {}).get("tokens") if isinstance(report.stats, dict) else None
    if tokens:
        from gradeset.check.report import _tokens

        lines.append(f"generation tokens: {_tokens(tokens)}")
    failed = [r.name for r in report.failed]
    lines.append(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "all enabled checks passed")
    return "\n".join(lines)
