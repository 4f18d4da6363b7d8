"""The group layout's import and export checked on a whole Arrow table at once.

``group.to_groups`` validates and normalises one dict at a time (``validate_group``,
``normalize_group``, ``ensure_id``) and ``export_groups`` writes answers as text. For
a table parsed from canonical JSONL this module reaches the same result with column
types and a few vectorised checks, so convert does not build a Python dict per row.
It answers None whenever a row could be rejected or changed in a way it does not
reproduce exactly (``responses`` null in some rows only, a ``metadata`` key, chat prompts, a float
answer, a score outside [0, 1], ...): the caller then takes the row-by-row path, which
stays the one definition of what is valid.
"""

from __future__ import annotations

from typing import Any

_TEXT_FIELDS = ("task", "category", "difficulty", "source", "reference")
_GOLDS = ("answer", "solution")


def _is_text_or_null(t) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_null(t)


def _scalar(t) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_null(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) \
        or pa.types.is_floating(t)


def canonical_group_table(table, first_keys: list[str] | None) -> Any:
    """table as importing and exporting it in the group layout would write it, or None.

    ``first_keys`` are the keys of the table's first row as written (Arrow cannot tell a
    missing key from a null): the row path adds ``responses`` and ``id`` at the end of a
    row that lacks them, so they come right after the first row's keys in the columns.
    None means "some row needs the row-by-row path" (it may be rejected, or changed in
    a way this function does not reproduce); it never means the rows are bad.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.schema.names
    if first_keys is None or len(set(names)) != len(names) or "prompt" not in names:
        return None
    prompt = table.column("prompt")
    if not pa.types.is_string(prompt.type) or prompt.null_count:
        return None
    for name in _TEXT_FIELDS:
        if name in names and not _is_text_or_null(table.schema.field(name).type):
            return None
    table = _no_responses_as_empty(table, pa)
    if table is None or not _responses_ok(table.column("responses")):
        return None
    table = _with_ids(table, pa, pc)  # before the golds become text: ids hash the answer as read
    if table is None:
        return None
    names = table.schema.names
    for name in _GOLDS:
        if name in names:
            text = _gold_text(table.column(name))
            if text is None:
                return None
            table = table.set_column(names.index(name), name, text)
    first = [k for k in first_keys if k in names]
    first += [k for k in ("responses", "id") if k not in first]
    order = first + [k for k in names if k not in first]
    return table if order == names else table.select(order)


def _no_responses_as_empty(table, pa) -> Any:
    """``normalize_group`` for prompt-only rows: no ``responses`` (or null in every row) becomes [].

    None where only some rows have null (the row path fills those one by one).
    """
    names = table.schema.names
    if "responses" in names and not pa.types.is_null(table.schema.field("responses").type):
        return table
    n = table.num_rows
    offsets = pa.Array.from_buffers(pa.int32(), n + 1, [None, pa.py_buffer(bytes(4 * (n + 1)))])
    empty = pa.ListArray.from_arrays(offsets, pa.nulls(0))  # n empty lists, built without pandas
    if "responses" in names:
        return table.set_column(names.index("responses"), "responses", empty)
    return table.append_column("responses", empty)  # put in place with the other added keys below


def _responses_ok(col) -> bool:
    """What ``validate_group`` asks of ``responses``, for the shape the fast path accepts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if not pa.types.is_list(t) or col.null_count:
        return False
    flat = pc.list_flatten(col)
    if pa.types.is_null(t.value_type):
        return len(flat) == 0  # all lists empty; a null element would be rejected
    if not pa.types.is_struct(t.value_type) or flat.null_count:
        return False
    st = t.value_type
    fields = {st.field(i).name: st.field(i).type for i in range(st.num_fields)}
    if "metadata" in fields or "text" not in fields or not pa.types.is_string(fields["text"]):
        return False
    if len(flat) == 0:
        return True
    if pc.struct_field(flat, "text").null_count:
        return False
    if "score" in fields:
        s = fields["score"]
        if not (pa.types.is_null(s) or pa.types.is_floating(s) or pa.types.is_integer(s)):
            return False
        if not pa.types.is_null(s):
            score = pc.struct_field(flat, "score")
            if score.null_count < len(score):
                lo, hi = pc.min_max(score).values()
                if lo.as_py() < 0 or hi.as_py() > 1:
                    return False
    if "correct" in fields and not (pa.types.is_boolean(fields["correct"]) or pa.types.is_null(fields["correct"])):
        return False
    return not ("meta" in fields and not (pa.types.is_struct(fields["meta"]) or pa.types.is_null(fields["meta"])))


def _gold_text(col) -> Any:
    """``answer_text`` on a column: ints and bools as text, text and structured golds unchanged.

    None for floats: Python's ``str(float)`` and Arrow's cast do not always spell a
    number the same way.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_string(t) or pa.types.is_null(t) or pa.types.is_struct(t) or pa.types.is_list(t):
        return col
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return pc.cast(col, pa.string())  # Arrow spells them as str(int) and answer_text's "true"/"false"
    return None


def _with_ids(table, pa, pc) -> Any:
    """``ensure_id``: a content id where a row has none (absent, null or empty); an existing id is kept."""
    from gradeset.records import group_id

    names = table.schema.names
    if "id" in names:
        ids = table.column("id")
        if not _is_text_or_null(ids.type):
            return None
        # no Python scalars here: turning one into Arrow imports pandas (0.2 s of a short run)
        empty = pc.invert(pc.cast(pc.binary_length(ids.cast(pa.string())), pa.bool_()))
        missing = pc.or_kleene(pc.is_null(ids), empty)
        if len(ids) == 0 or not pc.any(missing).as_py():
            return table if pa.types.is_string(ids.type) else table.set_column(
                names.index("id"), "id", ids.cast(pa.string()))
        need = missing.to_pylist()
        have = ids.to_pylist()
    else:
        need = [True] * table.num_rows
        have = [None] * table.num_rows
    answer_t = table.schema.field("answer").type if "answer" in names else pa.null()
    source_t = table.schema.field("source").type if "source" in names else pa.null()
    if not (_scalar(answer_t) and _is_text_or_null(source_t)):
        return None
    prompts = table.column("prompt").to_pylist()
    answers = table.column("answer").to_pylist() if "answer" in names else [None] * table.num_rows
    sources = table.column("source").to_pylist() if "source" in names else [None] * table.num_rows
    filled = [group_id(p, a, s) if n else i for n, i, p, a, s in zip(need, have, prompts, answers, sources,
                                                                        strict=True)]
    col = _string_array(filled)
    if "id" in names:
        return table.set_column(names.index("id"), "id", col)
    return table.append_column("id", col)


def _string_array(values: list[str]) -> Any:
    """A string array built from its buffers (``pa.array`` would import pandas to look at the list)."""
    import array

    import pyarrow as pa

    data = [v.encode("utf-8") for v in values]
    offsets = array.array("i", [0])
    total = 0
    for d in data:
        total += len(d)
        offsets.append(total)
    return pa.StringArray.from_buffers(len(data), pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(data)))
