"""A user verifier plugin for tests: ``python:plugin_example:grade``."""


def grade(completion, gold, bonus=0.0):
    ok = completion.strip().lower() == str(gold).strip().lower()
    return {"score": (1.0 if ok else 0.0), "correct": ok, "parsed": completion.strip() or None}


def spin(completion, gold):
    """Never returns for the completion "spin": a runaway grade the pool must kill."""
    while completion == "spin":
        pass
    return completion.strip() == str(gold).strip()
