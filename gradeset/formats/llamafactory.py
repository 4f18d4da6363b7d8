"""The ``dataset_info.json`` entry LLaMA-Factory needs to read a gradeset sharegpt / alpaca export.

LLaMA-Factory finds a dataset only through an entry in ``dataset_dir/dataset_info.json``,
and without ``columns.system`` it ignores an Alpaca ``system`` column; a pair file also needs
``ranking: true``. The entry follows LLaMA-Factory 0.9's ``DatasetAttr`` keys. Pure: the
command writes it next to the export.
"""

from __future__ import annotations

from typing import Any

LAYOUTS = ("sharegpt", "alpaca")


def dataset_info_entry(layout: str, file_name: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """The entry for a file of ``layout`` whose first row is ``row``; None for other layouts."""
    ranking = "chosen" in row and "rejected" in row
    if layout == "sharegpt":
        entry: dict[str, Any] = {"file_name": file_name, "formatting": "sharegpt",
                                 "columns": {"messages": "conversations"},
                                 "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                                          "assistant_tag": "gpt", "system_tag": "system", "observation_tag": "tool"}}
        if ranking:
            entry["ranking"] = True
            entry["columns"].update({"chosen": "chosen", "rejected": "rejected"})
        return entry
    if layout == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "system": "system"}
        columns.update({"chosen": "chosen", "rejected": "rejected"} if ranking else {"response": "output"})
        entry = {"file_name": file_name, "formatting": "alpaca", "columns": columns}
        if ranking:
            entry["ranking"] = True
        return entry
    return None
