"""LLaMA-Factory 0.9's dataset_info parser and format converters on a gradeset export.

usage: python load_llamafactory.py DATASET_DIR NAME
Reads DATASET_DIR/dataset_info.json with LLaMA-Factory's ``get_dataset_list`` and converts
every row with its converter for that entry (what ``align_dataset`` maps over the dataset).

LLaMA-Factory's ``llamafactory.data`` package __init__ imports its multimodal plugin and so
torchaudio, which has no build for the torch this venv shares; the parser and converter
modules themselves need neither, so they are loaded without running that __init__.
"""

import importlib.util
import json
import sys
import types
from pathlib import Path


def _data_package():
    root = Path(importlib.util.find_spec("llamafactory").origin).parent / "data"
    pkg = types.ModuleType("llamafactory.data")
    pkg.__path__ = [str(root)]
    sys.modules.setdefault("llamafactory.data", pkg)
    from llamafactory.data import converter, parser

    return parser, converter


def main(dataset_dir: str, name: str) -> dict:
    import datasets

    parser, converter = _data_package()
    (attr,) = parser.get_dataset_list([name], dataset_dir)
    path = str(Path(dataset_dir) / attr.dataset_name)
    kind = "parquet" if path.endswith(".parquet") else "json"
    ds = datasets.load_dataset(kind, data_files=path, split="train")
    data_args = types.SimpleNamespace(media_dir=dataset_dir, streaming=False)
    conv = converter.get_dataset_converter(attr.formatting, attr, data_args)
    rows = [conv(ex) for ex in ds]
    return {"ranking": attr.ranking, "formatting": attr.formatting,
            "rows": [{k: r[k] for k in ("_prompt", "_response", "_system")} for r in rows]}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2]), default=str))
