"""Regenerate the check fixtures: python tests/data/check/make_fixtures.py (deterministic).

Each bad row of bad.jsonl is placed on a known line so the tests can assert that the
checks name exactly those lines.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
TOPICS = ["apples", "trains", "pencils", "marbles", "coins", "books", "birds", "chairs", "lamps", "shells",
          "stamps", "boats", "clocks", "tulips", "kites", "drums"]
CATS = ["addition", "subtraction", "multiplication"]
DIFF = ["easy", "medium", "hard"]


def prompt(i):
    a, b = 3 + 7 * i, 2 + 5 * i
    return (f"{TOPICS[i % len(TOPICS)].capitalize()} puzzle {i}: Sam has {a} {TOPICS[i % len(TOPICS)]} and "
            f"buys {b} more at the market on day {i}. How many does Sam have now?"), str(a + b)


def resp(answer, ok, k, finish="stop"):
    filler = " ".join(["so"] * (k % 5))
    text = f"Add the two amounts {filler} and the total is \\boxed{{{answer if ok else int(answer) + 1}}}."
    return {"text": text, "score": 1.0 if ok else 0.0, "correct": ok,
            "parsed": answer if ok else str(int(answer) + 1), "meta": {"finish_reason": finish, "sample_index": k}}


def group(i, pattern, **extra):
    p, a = prompt(i)
    g = {"id": f"g{i:03d}", "prompt": p, "answer": a, "task": "math", "category": CATS[i % 3],
         "difficulty": DIFF[(i // 3) % 3], "source": "fixture",
         "responses": [resp(a, ok, k) for k, ok in enumerate(pattern)]}
    g.update(extra)
    return g


def write(name, rows):
    with open(HERE / name, "w") as fh:
        for r in rows:
            fh.write(r if isinstance(r, str) else json.dumps(r))
            fh.write("\n")


def main():
    patterns = [[1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]]
    good = [group(i, [bool(x) for x in patterns[i % len(patterns)]]) for i in range(12)]
    write("good.jsonl", good)

    bad = []
    bad.append(group(0, [True, False, True, False]))                         # 1 fine
    bad.append('{"prompt": "broken json", "responses": [')                   # 2 invalid JSON
    bad.append(group(1, [True, False, True]))                                # 3 group size 3
    g = group(2, [True, False, True, False]); g["responses"][1]["score"] = 1.5
    bad.append(g)                                                            # 4 score out of range
    g = group(3, [True, False, True, False])
    for r in g["responses"]:
        r["score"] = None
    bad.append(g)                                                            # 5 no scores
    g = group(4, [True, False, True, False]); g["prompt"] = "   \n "
    bad.append(g)                                                            # 6 empty prompt
    g = group(0, [False, True, False, True]); g["id"] = "dup-of-1"
    g["prompt"] = "  " + g["prompt"].upper().replace(" ", "   ")
    bad.append(g)                                                            # 7 duplicate of line 1
    g = group(5, [True, False, True, False]); g["responses"][2]["text"] = "  "
    bad.append(g)                                                            # 8 empty response
    g = group(6, [True, False, True, False]); g["responses"][0]["meta"]["finish_reason"] = "length"
    bad.append(g)                                                            # 9 truncated
    g = group(7, [True, False, True, False])
    g["responses"][3]["text"] = "I think " + " ".join(f"step{k}" for k in range(400))
    bad.append(g)                                                            # 10 length outlier
    p8, _ = prompt(8)
    g = group(8, [True, False, True, False]); g["prompt"] = p8
    bad.append(g)                                                            # 11 base for near dup
    g = group(9, [True, False, True, False]); g["id"] = "near-of-11"
    g["prompt"] = p8.replace("How many does Sam have now?", "How many does Sam have now??  Please answer.")
    bad.append(g)                                                            # 12 near duplicate of 11
    g = group(10, [True, True, True, True]); bad.append(g)                   # 13 all correct
    g = group(11, [False, False, False, False]); bad.append(g)               # 14 all wrong
    g = group(12, [True, True, True, True]); bad.append(g)                   # 15 all correct
    write("bad.jsonl", bad)

    # test set: line 13's prompt (group 10) verbatim, and an 8-gram of group 11's prompt
    p10, _ = prompt(10)
    p11, _ = prompt(11)
    write("test.jsonl", [{"question": p10, "answer": "1"},
                         {"question": "Unrelated: " + " ".join(p11.split()[2:12]) + " ok?", "answer": "2"},
                         {"question": "What is the capital of France?", "answer": "Paris"}])

    # preference pairs as groups (responses == [chosen, rejected])
    def pair(i, chosen, rejected, cs=1.0, rs=0.0):
        p, a = prompt(20 + i)
        return {"id": f"p{i}", "prompt": p, "answer": a, "responses": [
            {"text": chosen, "score": cs, "correct": cs == 1.0}, {"text": rejected, "score": rs, "correct": rs == 1.0}]}

    pairs = [pair(0, "The total is 10.", "The total is 11."),
             pair(1, "Same answer 7.", "Same   answer 7."),                 # 2 identical texts
             pair(2, "It is 4.", "It is 5.", 1.0, 1.0),                     # 3 tied scores
             pair(3, "It is 6.", "It is 9.", 0.0, 1.0),                     # 4 inverted
             pair(4, "Answer 12.", "Answer 13.")]
    write("pairs.jsonl", pairs)

    def kto(i, label):
        p, a = prompt(30 + i)
        return {"id": f"k{i}", "prompt": p, "answer": a,
                "responses": [{"text": f"completion {i}", "score": float(label), "correct": label, "label": label}]}

    write("kto_balanced.jsonl", [kto(i, i % 2 == 0) for i in range(8)])
    write("kto_skewed.jsonl", [kto(i, i != 0) for i in range(8)])

    # splits: val shares group 2's prompt with good.jsonl (line 3); test is clean
    write("splits/val.jsonl", [group(2, [True, False]), group(40, [True, False])])
    write("splits/test.jsonl", [group(41, [True, False]), group(42, [False, True])])


if __name__ == "__main__":
    main()
