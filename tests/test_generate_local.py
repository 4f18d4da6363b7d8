"""Local backends on the tiny locally built model (transformers), and vLLM where a GPU is."""

from __future__ import annotations

import pytest
from conftest import has_gpu
from loopback_server import LoopbackServer, model_reply

from gradeset.generate import GenerateConfig, Stats, build_prompt, generate_groups
from gradeset.records import validate_group
from gradeset.steps import build_step

GROUPS = [{"prompt": "What is 2+3?", "answer": "5"},
          {"prompt": "Which is prime?", "options": ["4", "7"], "answer": "B"}]


def local_cfg(model_dir, **kw) -> GenerateConfig:
    base = {"backend": "transformers", "model": str(model_dir), "n": 3, "max_tokens": 12, "seed": 7,
            "system_prompt": "Please reason step by step.", "device": "cpu"}
    base.update(kw)
    return GenerateConfig(**base)


def test_transformers_samples_n_with_chat_template_and_meta(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    stats = Stats()
    out = generate_groups([dict(g) for g in GROUPS], local_cfg(tiny_model_dir), stats=stats)
    assert stats.generated == 6 and stats.failed == 0
    for g in out:
        assert validate_group(g) == []
        assert [r["meta"]["sample_index"] for r in g["responses"]] == [0, 1, 2]
        # prompt_tokens is the length of the chat-templated prompt with the system prompt and options
        templated = tok.apply_chat_template(build_prompt(g, "Please reason step by step.").messages,
                                            tokenize=False, add_generation_prompt=True)
        assert templated.startswith("<|im_start|>system\nPlease reason step by step.<|im_end|>")
        expected = len(tok(templated, add_special_tokens=False)["input_ids"])
        for r in g["responses"]:
            m = r["meta"]
            assert m["prompt_tokens"] == expected
            assert 1 <= m["completion_tokens"] <= 12
            assert m["finish_reason"] in ("stop", "length")
            assert (m["finish_reason"] == "length") == (m["completion_tokens"] == 12)
            assert m["model"] == str(tiny_model_dir) and m["backend"] == "transformers"
            assert isinstance(r["text"], str) and m["two_step_applied"] is False
    assert build_prompt(out[1]).messages[-1]["content"].endswith("\n\nA. 4\nB. 7")
    # sampling: the samples of one prompt differ from each other
    assert len({r["text"] for r in out[0]["responses"]}) > 1


def test_transformers_seed_makes_runs_repeatable(tiny_model_dir):
    a = generate_groups([dict(GROUPS[0])], local_cfg(tiny_model_dir, n=2))
    b = generate_groups([dict(GROUPS[0])], local_cfg(tiny_model_dir, n=2))
    c = generate_groups([dict(GROUPS[0])], local_cfg(tiny_model_dir, n=2, seed=8))
    texts = [[r["text"] for r in x[0]["responses"]] for x in (a, b, c)]
    assert texts[0] == texts[1] and texts[0] != texts[2]


def test_transformers_two_step_forces_the_marker(tiny_model_dir):
    marker = "<never-emitted>"
    cfg = local_cfg(tiny_model_dir, n=2, two_step=True, max_tokens=14, stage2_tokens=4, think_end=marker)
    stats = Stats()
    out = generate_groups([dict(g) for g in GROUPS], cfg, stats=stats)
    assert stats.two_step == 4
    for g in out:
        for r in g["responses"]:
            m = r["meta"]
            assert m["two_step_applied"] is True
            assert marker in r["text"]
            assert m["stage1_tokens"] <= 10 and m["stage2_tokens"] <= 4
            assert m["completion_tokens"] == m["stage1_tokens"] + m["stage2_tokens"]


def test_transformers_resume_from_cache(tiny_model_dir, tmp_path):
    cache = tmp_path / "c.jsonl"
    first = generate_groups([dict(GROUPS[0])], local_cfg(tiny_model_dir, n=2), cache_path=cache)
    stats = Stats()
    second = generate_groups([dict(GROUPS[0])], local_cfg(tiny_model_dir, n=2), cache_path=cache, stats=stats)
    assert stats.cached == 2 and stats.generated == 0 and stats.requests == 0
    assert second[0]["responses"] == first[0]["responses"]


def test_generate_step_loads_model_once(tiny_model_dir):
    step = build_step("generate", {"backend": "transformers", "model": str(tiny_model_dir), "n": 2,
                                   "max_tokens": 6, "device": "cpu"})
    out1 = step([dict(GROUPS[0])])
    backend = step.engine._backend
    out2 = step([dict(GROUPS[1]), dict(GROUPS[0])])
    assert step.engine._backend is backend
    assert len(out1[0]["responses"]) == 2 and all(len(g["responses"]) == 2 for g in out2)
    # a prompt seen in an earlier batch reuses its samples: keys never depend on which batches
    # one engine saw (a resumed run or a Ray actor sees only some), so every runner agrees
    assert out2[1]["responses"] == out1[0]["responses"]
    assert step.stats["generated"] == 4 and step.stats["groups"] == 3
    # a prompt repeated within one batch gets samples of its own for each copy
    out3 = step([dict(GROUPS[1]), dict(GROUPS[1])])
    assert out3[0]["responses"] == out2[0]["responses"]
    assert out3[1]["responses"] != out3[0]["responses"] and step.stats["generated"] == 6


def test_loopback_server_serving_the_tiny_model(tiny_model_dir):
    with LoopbackServer(reply=model_reply(str(tiny_model_dir), max_new_tokens=8)) as srv:
        cfg = GenerateConfig(backend="openai", model="tiny", base_url=srv.base_url, n=2, max_tokens=8,
                             use_n=False)
        out = generate_groups([dict(GROUPS[0])], cfg)
        reqs = srv.generation_requests()
    assert len(reqs) == 2
    for r in out[0]["responses"]:
        assert 1 <= r["meta"]["completion_tokens"] <= 8 and r["meta"]["finish_reason"] in ("stop", "length")


@pytest.mark.gpu
@pytest.mark.skipif(not has_gpu(), reason="needs a CUDA GPU")
def test_vllm_backend_on_gpu(tiny_model_dir):
    pytest.importorskip("vllm")
    cfg = GenerateConfig(backend="vllm", model=str(tiny_model_dir), n=4, max_tokens=16, seed=1,
                         gpu_memory_utilization=0.3, two_step=True, stage2_tokens=4, think_end="<never>")
    stats = Stats()
    out = generate_groups([dict(g) for g in GROUPS], cfg, stats=stats)
    assert stats.generated == 8 and stats.failed == 0 and stats.two_step == 8
    for g in out:
        assert len(g["responses"]) == 4
        for r in g["responses"]:
            assert "<never>" in r["text"] and r["meta"]["stage1_tokens"] <= 12


def test_cli_preview_shows_the_templated_prompt(tiny_model_dir, data_dir):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "gradeset", "generate", str(data_dir / "generate" / "mcq.jsonl"),
                        "--out", "/nonexistent/never-written.jsonl", "--backend", "transformers", "--model",
                        str(tiny_model_dir), "--system-prompt", "Answer with a letter.", "--preview", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ("<|im_start|>system\nAnswer with a letter.<|im_end|>\n<|im_start|>user\nWhich planet is largest?"
            "\n\nA. Mars\nB. Jupiter\nC. Venus\nD. Earth<|im_end|>\n<|im_start|>assistant\n") in r.stdout
