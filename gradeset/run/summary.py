"""The table a run prints at its end."""

from __future__ import annotations


def format_summary(summary: dict) -> str:
    """The per-step table printed at the end of a run."""
    lines = []
    if summary.get("already_complete"):
        lines.append(f"{summary['output']}: already complete (re-run with --fresh to rebuild); exports rebuilt")
    lines.append(f"{'step':<16} {'kind':<7} {'in':>10} {'out':>10}  stats (whole job)")
    for s in summary["steps"]:
        stats = ", ".join(f"{k}={v}" for k, v in sorted(s["stats"].items()) if v)
        lines.append(f"{s['step']:<16} {s['kind']:<7} {s['in']:>10} {s['out']:>10}  {stats}")
    dropped = sum(max(0, s["in"] - s["out"]) for s in summary["steps"])
    added = sum(max(0, s["out"] - s["in"]) for s in summary["steps"])
    line = (f"read {summary['read']}, written {summary['written']} groups in {summary['shards']} shards, "
            f"rejected {summary['rejected']}, dropped by steps {dropped}")
    if added:
        line += f", added by steps {added}"
    if summary.get("chunks_skipped_on_resume"):
        line += f"; resumed: {summary['chunks_skipped_on_resume']} finished chunk(s) not redone"
    lines.append(line)
    lines.append(f"groups -> {summary['output']} ({summary.get('seconds', 0):.1f}s, {summary.get('runner', 'local')})")
    for e in summary.get("exports", []):
        lines.append(f"export {e['layout']:<10} {e['rows']:>8} rows -> {e['path']}")
    if summary.get("check"):
        c = summary["check"]
        lines.append(f"check: {'passed' if c.get('passed') else 'FAILED: ' + ', '.join(c.get('failed', []))}"
                     + (f"; report {c['report']}" if c.get("report") else "")
                     + (f"; json {c['json']}" if c.get("json") else ""))
    for c in summary.get("stage_checks", []):
        lines.append(f"check at steps[{c['step']}]: {'passed' if c['passed'] else 'FAILED: ' + ', '.join(c['failed'])}"
                     + (f"; report {c['report']}" if c.get("report") else ""))
    if summary.get("resumed"):
        for s in summary["steps"]:
            mine = s.get("this_run") or {}
            if mine and mine != s["stats"]:
                lines.append(f"  {s['step']} in this invocation: " + ", ".join(f"{k}={v}" for k, v in sorted(mine.items())))
    if summary.get("note"):
        lines.append(f"note: {summary['note']}")
    return "\n".join(lines)
