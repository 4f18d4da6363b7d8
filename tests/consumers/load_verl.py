"""verl 0.9's own RLHFDataset and default reward on a gradeset ``--to verl`` parquet.

usage: python load_verl.py FILE.parquet TOKENIZER_DIR
Prints, per row, the data_source, the raw prompt verl built, extra_info, and the default
reward of a right and a wrong solution (written the way verl's gsm8k / MATH scorers read one).
"""

import json
import sys


def main(path: str, tok_dir: str) -> dict:
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.reward_score import default_compute_score

    tok = AutoTokenizer.from_pretrained(tok_dir)
    cfg = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 512, "filter_overlong_prompts": True,
                            "filter_overlong_prompts_workers": 1, "cache_dir": tok_dir + "/verl-cache"})
    ds = RLHFDataset(path, tok, cfg)
    out = []
    for i in range(len(ds)):
        item = ds[i]
        gold = item["reward_model"]["ground_truth"]
        right = f"#### {gold}" if item["data_source"] == "openai/gsm8k" else f"\\boxed{{{gold}}}"
        wrong = f"#### {gold}1" if item["data_source"] == "openai/gsm8k" else f"\\boxed{{{gold}1}}"
        out.append({"data_source": item["data_source"], "raw_prompt": item.get("raw_prompt"),
                    "extra_info": item["extra_info"], "ground_truth": gold,
                    "right": default_compute_score(item["data_source"], right, gold, item["extra_info"]),
                    "wrong": default_compute_score(item["data_source"], wrong, gold, item["extra_info"])})
    return {"rows": out}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2]), default=str))
