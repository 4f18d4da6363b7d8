"""Writes rows.jsonl: groups for the partitioned-program tests (run once; output committed).

Holds exact duplicates (case / spacing variants), near-duplicate clusters, a chain
A~B~C where B is dropped so C survives, near twins that differ only in a number
(the numbers guard keeps both), rows without ids, rows sharing an id (sample ties),
all-correct / all-wrong / mixed / ungraded groups in two tasks, and a few bad rows.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "apple", "river", "stone", "cloud", "paper", "glass", "metal", "wood", "light", "sound"]


def sentence(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def responses(rng: random.Random, kind: str, n: int) -> list[dict]:
    out = []
    for i in range(n):
        if kind == "ungraded":
            out.append({"text": f"answer {i}"})
            continue
        ok = kind == "all-correct" or (kind == "mixed" and (i % 3 != 0 if i else False))
        r = {"text": "" if rng.random() < 0.05 else f"answer {i} " + " ".join(sentence(rng, rng.randint(1, 30))),
             "correct": ok, "score": 1.0 if ok else 0.0, "parsed": str(rng.randint(0, 3))}
        if rng.random() < 0.1:
            r["meta"] = {"finish_reason": "length"}
        out.append(r)
    return out


def main() -> None:
    rng = random.Random(18)
    prompts: list[str] = []
    for _ in range(60):  # distinct questions
        prompts.append(" ".join(sentence(rng, rng.randint(8, 40))) + f" {rng.randint(1, 99)}?")
    for _ in range(5):  # near-duplicate clusters: one or two words changed at the end of long texts
        words = sentence(rng, 60)
        for k in range(4):
            w = list(words)
            if k:
                w[-k] = "changed" + "xyz"[k - 1]
            prompts.append(" ".join(w) + " 7?")
    a = sentence(rng, 40)  # chain: A~B, B~C, not A~C
    b = a[:34] + sentence(rng, 6)
    c = b[6:] + sentence(rng, 6)
    prompts += [" ".join(x) for x in (a, b, c)]
    twin = " ".join(sentence(rng, 50))
    prompts += [twin + " it costs 180 dollars", twin + " it costs 240 dollars"]  # numbers guard
    for i in range(12):  # exact duplicates: case and spacing variants of earlier prompts
        p = prompts[i * 3]
        prompts.append(p.upper() if i % 2 else "  " + p.replace(" ", "  "))
    prompts.append("")  # empty prompt
    rng.shuffle(prompts)
    kinds = ("all-correct", "all-wrong", "mixed", "ungraded")
    rows: list[dict] = []
    for i, p in enumerate(prompts):
        kind = kinds[rng.randrange(4)] if i % 5 else "mixed"
        g = {"prompt": p, "answer": str(i % 4), "task": "math" if i % 3 else "code",
             "source": "fixture", "difficulty": rng.choice(["easy", "medium", "hard"]),
             "responses": responses(rng, kind, rng.choice([2, 4, 4, 6]))}
        if i % 7 == 3:
            g["id"] = f"shared-{i % 2}"  # ids shared by several rows
        elif i % 11 != 5:
            g["id"] = f"g{i:04d}"
        # (i % 11 == 5 rows have no id: steps give them their content id)
        rows.append(g)
    rows.append({"prompt": 5, "responses": "not a list"})  # invalid for check
    rows.append({"prompt": "bad score row", "id": "bad-score", "responses": [{"text": "x", "score": 7}]})
    path = Path(__file__).with_name("rows.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
