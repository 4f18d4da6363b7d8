"""Dataset cards: a ``README.md`` with the Hugging Face YAML header, saying how the data was made.

``load_dataset(folder)`` reads the header's ``configs`` (one per data file or shard set,
the first marked ``default``), so a folder gradeset wrote loads, and publishes, as it is.
The body records what a reader of the data needs to trust it: the source, the model and
sampling settings, the verifier and its version, the shaping steps, the check result,
counts per stage, and a link to the report.

Building the text is a pure function of a facts dict (:func:`card_markdown`). Writing
(:func:`write_card`) never replaces a README that gradeset did not write, and merges with
the card gradeset wrote earlier in the same folder (several exports share a folder), via
a small ``.gradeset-card.json`` beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MARKER = "<!-- written by gradeset: re-running a gradeset command updates this card; edit the YAML at will -->"
SIDECAR = ".gradeset-card.json"
LOADABLE = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
SPLIT_NAMES = {"train", "test", "validation", "valid", "dev", "eval"}
_SECRET = re.compile(r"(api_?key|secret|password|passwd|token_?file|auth|authorization|headers?|cookie)$", re.I)

# which Hugging Face task category a layout serves
_RL_LAYOUTS = {"trl-prompt", "verl", "openrlhf-prompt", "grpo", "prompt"}


def size_category(n: int) -> str:
    """Hugging Face's ``size_categories`` bucket for n rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "1B<n<10B"


def public_params(params: Any) -> Any:
    """Step parameters fit to publish: credentials and headers left out, recursively."""
    if isinstance(params, dict):
        return {k: ("<redacted>" if _SECRET.search(str(k)) else public_params(v)) for k, v in params.items()}
    if isinstance(params, list):
        return [public_params(v) for v in params]
    return params


def config_for(path: str) -> tuple[str, str]:
    """(config name, split) of a data file: ``train.jsonl`` is split train of the default
    config; ``dpo.jsonl`` is config ``dpo`` with split train."""
    stem = Path(path).name.split(".")[0] or "data"
    if stem.startswith("shard-"):
        return "default", "train"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
    if stem.lower() in SPLIT_NAMES:
        return "default", {"valid": "validation", "dev": "validation", "eval": "validation"}.get(stem.lower(),
                                                                                              stem.lower())
    return stem, "train"


def _builder(path: str) -> str:
    return LOADABLE.get(Path(path.replace("*", "x")).suffix, "json")


def _yaml_str(s: Any) -> str:
    return json.dumps(str(s), ensure_ascii=False)  # a JSON string is a valid YAML scalar


def yaml_header(configs: list[dict], *, license: str, task_categories: list[str], size: str,
                tags: list[str], pretty_name: str | None) -> str:
    lines = ["---"]
    if pretty_name:
        lines.append(f"pretty_name: {_yaml_str(pretty_name)}")
    lines.append(f"license: {license}")
    lines.append("task_categories:")
    lines += [f"- {t}" for t in task_categories]
    lines.append("size_categories:")
    lines.append(f"- {size}")
    if tags:
        lines.append("tags:")
        lines += [f"- {_yaml_str(t)}" for t in tags]
    if configs:
        lines.append("configs:")
    for i, c in enumerate(configs):
        lines.append(f"- config_name: {_yaml_str(c['name'])}")
        if i == 0:
            lines.append("  default: true")
        if c.get("fingerprint"):
            # datasets caches a folder's load by its card's YAML; this line changes with the files,
            # so a re-run's new data is never served from the cache of the old
            lines.append(f"  description: {_yaml_str('gradeset data ' + c['fingerprint'])}")
        lines.append("  data_files:")
        for split, path in c["splits"].items():
            lines.append(f"  - split: {split}")
            lines.append(f"    path: {_yaml_str(path)}")
    lines.append("---")
    return "\n".join(lines)


def _table(rows: list[list[Any]], head: list[str]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |")
    return out


def _inline(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else v
    return "`" + text.replace("`", "'")[:300] + "`"


def card_markdown(facts: dict) -> str:
    """The card for ``facts``:

    - ``title``, ``description``, ``license`` (default ``unknown``), ``tags``;
    - ``files``: ``[{"path", "layout", "rows", "kind"?}]`` relative to the card's folder;
    - ``source``; ``generation`` (model and sampling); ``verifier`` (``task``, ``options``, ``versions``);
    - ``shaping``: ``[{"step", "params"}]``; ``stages``: ``[{"stage", "in", "out", ...}]``;
    - ``check``: ``{"passed", "failed", "report"}``; ``notes``: lines.
    """
    files = [f for f in facts.get("files", []) if Path(f["path"]).suffix in LOADABLE or "*" in f["path"]]
    configs: dict[str, dict] = {}
    for f in files:
        name, split = f.get("config") or config_for(f["path"])[0], f.get("split") or config_for(f["path"])[1]
        c = configs.setdefault(name, {"name": name, "splits": {}, "parts": []})
        c["splits"][split] = f["path"]
        c["parts"].append(str(f.get("fingerprint") or ""))
    for c in configs.values():
        parts = c.pop("parts")
        if any(parts):
            c["fingerprint"] = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    ordered = sorted(configs.values(), key=lambda c: c["name"] != "default")
    # ``load_dataset(folder)`` picks one file format (builder) for every config of a card:
    # files in another format than the first config's stay out of the header, with a note
    builder = _builder(next(iter(ordered[0]["splits"].values()))) if ordered else None
    left_out = [p for c in ordered for p in c["splits"].values() if _builder(p) != builder]
    for c in ordered:
        c["splits"] = {k: p for k, p in c["splits"].items() if _builder(p) == builder}
    ordered = [c for c in ordered if c["splits"]]
    files = [f for f in files if f["path"] not in left_out]
    rows = sum(int(f.get("rows") or 0) for f in files)
    layouts = {str(f.get("layout") or "") for f in files} | {str(f.get("kind") or "") for f in files}
    categories = ["text-generation"] + (["reinforcement-learning"] if layouts & _RL_LAYOUTS else [])
    tags = sorted({"gradeset", *facts.get("tags", []), *(x for x in layouts if x)})
    title = facts.get("title") or "gradeset dataset"
    out = [yaml_header(ordered, license=facts.get("license") or "unknown", task_categories=categories,
                       size=size_category(rows), tags=tags, pretty_name=title), "", MARKER, "", f"# {title}", ""]
    if facts.get("description"):
        out += [str(facts["description"]), ""]
    out += [f"Built with gradeset {facts.get('gradeset_version') or ''}".rstrip()
            + ": prompts sampled from a model, each completion graded by a verifier, shaped for training.", ""]
    out += ["## Files", ""]
    out += _table([[f"`{c['name']}`", split, f"`{path}`",
                    next((f.get("layout") or f.get("kind") or "" for f in files if f["path"] == path), ""),
                    next((f.get("rows", "") for f in files if f["path"] == path), "")]
                   for c in ordered for split, path in c["splits"].items()],
                  ["config", "split", "path", "layout", "rows"])
    out += ["", "```python", "from datasets import load_dataset", "",
            "ds = load_dataset(\"path/to/this/folder\")  # the first config"]
    out += [f"ds = load_dataset(\"path/to/this/folder\", {_yaml_str(c['name'])})" for c in ordered[1:]]
    out += ["```", ""]
    out += ["## How it was made", ""]
    if facts.get("source") is not None:
        out.append(f"- **Source:** {_inline(facts['source'])}")
    gen = facts.get("generation")
    if gen:
        for g in gen if isinstance(gen, list) else [gen]:
            out.append(f"- **Model and sampling:** {_inline(g)}")
    else:
        out.append("- **Model and sampling:** not recorded in this data (no generation step and no response metadata)")
    ver = facts.get("verifier")
    if ver:
        for v in ver if isinstance(ver, list) else [ver]:
            out.append(f"- **Verifier:** `{v.get('task')}`" + (f", options {_inline(v['options'])}" if v.get("options")
                                                               else "")
                       + (f"; versions {_inline(v['versions'])}" if v.get("versions") else ""))
    else:
        out.append("- **Verifier:** none recorded")
    for s in facts.get("shaping") or []:
        out.append(f"- **Shaping:** `{s.get('step')}`" + (f" {_inline(s['params'])}" if s.get("params") else ""))
    out.append("")
    if facts.get("stages"):
        out += ["## Counts per stage", ""]
        keys = ["stage", "in", "out"]
        extra = sorted({k for s in facts["stages"] for k in s} - set(keys))
        out += _table([[s.get(k, "") for k in keys + extra] for s in facts["stages"]], keys + extra)
        out.append("")
    check = facts.get("check")
    out += ["## Checks", ""]
    if check:
        verdict = "passed" if check.get("passed") else "FAILED: " + ", ".join(check.get("failed") or [])
        out.append(f"- `gradeset check`: {verdict}")
        if check.get("report"):
            out.append(f"- Report: [{check['report']}]({check['report']})")
    else:
        out.append("- no check was run on this data")
    out.append("")
    notes = list(facts.get("notes") or [])
    notes += [f"`{p}` is not in the header: `load_dataset` reads one file format per folder "
              f"(this card's is {builder}); load it with `load_dataset(\"{_builder(p)}\", data_files=\"{p}\")`"
              for p in left_out]
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def relative(path: str | os.PathLike, folder: str | os.PathLike) -> str:
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(folder).resolve())).as_posix()
    except ValueError:  # another drive
        return str(path)


def is_gradeset_card(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError:
        return False


def write_card(folder: str | os.PathLike, facts: dict) -> Path | None:
    """Write (or update) ``folder/README.md``; None when a README not written by gradeset is there.

    ``facts["files"]`` paths are relative to ``folder``. Files recorded by earlier cards in
    the same folder are kept while they exist, so successive exports add up.
    """
    from gradeset.io.atomic import write_bytes_atomic

    folder = Path(folder)
    card = folder / "README.md"
    if card.exists() and not is_gradeset_card(card):
        return None
    side = folder / SIDECAR
    try:
        earlier = json.loads(side.read_text()) if side.exists() else {}
    except (OSError, ValueError):
        earlier = {}
    files = {f["path"]: f for f in earlier.get("files", []) if _exists(folder, f["path"])}
    for f in facts.get("files", []):
        files[f["path"]] = f
    for f in files.values():
        f["fingerprint"] = fingerprint(folder, f["path"])
    merged = {**earlier, **{k: v for k, v in facts.items() if v not in (None, [], {})}, "files": list(files.values())}
    write_bytes_atomic(side, json.dumps(merged, indent=1, default=str).encode())
    write_bytes_atomic(card, card_markdown(merged).encode())
    return card


def fingerprint(folder: Path, rel: str) -> str:
    """Changes whenever a matched file is rewritten (gradeset writes by rename: new mtime), cheaply."""
    paths = sorted(folder.glob(rel)) if "*" in rel else [folder / rel]
    h = hashlib.sha256()
    for p in paths:
        with contextlib.suppress(OSError):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}|".encode())
    return h.hexdigest()[:16]


def _exists(folder: Path, rel: str) -> bool:
    if "*" in rel:
        return any(folder.glob(rel))
    return (folder / rel).exists()


def shard_files(folder: Path) -> str | None:
    """The glob of a shard folder's data files, relative to the folder."""
    for ext in (".jsonl", ".parquet"):
        if any(folder.glob(f"shard-*{ext}")):
            return f"shard-*{ext}"
    return None


class Provenance:
    """What the rows themselves say about how they were made, gathered while a command streams them."""

    KEYS = ("model", "backend", "temperature", "top_p", "max_tokens", "system_prompt", "chat_template", "seed")

    def __init__(self, limit: int = 8):
        self.limit = limit
        self.settings: dict[str, dict] = {}
        self.tasks: dict[str, int] = {}
        self.sources: dict[str, int] = {}
        self.responses = 0
        self.graded = 0
        self.correct = 0

    def observe(self, groups: Iterable[dict]):
        for g in groups:
            self.add(g)
            yield g

    def add(self, g: dict) -> None:
        if not isinstance(g, dict):
            return
        for field, seen in (("task", self.tasks), ("source", self.sources)):
            v = g.get(field)
            if isinstance(v, str) and (v in seen or len(seen) < self.limit):
                seen[v] = seen.get(v, 0) + 1
        for r in g.get("responses") or []:
            if not isinstance(r, dict):
                continue
            self.responses += 1
            if r.get("score") is not None:
                self.graded += 1
                self.correct += r.get("correct") is True
            meta = r.get("meta")
            if isinstance(meta, dict):
                s = {k: meta[k] for k in self.KEYS if meta.get(k) is not None}
                if s:
                    key = _settings_key(s)
                    if key in self.settings or len(self.settings) < self.limit:
                        self.settings[key] = s

    def facts(self) -> dict:
        out: dict[str, Any] = {}
        if self.settings:
            out["generation"] = list(self.settings.values())
        if self.tasks:
            out["verifier"] = [{"task": t, "versions": verifier_versions(t)} for t in self.tasks]
        if self.responses:
            out["notes"] = [f"{self.responses} responses, {self.graded} graded, {self.correct} correct"]
        return out


def _settings_key(settings: dict) -> str | bytes:
    """A key equal for equal settings; orjson because this runs once per response of every row."""
    import orjson

    try:
        return orjson.dumps(settings, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:  # e.g. an int beyond 64 bits: the slower spelling always works
        return json.dumps(settings, sort_keys=True, default=str)


def verifier_versions(task: str) -> dict[str, str]:
    """gradeset's version and, for the math family, the math-verify library's when installed."""
    from importlib import metadata

    from gradeset import __version__

    out = {"gradeset": __version__}
    if task in ("math", "gsm8k", "maths"):
        for dist in ("math-verify", "sympy"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[dist] = metadata.version(dist)
    return out


# --------------------------------------------------------------------------- cards of a pipeline run

_GENERATE = {"generate"}
_VERIFY = {"verify"}


def run_facts(pipeline: dict, summary: dict, folder: Path) -> dict:
    """Facts of a finished ``gradeset run`` (the pipeline as written and its summary), paths
    relative to ``folder``: source, model and sampling, verifier, shaping, checks, counts."""
    from gradeset import __version__

    steps = [s for s in (pipeline.get("steps") or [])]
    named = []
    for s in steps:
        if isinstance(s, str):
            named.append((s, {}))
        elif isinstance(s, dict):
            name = s.get("name") or next((k for k in s if k != "ray"), "?")
            params = s.get("params") if "name" in s else s.get(name)
            named.append((name, params if isinstance(params, dict) else {}))
    generation = [public_params(p) for n, p in named if n in _GENERATE]
    verifier = [{"task": p.get("task", "math"), "options": public_params({k: v for k, v in p.items() if k != "task"}),
                 "versions": verifier_versions(str(p.get("task", "math")))} for n, p in named if n in _VERIFY]
    shaping = [{"step": n, "params": public_params(p)} for n, p in named if n not in _GENERATE | _VERIFY]
    for e in summary.get("exports") or []:
        shaping.append({"step": f"export {e.get('layout')}", "params": {"kind": e.get("kind"), "rows": e.get("rows"),
                                                                         **(e.get("stats") or {})}})
    stages = [{"stage": "source", "in": summary.get("read"), "out": (summary.get("read") or 0)
               - (summary.get("rejected") or 0), "rejected": summary.get("rejected")}]
    stages += [{"stage": s.get("step"), "in": s.get("in"), "out": s.get("out"),
                **{k: v for k, v in (s.get("stats") or {}).items() if isinstance(v, int | float) and v}}
               for s in summary.get("steps") or []]
    stages += [{"stage": f"export {e.get('layout')}", "in": summary.get("written"), "out": e.get("rows")}
               for e in summary.get("exports") or []]
    check = summary.get("check")
    if check:
        check = {**check, "report": relative(check["report"], folder) if check.get("report") else None}
    notes = [f"{c.get('step')}: check at this step {'passed' if c.get('passed') else 'FAILED'}"
             for c in summary.get("stage_checks") or []]
    return {"title": pipeline.get("name") or Path(str(summary.get("output", "data"))).name,
            "description": pipeline.get("description"), "license": pipeline.get("license"),
            "gradeset_version": __version__, "source": public_params(pipeline.get("source")),
            "generation": generation, "verifier": verifier, "shaping": shaping, "stages": stages,
            "check": check, "notes": notes}


def write_run_cards(pipeline: dict, summary: dict) -> list[Path]:
    """Cards for a finished run: in the groups folder, and in each folder holding exports.

    Never raises for a folder it cannot write: a card is a courtesy, the data is the product.
    """
    out = Path(str(summary["output"]))
    folders: dict[Path, list[dict]] = {}
    glob = shard_files(out)
    if glob:
        folders[out] = [{"path": glob, "layout": "group", "rows": summary.get("written"), "config": "default"}]
    for e in summary.get("exports") or []:
        p = Path(str(e["path"]))
        folder = p.parent
        folders.setdefault(folder, []).append({"path": relative(p, folder), "layout": e.get("layout"),
                                               "kind": e.get("kind"), "rows": e.get("rows")})
        if out.parent == folder and glob:  # the groups folder sits beside the exports
            entry = {"path": f"{out.name}/{glob}", "layout": "group", "rows": summary.get("written"),
                     "config": "groups"}
            if entry not in folders[folder]:
                folders[folder].append(entry)
    written = []
    for folder, files in folders.items():
        try:
            path = write_card(folder, {**run_facts(pipeline, summary, folder), "files": files})
        except Exception as exc:  # the data is written and checked; a card must not fail the run
            print(f"note: no dataset card in {folder}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if path is not None:
            written.append(path)
    return written


# --------------------------------------------------------------------------- the card of one export


def _inherited(input_path: Path) -> dict:
    """Facts of the card gradeset wrote where the input came from (its folder or the one above)."""
    for folder in (input_path if input_path.is_dir() else input_path.parent, input_path.parent.parent):
        side = folder / SIDECAR
        if side.exists():
            try:
                facts = json.loads(side.read_text())
            except (OSError, ValueError):
                continue
            out = {k: facts[k] for k in ("source", "generation", "verifier", "shaping", "license", "check")
                   if facts.get(k)}
            # what the earlier run exported is not how this export was made
            out["shaping"] = [s for s in out.get("shaping", []) if not str(s.get("step", "")).startswith("export ")]
            if isinstance(out.get("check"), dict) and out["check"].get("report"):
                out["check"] = {**out["check"], "report": str((folder / out["check"]["report"]).resolve())}
            return out
    return {}


def write_export_card(output: str | os.PathLike, input_path: str | os.PathLike, *, layout: str, rows: int,
                      read: int, rejected: int, provenance: Provenance | None = None, step: str | None = None,
                      params: dict | None = None, files: list[dict] | None = None) -> Path | None:
    """The card for ``gradeset export IN OUT`` (and ``build``, ``split``): in OUT's folder, or in
    OUT when it is a folder. ``files`` (paths relative to that folder) replaces OUT as the data."""
    from gradeset import __version__

    out = Path(output)
    if files is not None:
        folder, rel = out, ", ".join(f["path"] for f in files)
    elif out.is_dir():
        folder, rel = out, shard_files(out)
        if rel is None:
            return None  # a Hugging Face save_to_disk folder carries its own metadata
    else:
        folder, rel = out.parent, out.name
    inp = Path(input_path)
    facts: dict[str, Any] = {"title": folder.resolve().name, "gradeset_version": __version__,
                             **_inherited(inp)}
    if provenance is not None:
        seen = provenance.facts()
        for key in ("generation", "verifier"):
            if seen.get(key) and not facts.get(key):
                facts[key] = seen[key]
        facts["notes"] = seen.get("notes", [])
    facts.setdefault("source", relative(inp, folder))
    if isinstance(facts.get("check"), dict) and facts["check"].get("report"):
        facts["check"] = {**facts["check"], "report": relative(facts["check"]["report"], folder)}
    step = step or f"export {layout}"
    facts["shaping"] = [*facts.get("shaping", []),
                        {"step": step, "params": {"from": relative(inp, folder), **public_params(params or {})}}]
    facts["stages"] = [{"stage": f"{step} ({rel})", "in": read, "out": rows, "rejected": rejected}]
    facts["files"] = files if files is not None else [{"path": rel, "layout": layout, "rows": rows}]
    try:
        return write_card(folder, facts)
    except OSError:
        return None
