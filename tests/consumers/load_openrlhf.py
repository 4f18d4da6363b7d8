"""OpenRLHF 0.11's own dataset preprocessing on a gradeset ``--to openrlhf`` file.

usage: python load_openrlhf.py FILE KIND     (KIND: sft | dpo | ppo)
Uses the keys gradeset prints for that script (``flags``): SFT and DPO through their
``preprocess_data``, PPO through ``PromptDataset`` itself (prompt, label, datasource).
"""

import json
import sys
import types


def main(path: str, kind: str) -> dict:
    import datasets

    ds = datasets.load_dataset("json", data_files=path, split="train")
    if kind == "sft":
        from openrlhf.datasets.sft_dataset import preprocess_data

        rows = [preprocess_data(d, "User: {}\nAssistant: ", "input", "output") for d in ds]
        return {"rows": [{"prompt": p, "response": r} for p, r in rows]}
    if kind == "dpo":
        from openrlhf.datasets.reward_dataset import preprocess_data

        rows = [preprocess_data(d, None, "input", "chosen", "rejected") for d in ds]
        return {"rows": [{"prompt": p, "chosen": c, "rejected": r} for p, c, r, _ in rows]}
    from openrlhf.datasets import PromptDataset

    data_cfg = types.SimpleNamespace(input_key="input", label_key="label", apply_chat_template=False)
    strategy = types.SimpleNamespace(args=types.SimpleNamespace(data=data_cfg), is_rank_0=lambda: False)
    pd = PromptDataset(ds, None, strategy)
    return {"rows": [{"prompt": pd.prompts[i], "label": pd.labels[i], "datasource": pd.datasources[i]}
                     for i in range(len(pd))]}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2]), default=str))
