"""A verifier plugin whose import is visible: importing it writes the file $GRADESET_TEST_MARKER.

The security tests name it from data rows (must never be imported) and from the user's
``--task`` (must be imported and work), so the marker proves both directions.
"""

import os
from pathlib import Path

_marker = os.environ.get("GRADESET_TEST_MARKER")
if _marker:
    Path(_marker).write_text("imported\n")


def grade(completion, gold):
    ok = completion.strip() == str(gold).strip()
    return {"score": 1.0 if ok else 0.0, "correct": ok, "parsed": completion.strip() or None}
