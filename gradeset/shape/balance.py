"""Seed 003's merge + rebalance: per-prompt correctness buckets, caps, down/up-sampling.

Every group falls in one bucket by its graded responses: ``all-correct``,
``all-wrong``, ``mixed`` (or ``ungraded``). Balancing then

1. keeps only the responses asked for (``keep``: all / correct / incorrect),
2. down-samples (and optionally up-samples by repetition) each prompt to
   ``per_prompt`` responses, keeping the correct/incorrect proportion,
3. caps groups per bucket (within each task) and groups or rows per task.

Which groups survive a cap is decided by a hash of (seed, group id), not by input
order: the result is the same whatever order files are merged in. Only groups of
capped buckets are held (the survivors of each cap); groups nothing can drop stream
straight through, and the held survivors follow at the end, in input order. Task caps
need every group of the task, so with them all survivors are held.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gradeset.errors import GradesetError
from gradeset.records import bucket_of_flags, ensure_id
from gradeset.shape.scoring import ShapeError, bump, is_correct, stable_rng_seed

BUCKETS = ("all-correct", "all-wrong", "mixed", "ungraded")
KEEP = ("all", "correct", "incorrect")
ANY = "*"


def parse_caps(spec: str | dict | None, *, what: str = "cap") -> dict[str, int]:
    """``"mixed=5000,all-correct=1000"`` -> dict; ``*`` is the default for unnamed keys."""
    if spec is None or spec == "":
        return {}
    if isinstance(spec, dict):
        items = spec.items()
    else:
        items = []
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ShapeError(f"bad {what} {part!r}: expected NAME=COUNT (e.g. mixed=5000)")
            k, _, v = part.partition("=")
            items.append((k.strip(), v.strip()))
    out: dict[str, int] = {}
    for k, v in items:
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ShapeError(f"bad {what} {k}={v!r}: expected a whole number") from None
        if n < 0:
            raise ShapeError(f"bad {what} {k}={n}: must be >= 0")
        out[str(k)] = n
    return out


@dataclass
class BalanceConfig:
    bucket_caps: dict[str, int] = field(default_factory=dict)   # groups per bucket, within each task
    task_caps: dict[str, int] = field(default_factory=dict)     # groups per task
    task_row_caps: dict[str, int] = field(default_factory=dict)  # rows (responses) per task
    bucket_ratios: dict[str, float] = field(default_factory=dict)  # target mix of buckets within each task
    drop_buckets: tuple[str, ...] = ()
    per_prompt: int | None = None
    upsample: bool = False
    keep: str = "all"
    default_task: str = "default"
    seed: int = 0
    correct_threshold: float = 1.0

    def __post_init__(self) -> None:
        self.bucket_caps = parse_caps(self.bucket_caps, what="bucket cap")
        self.task_caps = parse_caps(self.task_caps, what="task cap")
        self.task_row_caps = parse_caps(self.task_row_caps, what="task row cap")
        self.bucket_ratios = parse_ratios(self.bucket_ratios)
        if isinstance(self.drop_buckets, str):
            self.drop_buckets = tuple(b.strip() for b in self.drop_buckets.split(",") if b.strip())
        for b in list(self.bucket_caps) + list(self.drop_buckets) + list(self.bucket_ratios):
            if b not in BUCKETS and b != ANY:
                raise ShapeError(f"unknown bucket {b!r}; buckets are {', '.join(BUCKETS)}")
        if self.keep not in KEEP:
            raise ShapeError(f"keep must be one of {', '.join(KEEP)}, got {self.keep!r}")
        if self.per_prompt is not None and self.per_prompt < 1:
            raise ShapeError(f"per_prompt must be >= 1, got {self.per_prompt}")
        if self.upsample and not self.per_prompt:
            raise ShapeError("upsample needs per_prompt (the number of responses to reach)")

    @property
    def capped(self) -> bool:
        return bool(self.bucket_caps or self.task_caps or self.task_row_caps or self.bucket_ratios)

    @property
    def holds_all(self) -> bool:
        """Whether any group may still be cut at the end (task caps and ratios need every group)."""
        return bool(self.task_caps or self.task_row_caps or self.bucket_ratios)


def rows_of(group: dict) -> int:
    """Rows a group becomes in a one-row-per-completion layout (a prompt-only group is one row)."""
    return max(1, len(group.get("responses") or []))


def parse_ratios(spec: str | dict | None) -> dict[str, float]:
    """``"mixed=2,all-correct=1,all-wrong=1"`` -> shares of the mix (any positive weights)."""
    if not spec:
        return {}
    items = spec.items() if isinstance(spec, dict) else [
        p.split("=", 1) if "=" in p else (p, None) for p in str(spec).split(",") if p.strip()]
    out: dict[str, float] = {}
    for k, v in items:
        try:
            w = float(v)
        except (TypeError, ValueError):
            raise ShapeError(f"bad bucket ratio {k}={v!r}: expected NAME=WEIGHT, e.g. mixed=2") from None
        if w < 0:
            raise ShapeError(f"bad bucket ratio {k}={w}: must be >= 0")
        out[str(k).strip()] = w
    if not any(out.values()):
        raise ShapeError("bucket ratios must have at least one positive weight")
    return out


def ratio_caps(counts: dict[str, int], ratios: dict[str, float]) -> dict[str, int]:
    """Largest per-bucket counts in the ratio that the available groups allow.

    Buckets without a weight are left as they are; a bucket with weight 0 is dropped; a
    weighted bucket the task does not have is ignored (otherwise it would empty the task).
    """
    weighted = {b: w for b, w in ratios.items() if w > 0 and counts.get(b, 0) > 0}
    scale = min((counts.get(b, 0) / w for b, w in weighted.items()), default=0.0)
    caps = {b: int(scale * w + 1e-9) for b, w in weighted.items()}
    caps.update({b: 0 for b, w in ratios.items() if w == 0})
    return caps


def bucket_of(group: dict, threshold: float = 1.0) -> str:
    """all-correct / all-wrong / mixed / ungraded, reading scores where ``correct`` is missing."""
    return bucket_of_flags([is_correct(r, threshold) for r in group.get("responses") or [] if isinstance(r, dict)])


def _cap(caps: dict[str, int], key: str) -> int | None:
    if key in caps:
        return caps[key]
    return caps.get(ANY)


class Balancer:
    """Stream groups in with :meth:`add`, take the rest with :meth:`finish`."""

    def __init__(self, config: BalanceConfig | None = None, **params: Any):
        self.cfg = config if config is not None else BalanceConfig(**params)
        self.stats: dict[str, int] = {}
        self.before: dict[tuple[str, str], list[int]] = {}
        self.after: dict[tuple[str, str], list[int]] = {}
        self._n = 0
        # (task, bucket) -> heap of (-priority, index, group); bounded by the bucket cap
        self._held: dict[tuple[str, str], list] = {}

    # -- per group ----------------------------------------------------------------
    def _sample(self, g: dict, flags: list[bool | None], h: int) -> dict:
        cfg = self.cfg
        responses = list(g.get("responses") or [])
        if cfg.keep != "all":
            want = cfg.keep == "correct"
            pick = [i for i, f in enumerate(flags) if f is want]
            bump(self.stats, "responses_filtered", len(responses) - len(pick))
            responses = [responses[i] for i in pick]
            flags = [flags[i] for i in pick]
        k = cfg.per_prompt
        if k and len(responses) > k:
            responses = self._downsample(h, responses, flags, k)
        elif k and cfg.upsample and 0 < len(responses) < k:
            responses = self._upsample(h, responses, k)
        if responses is not g.get("responses"):
            g = dict(g)
            g["responses"] = responses
        return g

    @staticmethod
    def _order(h: int, n: int) -> list[int]:
        """A seeded order of n responses; cheap (one multiply each) since it runs per group."""
        if n <= 1:
            return list(range(n))
        h32 = h & 0xFFFFFFFF
        return sorted(range(n), key=lambda i: ((i + 1) * 0x9E3779B1 ^ h32) * 0x85EBCA6B & 0xFFFFFFFF)

    def _downsample(self, h: int, responses: list[dict], flags: list[bool | None], k: int) -> list[dict]:
        """k responses keeping the correct share (at least one of each kind when both exist and k >= 2)."""
        order = self._order(h, len(responses))
        good = [i for i in order if flags[i]]
        bad = [i for i in order if not flags[i]]
        n_good = round(k * len(good) / len(responses))
        if k >= 2 and good and bad:
            n_good = min(max(n_good, 1), k - 1)
        n_good = min(n_good, len(good))
        n_bad = min(k - n_good, len(bad))
        n_good = min(k - n_bad, len(good))
        chosen = sorted(good[:n_good] + bad[:n_bad])
        bump(self.stats, "responses_downsampled", len(responses) - len(chosen))
        return [responses[i] for i in chosen]

    def _upsample(self, h: int, responses: list[dict], k: int) -> list[dict]:
        order = self._order(h, len(responses))
        out = list(responses)
        j = 0
        while len(out) < k:
            copy = dict(responses[order[j % len(order)]])
            meta = dict(copy.get("meta") or {})
            meta["upsampled"] = True
            copy["meta"] = meta
            out.append(copy)
            j += 1
        bump(self.stats, "responses_upsampled", k - len(responses))
        return out

    @staticmethod
    def _tally(table: dict, task: str, b: str, g: dict) -> None:
        cell = table.get((task, b))
        if cell is None:
            cell = table[(task, b)] = [0, 0]
        cell[0] += 1
        cell[1] += len(g.get("responses") or ()) or 1

    def add(self, g: dict) -> list[dict]:
        """Groups that can be emitted now (all of them when nothing is capped)."""
        ensure_id(g)
        cfg = self.cfg
        task = g.get("task") or cfg.default_task
        thr = cfg.correct_threshold
        flags = [c if (c := r.get("correct")) is True or c is False else is_correct(r, thr)
                 for r in g.get("responses") or ()]
        b = bucket_of_flags(flags)
        bump(self.stats, "groups_in")
        self._tally(self.before, task, b, g)
        if b in cfg.drop_buckets:
            bump(self.stats, "dropped_bucket")
            return []
        h = stable_rng_seed(cfg.seed, g["id"])  # one hash per group: cap priority and response order
        g = self._sample(g, flags, h)
        if cfg.keep != "all" and not g.get("responses"):
            bump(self.stats, "dropped_no_kept_responses")
            return []
        if not cfg.capped:
            self._emit(task, b, g)
            return [g]
        cap = _cap(cfg.bucket_caps, b)
        if cap is None and not cfg.holds_all:
            # nothing can drop this group later: let it through now (memory stays flat)
            self._emit(task, b, g)
            return [g]
        self._n += 1
        prio = h / 2.0**64
        heap = self._held.setdefault((task, b), [])
        if cap is None:
            heap.append((-prio, self._n, g))
        elif cap == 0:
            bump(self.stats, "dropped_bucket_cap")
        elif len(heap) < cap:
            heapq.heappush(heap, (-prio, self._n, g))
        elif -heap[0][0] > prio:
            heapq.heapreplace(heap, (-prio, self._n, g))
            bump(self.stats, "dropped_bucket_cap")
        else:
            bump(self.stats, "dropped_bucket_cap")
        return []

    def _emit(self, task: str, b: str, g: dict) -> None:
        bump(self.stats, "groups_out")
        bump(self.stats, "rows_out", len(g.get("responses") or ()) or 1)
        self._tally(self.after, task, b, g)

    def _apply_ratios(self) -> None:
        """Trim each task's buckets to the target mix, keeping the lowest hash priorities."""
        tasks = {t for t, _ in self._held}
        for task in tasks:
            counts = {b: len(h) for (t, b), h in self._held.items() if t == task}
            for b, cap in ratio_caps(counts, self.cfg.bucket_ratios).items():
                heap = self._held.get((task, b))
                if heap is None or len(heap) <= cap:
                    continue
                heap.sort(key=lambda t: (-t[0], t[1]))
                bump(self.stats, "dropped_bucket_ratio", len(heap) - cap)
                self._held[(task, b)] = heap[:cap]

    def finish(self) -> list[dict]:
        """Apply the task caps to what the bucket caps kept; survivors in input order."""
        cfg = self.cfg
        by_task: dict[str, list[tuple[float, int, str, dict]]] = {}
        if cfg.bucket_ratios:
            self._apply_ratios()
        for (task, b), heap in self._held.items():
            for negp, n, g in heap:
                by_task.setdefault(task, []).append((-negp, n, b, g))
        self._held = {}
        out: list[tuple[int, str, str, dict]] = []
        for task, items in by_task.items():
            items.sort(key=lambda t: (t[0], t[1]))
            gcap = _cap(cfg.task_caps, task)
            rcap = _cap(cfg.task_row_caps, task)
            groups = rows = 0
            for _, n, b, g in items:
                if gcap is not None and groups >= gcap:
                    bump(self.stats, "dropped_task_cap")
                    continue
                r = rows_of(g)
                if rcap is not None and rows + r > rcap:
                    bump(self.stats, "dropped_row_cap")
                    continue
                groups += 1
                rows += r
                out.append((n, task, b, g))
        out.sort(key=lambda t: t[0])
        for _, task, b, g in out:
            self._emit(task, b, g)
        return [g for _, _, _, g in out]


def balance(groups: Iterable[dict], config: BalanceConfig | None = None, **params: Any
            ) -> tuple[list[dict], Balancer]:
    """(balanced groups, the balancer with ``stats``, ``before`` and ``after`` tables)."""
    bal = Balancer(config, **params)
    out: list[dict] = []
    for g in groups:
        out.extend(bal.add(g))
    out.extend(bal.finish())
    return out, bal


def iter_balance(groups: Iterable[dict], balancer: Balancer) -> Iterator[dict]:
    for g in groups:
        yield from balancer.add(g)
    yield from balancer.finish()


def format_table(before: dict, after: dict | None = None) -> str:
    """The bucket table (task x bucket: groups and rows), before and after balancing."""
    keys = sorted(set(before) | set(after or {}))
    head = ["task", "bucket", "groups", "rows"]
    if after is not None:
        head += ["groups after", "rows after"]
    lines = [head]
    tot = [0, 0, 0, 0]
    for task, b in keys:
        g0, r0 = before.get((task, b), [0, 0])
        row = [task, b, str(g0), str(r0)]
        tot[0] += g0
        tot[1] += r0
        if after is not None:
            g1, r1 = after.get((task, b), [0, 0])
            row += [str(g1), str(r1)]
            tot[2] += g1
            tot[3] += r1
        lines.append(row)
    total = ["total", "", str(tot[0]), str(tot[1])] + ([str(tot[2]), str(tot[3])] if after is not None else [])
    lines.append(total)
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    text = []
    for j, r in enumerate(lines):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        text.append("  ".join(cells).rstrip())
        if j == 0 or j == len(lines) - 2:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)


class BalanceStep:
    """Runner step: ``process`` sees the whole stream (caps need it); ``stats`` counts."""

    def __init__(self, **params: Any):
        self.params = params
        self.config = BalanceConfig(**params)
        self.stats: dict[str, int] = {}
        self.balancer: Balancer | None = None

    def __call__(self, batch: list[dict]) -> list[dict]:
        if self.config.capped:
            raise GradesetError("balance with caps needs the whole stream: runners must call process()")
        bal = Balancer(self.config)
        out = [x for g in batch for x in bal.add(g)]
        for k, v in bal.stats.items():
            self.stats[k] = self.stats.get(k, 0) + v
        return out

    def process(self, batches: Iterable[list[dict]]) -> Iterator[list[dict]]:
        self.balancer = Balancer(self.config)
        self.stats = self.balancer.stats
        for batch in batches:
            out = [x for g in batch for x in self.balancer.add(g)]
            if out:
                yield out
        rest = self.balancer.finish()
        for i in range(0, len(rest), 1024):
            yield rest[i:i + 1024]

    def __getstate__(self) -> dict:
        return {"params": self.params}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["params"])
