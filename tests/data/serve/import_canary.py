"""A module that leaves a mark when imported: proves a request could NOT make the server import it."""

import os
from pathlib import Path

if os.environ.get("GRADESET_IMPORT_CANARY"):
    Path(os.environ["GRADESET_IMPORT_CANARY"]).write_text("imported")


def grade(completion, gold):
    return True
