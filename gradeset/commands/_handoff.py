"""After an export: what the consumer needs besides the rows.

* LLaMA-Factory layouts (sharegpt, alpaca, incl. their ranking pairs): the
  ``dataset_info.json`` entry, merged into the file beside the output;
* verl: whether its default reward knows the ``data_source`` values written;
* openrlhf: the exact ``--data.*`` flags of its SFT / DPO / PPO scripts.

``watch`` sees the rows as they stream to the writer (nothing is held); ``finish`` runs
once the output is complete and only then touches the disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gradeset.errors import GradesetError


class Handoff:
    def __init__(self, layout: str, out: str | os.PathLike, conversational: bool = False):
        self.layout = layout
        self.out = Path(str(out).rstrip("/"))
        self.conversational = conversational
        self.first: dict[str, Any] | None = None
        self.kinds: set[str] = set()
        self.data_sources: dict[str, int] = {}

    def watch(self, rows: Iterable[dict]) -> Iterator[dict]:
        from gradeset.formats.openrlhf import kind_of

        for row in rows:
            if self.first is None:
                self.first = row
            if self.layout == "verl":
                ds = str(row.get("data_source"))
                self.data_sources[ds] = self.data_sources.get(ds, 0) + 1
            elif self.layout == "openrlhf":
                self.kinds.add(kind_of(row))
                self.conversational = self.conversational or not isinstance(row.get("input"), str)
            yield row

    def finish(self, note) -> None:
        """Write the sidecar files and tell (through ``note``) how the consumer reads the output."""
        if self.first is None:
            return
        from gradeset.formats.llamafactory import LAYOUTS, dataset_info_entry

        if self.layout in LAYOUTS:
            entry = dataset_info_entry(self.layout, self.out.name, self.first)
            if entry is not None:
                info = write_dataset_info(self.out.parent / "dataset_info.json", self.out.name.split(".")[0], entry)
                note(f"LLaMA-Factory: dataset '{self.out.name.split('.')[0]}' entry written to {info} "
                     f"(dataset_dir: {self.out.parent}, dataset: {self.out.name.split('.')[0]}"
                     + (", stage: dpo" if entry.get("ranking") else "") + ")")
        elif self.layout == "verl":
            from gradeset.formats.verl import scorer_knows

            unknown = sorted(ds for ds in self.data_sources if not scorer_knows(ds))
            if unknown:
                note(f"verl: default_compute_score has no reward for data_source {', '.join(map(repr, unknown))} "
                     "(it raises NotImplementedError); pass --data-source openai/gsm8k|lighteval/MATH, or use "
                     f"gradeset's verl reward: custom_reward_function.path={_verl_reward_path()} "
                     "custom_reward_function.name=compute_score (it grades with extra_info's verifier)")
            note(f"verl: data.train_files={self.out} data.prompt_key=prompt reward_model.reward_manager=naive")
        elif self.layout == "openrlhf":
            from gradeset.formats.openrlhf import flags

            for kind in sorted(self.kinds):
                note(f"OpenRLHF {kind}: {flags(kind, str(self.out), self.conversational)}")


def _verl_reward_path() -> str:
    import gradeset

    return str(Path(gradeset.__file__).resolve().parent / "serve" / "verl_reward.py")


def write_dataset_info(path: Path, name: str, entry: dict[str, Any]) -> Path:
    """Add or replace ``name`` in LLaMA-Factory's dataset_info.json, keeping the other entries."""
    import json

    from gradeset.io.atomic import write_bytes_atomic

    info: dict[str, Any] = {}
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GradesetError(f"{path}: exists but is not valid JSON ({exc}); not overwriting it") from exc
        if not isinstance(info, dict):
            raise GradesetError(f"{path}: expected a JSON object of dataset entries; not overwriting it")
    info[name] = entry
    write_bytes_atomic(path, (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode())
    return path
