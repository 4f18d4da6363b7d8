"""The data remembers how it was made: prompt format, sampling, usage (issue 16 item 3)."""

from __future__ import annotations

import pytest
from loopback_server import LoopbackServer

from gradeset.errors import GradesetError
from gradeset.generate import GenerateConfig, generate_groups
from gradeset.generate.prompts import template_id
from gradeset.train.launch import apply_shaping_flags


def cfg_for(srv, **kw) -> GenerateConfig:
    base = {"backend": "openai", "model": "loop", "base_url": srv.base_url, "n": 2, "max_tokens": 64,
            "retries": 0, "timeout": 10}
    base.update(kw)
    return GenerateConfig(**base)


def test_meta_records_what_was_sent_and_the_servers_usage():
    reply = {"text": "four words of answer", "completion_tokens": 7}
    with LoopbackServer(reply=lambda req: reply, support_n=False) as srv:
        out = generate_groups([{"prompt": "one two three"}], cfg_for(
            srv, system_prompt="Be brief.", temperature=0.7, top_p=0.9, seed=11, max_tokens=33))
        sent = srv.generation_requests()
    (g,) = out
    assert g["system_prompt"] == "Be brief."
    assert sent[0].body["messages"][0] == {"role": "system", "content": "Be brief."}
    for r in g["responses"]:
        m = r["meta"]
        assert m["system_prompt"] == "Be brief."
        assert m["chat_template"] == "server"  # an OpenAI-compatible chat server applies its own
        assert (m["model"], m["backend"], m["temperature"], m["top_p"], m["max_tokens"], m["seed"], m["n"]) == (
            "loop", "openai", 0.7, 0.9, 33, 11, 2)
        # the loopback server counts words: system (2) + user (3) prompt words; completion as it said
        assert m["usage"] == {"prompt_tokens": 5, "completion_tokens": 7}


def test_completions_endpoint_records_plain_text_and_no_system_prompt_field():
    with LoopbackServer(reply="ok") as srv:
        (g,) = generate_groups([{"prompt": "q"}], cfg_for(srv, endpoint="completions", n=1))
    assert "system_prompt" not in g
    m = g["responses"][0]["meta"]
    assert m["chat_template"] == "none" and m["system_prompt"] is None


def test_usage_absent_from_server_is_recorded_as_unknown_not_zero():
    with LoopbackServer(reply="ok", usage=False) as srv:
        (g,) = generate_groups([{"prompt": "q"}], cfg_for(srv, n=1))
    assert g["responses"][0]["meta"]["usage"] == {"prompt_tokens": None, "completion_tokens": None}


def test_hostile_usage_values_are_not_trusted():
    from gradeset.generate.backends.base import Sample
    from gradeset.generate.backends.openai import OpenAIBackend

    s = [Sample(text="a")]
    OpenAIBackend._apportion(s, {"prompt_tokens": "9e99", "completion_tokens": float("inf")})
    assert s[0].prompt_tokens is None and s[0].completion_tokens is None
    OpenAIBackend._apportion(s, {"prompt_tokens": -3, "completion_tokens": True})
    assert s[0].prompt_tokens is None and s[0].completion_tokens is None


def test_local_backend_records_the_tokenizers_template(tiny_model_dir):
    transformers = pytest.importorskip("transformers")
    cfg = GenerateConfig(backend="transformers", model=str(tiny_model_dir), n=1, max_tokens=4, device="cpu",
                         system_prompt="S")
    (g,) = generate_groups([{"prompt": "2+3?"}], cfg)
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    m = g["responses"][0]["meta"]
    assert m["chat_template"] == template_id(tok) and m["chat_template"].startswith("sha256:")
    assert m["chat_template_from"] == str(tiny_model_dir)
    assert g["system_prompt"] == "S"


def test_template_id_is_stable_and_tells_templates_apart():
    class T:
        def __init__(self, t):
            self.chat_template = t

    assert template_id(T("a")) == template_id(T("a")) != template_id(T("b"))
    assert template_id(T(None)) == "none"


def test_train_applies_or_refuses_flags_on_trl_ready_rows():
    plain = [{"prompt": "q", "completion": "a"}]
    with pytest.raises(GradesetError, match="add --conversational"):
        apply_shaping_flags(plain, "d.jsonl", system_prompt="S", conversational=False)
    rows, changed = apply_shaping_flags(plain, "d.jsonl", system_prompt="S", conversational=True)
    assert changed == 1 and rows == [{"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "q"}],
                                      "completion": [{"role": "assistant", "content": "a"}]}]
    rows, changed = apply_shaping_flags(rows, "d.jsonl", system_prompt="S", conversational=True)
    assert changed == 0  # already so: unchanged, not doubled
    with pytest.raises(GradesetError, match="row 1: already starts with a different system message"):
        apply_shaping_flags(rows, "d.jsonl", system_prompt="other", conversational=False)
    msgs = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    (m,), _ = apply_shaping_flags(msgs, "d.jsonl", system_prompt="S", conversational=False)
    assert m["messages"][0] == {"role": "system", "content": "S"} and len(m["messages"]) == 3
    pairs = [{"prompt": "q", "chosen": "good", "rejected": "bad"}]
    (p,), _ = apply_shaping_flags(pairs, "d.jsonl", system_prompt=None, conversational=True)
    assert p["chosen"] == [{"role": "assistant", "content": "good"}] and p["prompt"][0]["role"] == "user"
    with pytest.raises(GradesetError, match="plain 'text' rows"):
        apply_shaping_flags([{"text": "x"}], "d.jsonl", system_prompt="S", conversational=True)
    assert apply_shaping_flags(plain, "d.jsonl", system_prompt=None, conversational=False) == (plain, 0)


def test_train_command_refuses_a_system_prompt_it_cannot_apply(tmp_path, capsys, tiny_model_dir):
    pytest.importorskip("trl")
    from gradeset.cli import main

    data = tmp_path / "sft.jsonl"
    data.write_text('{"prompt": "2+3?", "completion": "5"}\n' * 4)
    code = main(["train", "sft", "--data", str(data), "--model", str(tiny_model_dir), "--out",
                 str(tmp_path / "run"), "--system-prompt", "Be brief.", "--max-steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "plain-text rows cannot carry --system-prompt" in err and "--conversational" in err
    assert not (tmp_path / "run" / "model").exists()


def test_meta_n_is_what_was_asked_for():
    from gradeset.generate import complete_full

    with LoopbackServer(reply="ok") as srv:
        (r,) = complete_full(["a"], cfg_for(srv, n=8))  # complete() asks for one per prompt
    assert r["meta"]["n"] == 1


def test_train_command_applies_the_flags_to_trl_ready_data(tmp_path, capsys, tiny_model_dir):
    pytest.importorskip("trl")
    from gradeset.cli import main

    data = tmp_path / "sft.jsonl"
    data.write_text('{"prompt": "2+3?", "completion": "5"}\n' * 4)
    code = main(["train", "sft", "--data", str(data), "--model", str(tiny_model_dir), "--out",
                 str(tmp_path / "run"), "--system-prompt", "Be brief.", "--conversational", "--max-steps", "1",
                 "--batch-size", "2", "--max-length", "128"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "--conversational/--system-prompt applied to 4 rows" in err
