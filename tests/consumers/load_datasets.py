"""Load files with the HF ``datasets`` of the running interpreter; print what it read as JSON.

Run by tests/test_consumers.py with a venv's python (datasets 4.x) or in-process (5.x).
usage: python load_datasets.py FILE...
"""

import json
import sys


def load(path: str) -> dict:
    import datasets

    kind = "parquet" if path.endswith(".parquet") else "json"
    ds = datasets.load_dataset(kind, data_files=path, split="train")
    return {"file": path, "version": datasets.__version__, "rows": ds.to_list(),
            "features": {k: str(v) for k, v in ds.features.items()}}


if __name__ == "__main__":
    print(json.dumps([load(p) for p in sys.argv[1:]], default=str))
