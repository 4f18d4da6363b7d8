"""Grade every response of a batch of groups: the function behind the command and the step."""

from __future__ import annotations

from typing import Any

from gradeset.records import prompt_text, response_text
from gradeset.verify.pool import Item, VerifyPool, inline_map
from gradeset.verify.registry import UntrustedTask, accepted_options, data_task, get_verifier
from gradeset.verify.verdict import Asked, Verdict

STAT_KEYS = ("graded", "correct", "unparsed", "truncated", "timeouts", "errors", "failed_generations",
             "rejected_tasks", "path_exact", "path_symbolic", "path_judge")


def task_of(group: dict, task: str, default: str = "math") -> str:
    """The verifier for a group: the user's task, or (auto) the group's own registered task.

    Raises UntrustedTask when an auto group's ``task`` field names no registered verifier:
    a row never chooses code to import (see ``registry.data_task``).
    """
    if task != "auto":
        return task
    t = group.get("task")
    if t is None or t == "":
        return default
    return data_task(t, trusted={default})


def gold_of(group: dict, verifier: Any) -> Any:
    """What a verifier compares with: the answer; code tests; the whole context for judges."""
    if getattr(verifier, "wants_context", False):
        return {"prompt": prompt_text(group.get("prompt")), "answer": group.get("answer"),
                "reference": group.get("reference"), "rubric": group.get("rubric")}
    answer = group.get("answer")
    if answer is None and group.get("tests") is not None:
        return {"tests": group["tests"]}
    if answer is not None and getattr(verifier, "wants_question", False):
        question = prompt_text(group.get("prompt"))
        if question:
            return Asked(answer, question)
    return answer


def is_truncated(response: dict) -> bool:
    meta = response.get("meta") if isinstance(response, dict) else None
    return isinstance(meta, dict) and meta.get("finish_reason") == "length"


class Grader:
    """Verifiers for the tasks seen so far plus a pool; reused across batches by the step."""

    def __init__(self, task: str = "math", workers: int = 1, timeout: float = 5.0, *,
                 default_task: str = "math", **opts: Any):
        from gradeset.verify.cascade import JudgeFallback, split_options

        self.task = task
        self.default_task = default_task  # auto: for groups without a task field (the user's choice)
        self.workers = int(workers)
        self.timeout = float(timeout)
        self.opts, judge = split_options(opts)
        self.judge = JudgeFallback(**judge) if judge else None
        self.verifiers: dict[str, Any] = {}
        self.pool: VerifyPool | None = None
        self.stats = dict.fromkeys(STAT_KEYS, 0)

    def verifier(self, task: str):
        v = self.verifiers.get(task)
        if v is None:
            opts = self.opts
            if self.task == "auto":  # options meant for one family must not break another
                ok = accepted_options(task)
                opts = opts if ok is None else {k: val for k, val in opts.items() if k in ok}
            v = self.verifiers[task] = get_verifier(task, **opts)
            if self.pool is not None:  # a new task: restart workers with the new verifier set
                self.pool.close()
                self.pool = None
        return v

    def _pool(self) -> VerifyPool:
        if self.pool is None:
            budgets = {k: v.time_budget(self.timeout) for k, v in self.verifiers.items() if hasattr(v, "time_budget")}
            self.pool = VerifyPool(dict(self.verifiers), workers=self.workers, timeout=self.timeout, budgets=budgets)
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["pool"] = None
        return state

    def task_problem(self, group: dict) -> str | None:
        """Why group cannot be graded here (its task names no registered verifier), or None."""
        try:
            task_of(group, self.task, self.default_task)
        except UntrustedTask as exc:
            return str(exc)
        return None

    def grade(self, groups: list[dict]) -> list[dict]:
        """Grade groups in place; a group whose own task is not a registered verifier is left
        ungraded with the reason in each response's ``meta.verify_detail`` (and counted in
        ``stats["rejected_tasks"]``); callers with a reject file filter with ``task_problem``."""
        items: list[Item] = []
        where: list[dict] = []
        batch_items: dict[str, list[int]] = {}
        for g in groups:
            responses = g.get("responses") or []
            if not responses:
                continue
            try:
                task = task_of(g, self.task, self.default_task)
            except UntrustedTask as exc:
                self.stats["rejected_tasks"] += 1
                for r in responses:
                    if isinstance(r, dict):
                        self._mark_ungraded(r, f"not graded: {exc}")
                continue
            v = self.verifier(task)
            gold = gold_of(g, v)
            for r in responses:
                if not isinstance(r, dict):
                    continue
                if r.get("failed"):
                    # the request failed: there is no model answer to grade, and scoring it 0
                    # would turn a network error into a "wrong" sample for pairs and pass rates
                    self._leave_ungraded(r, "generation failed: not graded")
                    continue
                if is_truncated(r):
                    self._fill(r, Verdict(0.0, False, None, "truncated (finish_reason=length)"))
                    continue
                if hasattr(v, "grade_batch"):
                    batch_items.setdefault(task, []).append(len(items))
                items.append((task, response_text(r), gold))
                where.append(r)
        verdicts: list[Verdict | None] = [None] * len(items)
        for task, idxs in batch_items.items():  # judges batch HTTP calls in this process
            out = self.verifiers[task].grade_batch([items[i][1:] for i in idxs])
            for i, verdict in zip(idxs, out):
                verdicts[i] = verdict
        rest = [i for i, v in enumerate(verdicts) if v is None]
        if rest:
            todo = [items[i] for i in rest]
            if self.workers <= 0:
                out = inline_map(self.verifiers, todo)
            else:
                out = self._pool().map(todo)
            for i, verdict in zip(rest, out):
                verdicts[i] = verdict
        if self.judge is not None:
            self._ask_judge(items, verdicts)
        for r, verdict in zip(where, verdicts):
            self._fill(r, verdict)
        return groups

    def _ask_judge(self, items: list[Item], verdicts: list) -> None:
        """The optional model fallback for answers the math rules rejected (see ``cascade``)."""
        from gradeset.verify.maths import gold_text

        todo = [i for i, (task, _, _) in enumerate(items)
                if getattr(self.verifiers[task], "wants_question", False) and self.judge.wants(verdicts[i])]
        asks = []
        for i in todo:
            gold = items[i][2]
            question = gold.question if isinstance(gold, Asked) else ""
            answer = gold.answer if isinstance(gold, Asked) else gold
            if isinstance(answer, list | tuple):
                answer = " or ".join(gold_text(a) for a in answer)
            asks.append((question, gold_text(answer), verdicts[i].parsed))
        for i, said in zip(todo, self.judge.review(asks)):
            v = verdicts[i]
            if said is None:
                v.detail = ((v.detail + "; ") if v.detail else "") + "judge gave no yes/no: rules kept"
            else:
                verdicts[i] = Verdict(1.0 if said else 0.0, said, v.parsed,
                                      "judge: equivalent" if said else "judge: not equivalent", path="judge")

    def _leave_ungraded(self, response: dict, why: str) -> None:
        self._mark_ungraded(response, why)
        self.stats["failed_generations"] += 1

    @staticmethod
    def _mark_ungraded(response: dict, why: str) -> None:
        response["score"] = response["correct"] = response["parsed"] = None
        meta = response.get("meta")
        if not isinstance(meta, dict):
            meta = response["meta"] = {}
        meta["verify_detail"] = why

    def _fill(self, response: dict, v: Verdict) -> None:
        response["score"] = float(v.score)
        response["correct"] = bool(v.correct)
        response["parsed"] = v.parsed
        if v.execution_output is not None:
            response["execution_output"] = v.execution_output
        d = v.detail or ""
        path = v.path or (None if d == "timeout" or d.startswith("error") else "exact")
        if v.detail or path:
            meta = response.get("meta")
            if not isinstance(meta, dict):
                meta = response["meta"] = {}
            if v.detail:
                meta["verify_detail"] = v.detail
            if path:
                meta["verify_path"] = path
                key = f"path_{path}"
                self.stats[key] = self.stats.get(key, 0) + 1
        s = self.stats
        if v.parsed is not None:
            s["graded"] += 1
        else:
            s["unparsed"] += 1
        if v.correct:
            s["correct"] += 1
        if d == "timeout":
            s["timeouts"] += 1
        elif d.startswith("error"):
            s["errors"] += 1
        elif d.startswith("truncated"):
            s["truncated"] += 1


def verify_groups(groups: list[dict], task: str = "math", workers: int = 1, timeout: float = 5.0,
                  **opts: Any) -> list[dict]:
    """Fill score/correct/parsed (and execution_output for code) on every response.

    ``task="auto"`` uses each group's ``task`` field, which may only name a registered
    verifier (others are left ungraded with the reason). ``workers=0`` grades in this
    process without a hard time limit; any other value uses killable worker processes.
    """
    grader = Grader(task=task, workers=workers, timeout=timeout, **opts)
    try:
        return grader.grade(groups)
    finally:
        grader.close()
