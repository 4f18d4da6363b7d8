"""The HTML report: one self-contained file, readable offline, safe against hostile text.

Charts are inline SVG drawn by :mod:`gradeset.check.svg`; there is no script, no remote
font and no external URL, and a Content-Security-Policy ``default-src 'none'`` tells the
browser to fetch nothing. Every piece of data (model output above all) goes through
``html.escape``: a response containing ``<script>`` shows as text.
"""

from __future__ import annotations

import os
from html import escape
from typing import Any

from gradeset.check.checks import FAIL, PASS, SKIP, WARN, CheckReport
from gradeset.check.svg import PALETTE, bar_chart, rate_chart, stacked_bar, stacked_bars

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
BUCKET_COLOURS = {"all-correct": PALETTE["good"], "mixed": PALETTE["mid"], "all-wrong": PALETTE["bad"],
                  "ungraded": PALETTE["grey"]}
STATUS_COLOURS = {PASS: "#2e7d32", WARN: "#b26a00", FAIL: "#c62828", SKIP: "#777"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#222}
header{background:#1f2937;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px} header .sub{color:#cbd5e1;font-size:13px;word-break:break-all}
main{max-width:1240px;margin:0 auto;padding:18px 24px}
section{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:14px 18px;margin:0 0 18px}
h2{font-size:17px;margin:0 0 10px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:18px}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:10px 16px;min-width:130px}
.card .v{font-size:22px;font-weight:700} .card .k{font-size:12px;color:#666}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#fafafa}
table.ex{table-layout:fixed} table.ex td{overflow-wrap:anywhere}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px}
.chart{max-width:100%;height:auto}
details{border:1px solid #e3e6ea;border-radius:6px;margin:6px 0;padding:4px 10px;background:#fff}
summary{cursor:pointer;font-size:13px;padding:3px 0}
pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;padding:8px;border-radius:4px;
font-size:12px;max-height:320px;overflow:auto;margin:4px 0}
.ok{color:#2e7d32;font-weight:600} .bad{color:#c62828;font-weight:600} .muted{color:#777}
.resp{border-left:4px solid #ccc;padding-left:8px;margin:8px 0}
details p,details b,.resp div{font-size:13px}
.resp.c{border-color:#54A24B} .resp.w{border-color:#E45756}
"""


def _e(x: Any) -> str:
    return escape("" if x is None else str(x), quote=True)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{STATUS_COLOURS.get(status, "#777")}">{_e(status.upper())}</span>'


def _hist_bars(hist: list[dict], fmt=lambda s, e: f"{s:.2f}-{e:.2f}") -> list[tuple[str, float]]:
    bars = []
    for b in hist:
        label = f"> {b['start']}" if b.get("overflow") else fmt(b["start"], b["end"])
        bars.append((label, b["count"]))
    return bars


def _int_range(s: int, e: int) -> str:
    return f"{s}" if e - s <= 1 else f"{s}-{e - 1}"


def _checks_table(report: CheckReport) -> str:
    rows = []
    for r in report.results:
        rows.append(f"<tr><td>{_badge(r.status)}</td><td><b>{_e(r.name)}</b><br><span class=muted>{_e(r.title)}"
                    f"</span></td><td>{_e(r.message)}</td><td>{_e(r.threshold or '')}</td>"
                    f"<td>{_e(r.flag or '')}</td></tr>")
    return ("<table><tr><th>status</th><th>check</th><th>result</th><th>threshold</th><th>flag</th></tr>"
            + "".join(rows) + "</table>")


def _failing(report: CheckReport) -> str:
    bad = [r for r in report.results if r.status in (FAIL, WARN)]
    bad.sort(key=lambda r: r.status != FAIL)
    if not bad:
        return '<p class="ok">Every enabled check passed.</p>'
    parts = []
    for r in bad:
        files = any(x.source for x in r.examples)
        ex = "".join((f"<tr><td>{_e(x.source)}</td>" if files else "<tr>") + f"<td>{_e(x.line)}</td>"
                     f"<td><code>{_e(x.id)}</code></td><td>{_e(x.detail)}</td></tr>" for x in r.examples)
        more = f" (first {len(r.examples)} of {r.count} listed)" if r.count > len(r.examples) else ""
        parts.append(f"<details {'open' if r.status == FAIL else ''}><summary>{_badge(r.status)} "
                     f"<b>{_e(r.name)}</b>: {_e(r.message)}{_e(more)}</summary>"
                     + (f"<table class=ex><colgroup>{'<col style=width:260px>' if files else ''}"
                        "<col style=width:80px><col style=width:180px><col></colgroup>"
                        f"<tr>{'<th>file</th>' if files else ''}<th>line</th><th>id</th><th>detail</th></tr>"
                        f"{ex}</table>"
                        if ex else "") + "</details>")
    return "".join(parts)


def _stages(report: CheckReport) -> str:
    stages = report.stages or [{"name": (report.inputs or ["input"])[-1], **_stage_numbers(report.stats)}]
    rows = "".join(
        f"<tr><td>{_e(s.get('name'))}</td><td>{_e(s.get('groups'))}</td><td>{_e(s.get('responses'))}</td>"
        f"<td>{_e(_pct(s.get('coverage')))}</td><td>{_e(_pct(s.get('accuracy')))}</td>"
        f"<td>{_e(s.get('rejected', ''))}</td></tr>" for s in stages)
    table = ("<table><tr><th>stage</th><th>groups</th><th>responses</th><th>scored</th><th>accuracy</th>"
             f"<th>rejected</th></tr>{rows}</table>")
    chart = bar_chart([(str(s.get("name")), s.get("groups") or 0) for s in stages], title="Groups per stage",
                      y_label="groups", height=240)
    with_buckets = [s for s in stages if isinstance(s.get("buckets"), dict) and s["buckets"]]
    buckets = ""
    if len(with_buckets) > 1:
        buckets = stacked_bars([(str(s.get("name")), [(b, int(s["buckets"].get(b, 0)), BUCKET_COLOURS[b])
                                                      for b in BUCKET_COLOURS]) for s in with_buckets],
                               title="Correctness buckets per stage")
    return f'<div class="grid"><div>{table}</div><div>{chart}</div></div>{buckets}'


def _tokens(tokens: dict | None) -> str:
    """Generation tokens (from the servers' usage) and the estimated cost, when generate recorded them."""
    if not tokens:
        return "none recorded"
    line = (f"{tokens['prompt_tokens']} prompt + {tokens['completion_tokens']} completion over "
            f"{tokens['responses_with_usage']} responses")
    if tokens.get("cost") is not None:
        line += f"; estimated cost {tokens['cost']:.4f}"
    return line


def _pairs(table: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in list(table.items())[:12])


def _stage_numbers(stats: dict) -> dict:
    return {k: stats.get(k) for k in ("groups", "responses", "coverage", "accuracy")}


def _slices(stats: dict) -> str:
    charts = []
    for name in ("task", "category", "difficulty", "source"):
        rows = stats.get("slices", {}).get(name)
        if not rows:
            continue
        charts.append(rate_chart([(r["value"], r["pass_rate"], r["graded"] or r["groups"]) for r in rows],
                                 title=f"Pass rate per {name}"))
    if not charts:
        return '<p class="muted">No task, category, difficulty or source fields in the input.</p>'
    return '<div class="grid">' + "".join(f"<div>{c}</div>" for c in charts) + "</div>"


def _sample(report: CheckReport) -> str:
    if not report.sample:
        return '<p class="muted">No groups sampled.</p>'
    out = []
    first = True
    for b in ("mixed", "all-wrong", "all-correct", "ungraded"):
        groups = [g for g in report.sample if g["bucket"] == b]
        if not groups:
            continue
        out.append(f"<h3 style='font-size:14px'>{_e(b)} ({len(groups)} shown of "
                   f"{report.stats['buckets'].get(b, 0)})</h3>")
        for g in groups:
            prompt = g["prompt"].replace("\n", " ")
            head = prompt if len(prompt) <= 110 else prompt[:110] + "…"
            meta = " · ".join(f"{k} {_e(g[k])}" for k in ("task", "category", "difficulty") if g.get(k))
            resp = []
            for r in g["responses"]:
                cls = "c" if r["correct"] is True else "w" if r["correct"] is False else ""
                verdict = "correct" if r["correct"] is True else "wrong" if r["correct"] is False else "ungraded"
                resp.append(f'<div class="resp {cls}"><div><b>#{_e(r["index"])}</b> {_e(verdict)} · score '
                            f'{_e(r["score"])} · parsed <code>{_e(r["parsed"])}</code>'
                            + (f' · finish {_e(r["finish_reason"])}' if r.get("finish_reason") else "")
                            + (f' · <span class="why">why: {_e(r["detail"])}</span>'
                               if r.get("detail") and r["correct"] is not True else "")
                            + f'</div><pre>{_e(r["text"])}</pre></div>')
            more = (f"<p class=muted>{g['n_responses'] - len(g['responses'])} more responses not shown</p>"
                    if g["n_responses"] > len(g["responses"]) else "")
            out.append(f"<details{' open' if first else ''}><summary>line {_e(g['line'])} · <code>{_e(g['id'])}</code> · pass rate "
                       f"{_e(_pct(g['pass_rate']))} · {_e(head)}</summary>"
                       f"<p class=muted>{meta}</p><b>Prompt</b><pre>{_e(g['prompt'])}</pre>"
                       f"<b>Gold answer</b> <code>{_e(g['answer'])}</code>{''.join(resp)}{more}</details>")
            first = False
    return "".join(out)


def _explain(report: CheckReport) -> str:
    """Why answers were wrong: verifier reasons, lengths by verdict, answer spread, sampling."""
    st = report.stats
    parts = []
    reasons = st.get("wrong_reasons") or {}
    if reasons:
        rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in reasons.items())
        parts.append("<div><b>Why responses were wrong or unparsed</b> (the verifier's detail; "
                     f"{_e(st.get('unparsed', 0))} had no answer it could read)"
                     f"<table><tr><th>reason</th><th>responses</th></tr>{rows}</table></div>")
    by = st.get("length_by_verdict") or {}
    if any((by.get(k) or {}).get("n") for k in ("correct", "wrong")):
        unit = st.get("unit", "words")
        rows = "".join(f"<tr><td>{k}</td>" + "".join(
            f"<td>{_e(round(s[c], 1) if isinstance(s.get(c), float) else s.get(c, ''))}</td>"
            for c in ("n", "p25", "p50", "mean", "p75", "max")) + "</tr>" for k, s in by.items())
        parts.append(f"<div><b>Response length by verdict</b> ({_e(unit)})<table><tr><th></th><th>n</th>"
                     f"<th>p25</th><th>median</th><th>mean</th><th>p75</th><th>max</th></tr>{rows}</table></div>")
    distinct = st.get("distinct_answers") or {}
    if distinct:
        parts.append("<div><b>Distinct answers per group</b> (groups): "
                     + _e(", ".join(f"{k}: {v}" for k, v in distinct.items())) + "</div>")
    sampling = st.get("sampling") or []
    if sampling:
        keys = ("model", "backend", "temperature", "top_p", "max_tokens", "system_prompt", "responses")
        rows = "".join("<tr>" + "".join(f"<td>{_e(s.get(k))}</td>" for k in keys) + "</tr>" for s in sampling)
        parts.append("<div><b>How the responses were sampled</b><table><tr>"
                     + "".join(f"<th>{k}</th>" for k in keys) + f"</tr>{rows}</table></div>")
    if report.exports:
        rows = "".join(f"<tr><td>{_e(e.get('layout'))}</td><td>{_e(e.get('kind') or '')}</td>"
                       f"<td>{_e(e.get('rows'))}</td><td><code>{_e(e.get('path'))}</code></td></tr>"
                       for e in report.exports)
        parts.append("<div><b>Rows per export</b><table><tr><th>layout</th><th>built as</th><th>rows</th>"
                     f"<th>file</th></tr>{rows}</table></div>")
    if not parts:
        return '<p class="muted">No graded responses, sampling settings or exports to explain.</p>'
    return "".join(f'<div style="margin-bottom:12px">{p}</div>' for p in parts)


def render_report(report: CheckReport, title: str = "gradeset check report") -> str:
    """The whole report as one HTML string."""
    st = report.stats
    unit = st.get("unit", "words")
    status = FAIL if report.failed else PASS
    zv = next((r for r in report.results if r.name == "zero_variance"), None)
    cards = [("groups", st["groups"]), ("responses", st["responses"]), ("scored", _pct(st.get("coverage"))),
             ("accuracy", _pct(st.get("accuracy"))),
             ("no GRPO signal", _pct(zv.value) if zv is not None and zv.status != SKIP else "n/a"),
             ("failed checks", len(report.failed))]
    buckets = st.get("buckets", {})
    charts = [
        bar_chart(_hist_bars(st["score_histogram"]), title="Score histogram (responses)", x_label="score",
                  y_label="responses"),
        bar_chart(_hist_bars(st["pass_rate_histogram"]), title="Pass rate per group", x_label="pass rate",
                  y_label="groups", color=PALETTE["good"]),
        bar_chart(_hist_bars(st["prompt_length_histogram"], _int_range), title=f"Prompt length ({unit})",
                  x_label=unit, y_label="prompts", color="#72B7B2"),
        bar_chart(_hist_bars(st["response_length_histogram"], _int_range), title=f"Response length ({unit})",
                  x_label=unit, y_label="responses", color="#B279A2"),
    ]
    bucket_chart = stacked_bar([(b, buckets.get(b, 0), BUCKET_COLOURS[b])
                                for b in ("all-correct", "mixed", "all-wrong", "ungraded")],
                               title="Bucket composition (groups)", width=1100)
    lengths = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td>{_e(round(s[k], 1) if isinstance(s.get(k), float) else s.get(k))}"
                                         "</td>" for k in ("n", "min", "p25", "p50", "mean", "p75", "p99", "max"))
        + "</tr>" for name, s in (("prompts", st["prompt_length"]), ("responses", st["response_length"])))
    sub = " · ".join(_e(x) for x in [*report.inputs, f"layout {report.layout}" if report.layout else "",
                                      f"mode {report.mode}"] if x)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{CSS}</style></head>
<body><header><h1>{_e(title)} {_badge(status)}</h1><div class="sub">{sub}</div></header><main>
<div class="cards">{''.join(f'<div class="card"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'
                            for k, v in cards)}</div>
<section id="failing"><h2>Top failing checks</h2>{_failing(report)}</section>
<section id="checks"><h2>All checks</h2>{_checks_table(report)}</section>
<section id="stages"><h2>Counts per stage</h2>{_stages(report)}</section>
<section id="buckets"><h2>Correctness buckets</h2>{bucket_chart}</section>
<section id="charts"><h2>Scores and lengths</h2><div class="grid">{''.join(f'<div>{c}</div>' for c in charts)}</div>
<table style="margin-top:10px"><tr><th>{_e(unit)}</th><th>n</th><th>min</th><th>p25</th><th>median</th><th>mean</th>
<th>p75</th><th>p99</th><th>max</th></tr>{lengths}</table>
<p style="font-size:13px"><b>Group sizes</b> (responses: groups): {_e(_pairs(st.get("group_sizes", {})))}
&nbsp; · &nbsp;<b>Finish reasons</b>: {_e(_pairs(st.get("finish_reasons", {})) or "none recorded")}
&nbsp; · &nbsp;<b>Verdicts by path</b> (exact / symbolic / judge): {_e(_pairs(st.get("verify_paths", {})) or "none recorded")}
&nbsp; · &nbsp;<b>Tokens</b>: {_e(_tokens(st.get("tokens")))}</p>
</section>
<section id="explain"><h2>Why answers were wrong, and how they were made</h2>{_explain(report)}</section>
<section id="slices"><h2>Pass rate per task, category, difficulty</h2>{_slices(st)}</section>
<section id="sample"><h2>Sample of groups</h2>{_sample(report)}</section>
</main></body></html>
"""


def write_report(report: CheckReport, path: str | os.PathLike, title: str = "gradeset check report") -> None:
    """Write the HTML report atomically."""
    from gradeset.io import atomic_open

    with atomic_open(path, "wb") as fh:
        fh.write(render_report(report, title).encode("utf-8"))


render_html = render_report  # the name the pipeline runner looks up
