"""Dataset cards (README.md with the Hugging Face header) and ``gradeset push``'s error paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gradeset.cli import main
from gradeset.io.card import card_markdown, public_params, size_category, write_card

ROOT = Path(__file__).resolve().parent.parent
yaml = pytest.importorskip("yaml")
CACHE = None  # set per session: datasets' cache in a temporary folder, not the user's


@pytest.fixture(scope="module", autouse=True)
def _hf_cache(tmp_path_factory):
    global CACHE
    CACHE = str(tmp_path_factory.mktemp("hf-cache"))


def header(card: Path | str) -> dict:
    text = Path(card).read_text() if isinstance(card, Path) else card
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_card_header_is_what_the_hub_reads():
    text = card_markdown({"title": "t", "license": "mit", "files": [
        {"path": "train.jsonl", "layout": "trl-sft", "rows": 1500},
        {"path": "test.jsonl", "layout": "trl-sft", "rows": 100},
        {"path": "grpo.jsonl", "layout": "trl-prompt", "rows": 7},
        {"path": "data.hf", "layout": "x", "rows": 5},  # not loadable by data_files: left out
        {"path": "verl.parquet", "layout": "verl", "rows": 9},  # another format than the default config's
    ], "check": {"passed": False, "failed": ["coverage"], "report": "report.html"},
        "verifier": {"task": "math", "versions": {"gradeset": "1"}}})
    h = header(text)
    assert h["license"] == "mit"
    assert h["size_categories"] == ["1K<n<10K"]  # 1607 rows
    assert "reinforcement-learning" in h["task_categories"] and "text-generation" in h["task_categories"]
    configs = {c["config_name"]: c for c in h["configs"]}
    assert configs["default"]["default"] is True and h["configs"][0]["config_name"] == "default"
    assert configs["default"]["data_files"] == [{"split": "train", "path": "train.jsonl"},
                                                {"split": "test", "path": "test.jsonl"}]
    assert configs["grpo"]["data_files"] == [{"split": "train", "path": "grpo.jsonl"}]
    assert len(configs) == 2
    assert "`verl.parquet` is not in the header" in text
    assert "FAILED: coverage" in text and "[report.html](report.html)" in text and "`math`" in text


@pytest.mark.parametrize("n, label", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (10**6, "1M<n<10M")])
def test_size_category(n, label):
    assert size_category(n) == label


def test_credentials_are_never_published():
    params = public_params({"model": "m", "api_key": "sk-1", "max_tokens": 5, "headers": {"Authorization": "x"},
                            "nested": [{"password": "p", "temperature": 1.0}]})
    assert params == {"model": "m", "api_key": "<redacted>", "max_tokens": 5, "headers": "<redacted>",
                      "nested": [{"password": "<redacted>", "temperature": 1.0}]}


def test_a_readme_gradeset_did_not_write_is_kept(tmp_path):
    (tmp_path / "README.md").write_text("# mine\n")
    (tmp_path / "a.jsonl").write_text("{}\n")
    assert write_card(tmp_path, {"files": [{"path": "a.jsonl", "rows": 1}]}) is None
    assert (tmp_path / "README.md").read_text() == "# mine\n"


PIPELINE = """
name: card-test
description: arithmetic graded and shaped, for the card test
source: {synth: arithmetic, n: 120, seed: 1, negatives: mixed}
steps:
  - verify: {task: math}
  - dedup: {method: exact}
outputs:
  groups: out/groups
  exports:
    - path: out/dpo.jsonl
      layout: trl-dpo
      build: {kind: dpo, strategy: correct-vs-incorrect}
    - path: out/grpo.jsonl
      layout: trl-prompt
      build: {kind: grpo}
  check:
    report: out/report.html
    group_size: 2
    disable: [near_duplicates]
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("card-run")
    (base / "pipeline.yaml").write_text(PIPELINE)
    assert main(["run", str(base / "pipeline.yaml"), "-q"]) == 0
    return base / "out"


def test_run_writes_cards_that_datasets_loads(run_dir):
    datasets = pytest.importorskip("datasets")
    summary = json.loads((run_dir / "groups" / "run.json").read_text())
    card = run_dir / "README.md"
    h = header(card)
    names = [c["config_name"] for c in h["configs"]]
    assert sorted(names) == ["dpo", "groups", "grpo"]
    assert h["license"] == "unknown" and h["size_categories"] == ["n<1K"]
    text = card.read_text()
    # how it was made: source, verifier with its version, shaping, counts per stage, check and report link
    assert '"synth": "arithmetic"' in text and "`math`" in text and '"math-verify"' in text
    assert "`dedup`" in text and "| verify | 120 | 120 |" in text
    assert "`gradeset check`: passed" in text and "[report.html](report.html)" in text
    assert (run_dir / "report.html").exists()
    rows = {e["layout"]: e["rows"] for e in summary["exports"]}
    default = datasets.load_dataset(str(run_dir), cache_dir=CACHE)  # by the header alone
    assert list(default) == ["train"] and default["train"].num_rows == rows[summary["exports"][0]["layout"]]
    assert set(default["train"].column_names) >= {"prompt", "chosen", "rejected"}
    grpo = datasets.load_dataset(str(run_dir), "grpo", cache_dir=CACHE)
    assert grpo["train"].num_rows == rows["trl-prompt"] and "answer" in grpo["train"].column_names
    groups = datasets.load_dataset(str(run_dir), "groups", cache_dir=CACHE)
    assert groups["train"].num_rows == summary["written"]
    # the groups folder has its own card and loads by itself
    g = datasets.load_dataset(str(run_dir / "groups"), cache_dir=CACHE)
    assert g["train"].num_rows == summary["written"] and "responses" in g["train"].column_names
    assert header(run_dir / "groups" / "README.md")["configs"][0]["data_files"][0]["path"] == "shard-*.jsonl"


def test_export_card_adds_up_and_remembers_the_run(run_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "pub"
    out.mkdir()
    assert main(["export", str(run_dir / "groups"), str(out / "verl.parquet"), "--to", "verl", "-q"]) == 0
    assert main(["export", str(run_dir / "groups"), str(out / "train.parquet"), "--to", "seed003", "-q"]) == 0
    assert main(["export", str(run_dir / "groups"), str(out / "sft.jsonl"), "--to", "trl-prompt", "-q"]) == 0
    h = header(out / "README.md")
    configs = {c["config_name"]: c["data_files"] for c in h["configs"]}
    assert configs == {"default": [{"split": "train", "path": "train.parquet"}],
                       "verl": [{"split": "train", "path": "verl.parquet"}]}
    text = (out / "README.md").read_text()
    assert '"synth": "arithmetic"' in text and "`math`" in text  # inherited from the run's card
    assert "export trl-dpo" not in text  # the run's own exports are not how this one was made
    # one file format per card: the JSONL export is named in the notes, not in the header
    assert "`sft.jsonl` is not in the header" in text
    report = next(line for line in text.splitlines() if line.startswith("- Report:"))
    rel = report.split("](", 1)[1].rstrip(")")
    assert (out / rel).resolve() == (run_dir / "report.html").resolve()
    verl = datasets.load_dataset(str(out), "verl", cache_dir=CACHE)["train"]
    assert verl.num_rows == json.loads((run_dir / "groups" / "run.json").read_text())["written"]
    assert datasets.load_dataset(str(out), cache_dir=CACHE)["train"].num_rows > 0


def test_convert_into_a_user_folder_writes_no_card(run_dir, tmp_path):
    assert main(["convert", str(run_dir / "groups"), str(tmp_path / "x.jsonl"), "--to", "group"]) == 0
    assert not (tmp_path / "README.md").exists()


# ---- push -----------------------------------------------------------------------------------------


def _push(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path / "hf-home"), **env}
    full.pop("HF_TOKEN", None) if "HF_TOKEN" not in env else None
    return subprocess.run([sys.executable, "-m", "gradeset", "push", *args], capture_output=True, text=True,
                          env=full, timeout=300)


class _Hub(BaseHTTPRequestHandler):
    def _deny(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"error": "Invalid credentials in Authorization header"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _deny

    def log_message(self, *a):
        pass


def test_push_errors_are_one_line_exit_2(run_dir, tmp_path):
    pytest.importorskip("huggingface_hub")
    # offline: nothing listens on the endpoint
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    r = _push([str(run_dir), "me/data"], {"HF_TOKEN": "hf_fake", "HF_ENDPOINT": f"http://127.0.0.1:{closed}"},
              tmp_path)
    assert r.returncode == 2, r.stderr
    assert "cannot reach" in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # a Hub that rejects the token
    hub = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    t = threading.Thread(target=hub.serve_forever, daemon=True)
    t.start()
    try:
        r = _push([str(run_dir), "me/data"], {"HF_TOKEN": "hf_fake",
                                              "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_address[1]}"}, tmp_path)
    finally:
        hub.shutdown()
    assert r.returncode == 2 and "not logged in" in r.stderr and "Traceback" not in r.stderr
    # no token at all: refused before any request
    r = _push([str(run_dir), "me/data"], {"HF_ENDPOINT": f"http://127.0.0.1:{closed}"}, tmp_path)
    assert r.returncode == 2 and "not logged in" in r.stderr and "hf auth login" in r.stderr


def test_push_without_huggingface_hub_names_the_extra(run_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    assert main(["push", str(run_dir), "me/data"]) == 2
    assert "pip install 'gradeset[hf]'" in capsys.readouterr().err


def test_push_checks_its_arguments(tmp_path, capsys):
    assert main(["push", str(tmp_path / "missing"), "me/data"]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["push", str(tmp_path), "no-slash"]) == 2
    assert "user/name" in capsys.readouterr().err


def test_a_rewritten_folder_is_not_loaded_from_the_stale_cache(tmp_path):
    """datasets caches a carded folder by its YAML: the card must change when the data does."""
    datasets = pytest.importorskip("datasets")
    cache = tmp_path / "cache"
    for n in (3, 5):
        folder = tmp_path / "data"
        folder.mkdir(exist_ok=True)
        tmp = folder / "train.jsonl.tmp"
        tmp.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(n)))
        os.replace(tmp, folder / "train.jsonl")
        os.utime(folder / "train.jsonl", ns=(n * 10**9, n * 10**9))  # as a later rewrite would
        write_card(folder, {"files": [{"path": "train.jsonl", "rows": n}]})
        assert datasets.load_dataset(str(folder), cache_dir=str(cache))["train"].num_rows == n


def test_split_and_build_write_cards_that_load(run_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    split_dir = tmp_path / "splits"
    assert main(["split", str(run_dir / "groups"), "--out", str(split_dir), "-q"]) == 0
    counts = json.loads((split_dir / "split.json").read_text())["counts"]
    ds = datasets.load_dataset(str(split_dir), cache_dir=CACHE)
    renamed = {"valid": "validation"}
    assert {renamed.get(k, k): v for k, v in counts.items() if v} == {k: d.num_rows for k, d in ds.items()}
    built = tmp_path / "built"
    built.mkdir()
    assert main(["build", "sft", str(run_dir / "groups"), "--out", str(built / "sft.jsonl"), "-q"]) == 0
    text = (built / "README.md").read_text()
    assert "`build sft`" in text and "`math`" in text
    rows = sum(1 for _ in (built / "sft.jsonl").open())
    assert datasets.load_dataset(str(built), cache_dir=CACHE)["train"].num_rows == rows


def test_run_card_records_model_sampling_and_redacts_keys(tmp_path):
    from gradeset.io.card import run_facts

    pipeline = {"name": "gen", "source": {"path": "q.jsonl"}, "steps": [
        {"generate": {"backend": "openai", "model": "Qwen/Qwen3-1.7B", "temperature": 0.7, "n": 8,
                      "api_key": "sk-secret", "system_prompt": "Think step by step."}},
        {"verify": {"task": "gsm8k", "workers": 2}}, "dedup"]}
    summary = {"output": str(tmp_path / "groups"), "read": 10, "rejected": 1, "written": 9,
               "steps": [{"step": "generate", "in": 9, "out": 9, "stats": {"failed": 0}},
                         {"step": "verify", "in": 9, "out": 9, "stats": {"correct": 40}}],
               "exports": [], "check": None}
    text = card_markdown({**run_facts(pipeline, summary, tmp_path), "files": [{"path": "a.jsonl", "rows": 9}]})
    assert '"model": "Qwen/Qwen3-1.7B"' in text and '"temperature": 0.7' in text
    assert "Think step by step." in text and "sk-secret" not in text and "<redacted>" in text
    assert "`gsm8k`" in text and "`dedup`" in text
    assert "| source | 10 | 9 |" in text and "| verify | 9 | 9 |" in text and "no check was run" in text


def test_export_card_reads_model_and_sampling_from_the_rows(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "1+1?", "answer": "2", "task": "math", "responses": [
        {"text": "\\boxed{2}", "score": 1.0, "correct": True,
         "meta": {"model": "m-7b", "temperature": 1.0, "top_p": 0.95, "api_key": "never"}}]}) + "\n")
    out = tmp_path / "pub"
    out.mkdir()
    assert main(["export", str(src), str(out / "grpo.jsonl"), "--to", "trl-prompt", "-q"]) == 0
    text = (out / "README.md").read_text()
    assert '"model": "m-7b"' in text and '"top_p": 0.95' in text and "never" not in text
    assert "`math`" in text and "1 responses, 1 graded, 1 correct" in text


def test_pipeline_license_reaches_the_card(tmp_path):
    (tmp_path / "pipeline.yaml").write_text("license: apache-2.0\n" + PIPELINE)
    assert main(["run", str(tmp_path / "pipeline.yaml"), "-q"]) == 0
    assert header(tmp_path / "out" / "README.md")["license"] == "apache-2.0"
