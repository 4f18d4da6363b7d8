"""Export of shaped groups: the formats layouts, and the layout each build kind writes.

Shaping produces groups (pairs, single-response examples, prompt-only rows); turning
them into trainer rows is the layouts' job (``gradeset.formats``), so there is one
definition of each layout. ``export`` is kept as the name other packages import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

# The layout each build kind writes by default.
DEFAULT_LAYOUT = {"sft": "trl-sft", "dpo": "trl-dpo", "grpo": "trl-prompt", "kto": "trl-kto"}

# Layouts that once had a stand-in here before gradeset.formats had them; none remain.
# (Kept because the pipeline loader lists it when validating layout names.)
_FALLBACK: dict[str, Any] = {}


def export(groups: Iterable[dict], layout: str, **opts: Any) -> Iterator[dict]:
    """Rows of ``layout`` from groups (``gradeset.formats.export_groups``)."""
    from gradeset.formats import export_groups

    return export_groups(groups, layout, **opts)
