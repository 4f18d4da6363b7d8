"""The sampling engine: plan what is missing, run it under the limits, cache every sample.

HTTP backends run on one event loop with a fixed pool of ``concurrency`` workers pulling
work from a queue (no task per request: a million-prompt run stays flat in memory);
every HTTP attempt also takes a slot, so stage-2 continuations count against the cap
too. Local backends (transformers, vLLM) run batch by batch.

Every sample is written to the request cache the moment it exists; the output is built
from the cache at the end, so an interrupted run loses only what was in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from gradeset.errors import GradesetError
from gradeset.generate.backends.base import RequestError, Sample
from gradeset.generate.cache import RequestCache, sample_key
from gradeset.generate.config import GenerateConfig
from gradeset.generate.cost import budget_exceeded, prices_of
from gradeset.generate.limits import RateLimiter, backoff_delay
from gradeset.generate.outcome import error_digest, short_message
from gradeset.generate.progress import Progress, Stats
from gradeset.generate.prompts import Prompt, build_prompt, needs_stage2, with_think_end
from gradeset.records import ensure_id

# Refusals that no retry fixes (bad key, no such model or path). When the first requests of
# a run all end like this, the run stops rather than recording one failure per prompt.
FATAL_STATUSES = frozenset({401, 403, 404})
# Refusals that are fatal when every one says the same thing (a wrong model name is a 400
# with one message; a too-long prompt is a 400 whose message differs per prompt).
SAME_MESSAGE_STATUSES = frozenset({400, 422})
REFUSALS_BEFORE_ABORT = 8


@dataclass
class Work:
    """Samples still to produce for one group (one request when the server honours n)."""

    gi: int
    gid: str
    prompt: Prompt
    indices: list[int]
    keys: list[str]


def _key_of(response: dict) -> str | None:
    meta = response.get("meta")
    return meta.get("sample_key") if isinstance(meta, dict) else None


def _keyed_responses(group: dict) -> dict[str, dict]:
    """The group's existing responses by request-cache key (those gradeset generated)."""
    out = {}
    for r in group.get("responses") or []:
        if isinstance(r, dict) and (k := _key_of(r)):
            out[k] = r
    return out


def _seed_for(cfg: GenerateConfig, gid: str, index: int) -> int | None:
    """A per-request seed derived from the run seed, stable across resumes."""
    if cfg.seed is None:
        return None
    raw = f"{cfg.seed}:{gid}:{index}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=4).digest(), "big") & 0x7FFFFFFF


def _est_tokens(prompt: Prompt, max_tokens: int, n: int) -> int:
    chars = sum(len(str(m.get("content") or "")) for m in prompt.messages)
    return chars // 4 + max_tokens * n


class Engine:
    def __init__(self, cfg: GenerateConfig, cache: RequestCache, *, progress: bool = False,
                 stats: Stats | None = None, backend=None):
        self.cfg = cfg
        self.cache = cache
        self.stats = stats or Stats()
        self.show_progress = progress
        self.fingerprint = cfg.sampling_fingerprint()
        self._backend = backend
        self.progress: Progress | None = None
        self._base_meta = cfg.response_meta()
        self._refused = 0
        self._refused_by_message: dict[str, int] = {}
        self._unreachable = 0
        self.limiter: RateLimiter | None = None
        self._abort: RequestError | None = None
        self.prices = prices_of(cfg)
        self.stop_reason: str | None = None  # a budget limit was reached: send nothing more
        self._budget = cfg.max_cost is not None or cfg.max_total_tokens is not None
        if backend is not None:
            self._adopt(backend)

    def _adopt(self, backend) -> None:
        """Use this backend, recording in every sample how it formats prompts."""
        self._backend = backend
        fmt = getattr(backend, "prompt_format", None)
        if callable(fmt):
            self._base_meta.update(fmt())

    def _get_backend(self):
        if self._backend is None:
            from gradeset.generate.backends import get_backend

            self._adopt(get_backend(self.cfg))
        return self._backend

    # -- planning ----------------------------------------------------------------------------
    def key_bases(self, groups: list[dict]) -> list[str]:
        """Cache key base per group: its id, plus ``#k`` for the k-th repeat of the same id in
        this batch.

        A prompt listed twice in one batch gets fresh samples for each copy instead of two
        copies of the same samples. The numbering restarts with every batch on purpose: a
        count carried across batches depended on which batches one engine happened to see,
        so a resumed run (finished chunks skipped) or a Ray actor (a share of the chunks)
        gave a repeat another key than the in-process run did, and different samples.
        Copies in different batches share their samples (same id, same index, same key).
        """
        seen: dict[str, int] = {}
        bases = []
        for g in groups:
            gid = ensure_id(g)["id"]
            k = seen.get(gid, 0)
            seen[gid] = k + 1
            bases.append(gid if k == 0 else f"{gid}#{k}")
        return bases

    def pending(self, groups: list[dict], n: int | None = None) -> int:
        """How many samples of these groups are not in the cache yet (for progress totals)."""
        n = self.cfg.n if n is None else n
        return sum(1 for base in self.key_bases(groups) for i in range(n)
                   if not self.cache.done(sample_key(base, i, self.fingerprint)))

    def plan(self, groups: list[dict], bases: list[str], n: int | None = None) -> list[Work]:
        n = self.cfg.n if n is None else n
        works: list[Work] = []
        for gi, gid in enumerate(bases):
            g = groups[gi]
            missing, keys = [], []
            have = _keyed_responses(g)
            for i in range(n):
                k = sample_key(gid, i, self.fingerprint)
                old = have.get(k)
                if (old is not None and not old.get("failed")) or self.cache.done(k):
                    self.stats.cached += 1
                else:
                    missing.append(i)
                    keys.append(k)
            if not missing:
                continue
            prompt = build_prompt(g, self.cfg.system_prompt, self.cfg.mcq_options)
            works.append(Work(gi, gid, prompt, missing, keys))
        self.stats.groups += len(groups)
        self.stats.planned += sum(len(w.indices) for w in works)
        return works

    def assemble(self, groups: list[dict], bases: list[str], n: int | None = None) -> list[dict]:
        """Groups with their cached samples appended (in sample order) to any existing responses."""
        n = self.cfg.n if n is None else n
        out = []
        for g, base in zip(groups, bases):
            have = _keyed_responses(g)
            new, replaced = [], set()
            for i in range(n):
                k = sample_key(base, i, self.fingerprint)
                old = have.get(k)
                if old is not None and not old.get("failed"):
                    continue  # the input already carries this sample (a re-run on its own output)
                r = self.cache.get(k)
                if r is None or (old is not None and r.get("failed")):
                    continue
                if old is not None:
                    replaced.add(k)  # a failed sample of the input, now generated
                new.append({**r, "meta": dict(r.get("meta") or {})})
                self.cache.release(k)
            kept = [r for r in g.get("responses") or []
                    if not (replaced and isinstance(r, dict) and _key_of(r) in replaced)]
            g2 = dict(g)
            g2["responses"] = kept + new
            if self.cfg.system_prompt:
                # Exports put it back in front of the prompt: the model is trained in the
                # format it was sampled with.
                g2["system_prompt"] = self.cfg.system_prompt
            out.append(g2)
        return out

    # -- recording ---------------------------------------------------------------------------
    def _response(self, index: int, sample: Sample | None, *, elapsed: float, error: str | None = None,
                  two_step: bool = False, stage1: Sample | None = None) -> dict[str, Any]:
        meta = dict(self._base_meta)
        meta.update({"sample_index": index, "generation_time_ms": int(elapsed * 1000),
                     "two_step_applied": two_step, "error": error})
        if sample is not None:
            ctoks = sample.completion_tokens
            if two_step and stage1 is not None:
                meta["stage1_tokens"] = stage1.completion_tokens
                meta["stage2_tokens"] = sample.completion_tokens
                if stage1.completion_tokens is not None and ctoks is not None:
                    ctoks = stage1.completion_tokens + ctoks
            meta.update({"finish_reason": sample.finish_reason, "prompt_tokens": sample.prompt_tokens,
                         "completion_tokens": ctoks, "tokens": ctoks})
            if sample.extra:
                meta.update(sample.extra)
            meta["usage"] = {"prompt_tokens": sample.prompt_tokens, "completion_tokens": ctoks}
            if self.prices is not None:
                # A request for n samples sends its prompt once: each sample bears its share.
                share = max(1, int(sample.extra.get("request_samples") or 1))
                ptoks = (sample.prompt_tokens or 0) / share + (sample.extra.get("stage2_prompt_tokens") or 0)
                meta["cost"] = round(self.prices.cost(ptoks, ctoks), 10)
        else:
            meta.update({"finish_reason": None, "prompt_tokens": None, "completion_tokens": None,
                         "tokens": None})
        text = sample.text if sample is not None else (stage1.text if stage1 is not None else "")
        resp: dict[str, Any] = {"text": text, "score": None, "correct": None, "parsed": None, "meta": meta}
        reasoning = (stage1.reasoning if stage1 is not None else None) or (sample.reasoning if sample else None)
        if reasoning:
            resp["reasoning"] = reasoning
        if error is not None:
            resp["failed"] = True
        return resp

    def _record(self, work: Work, pos: int, resp: dict) -> None:
        resp["meta"]["sample_key"] = work.keys[pos]
        self.cache.put(work.keys[pos], work.gid, work.indices[pos], resp)
        st = self.stats
        meta = resp["meta"]
        if resp.get("failed"):
            st.failed += 1
            msg = short_message(str(meta.get("error")))
            st.errors_by_message[msg] = st.errors_by_message.get(msg, 0) + 1
        else:
            st.generated += 1
        if meta.get("two_step_applied"):
            st.two_step += 1
        if self.progress is not None:
            self.progress.advance()

    # -- HTTP backends -----------------------------------------------------------------------
    def _bill(self, samples: list[Sample]) -> None:
        """Count what one request cost (its prompt once, every completion) and check the budget."""
        st = self.stats
        if not samples:
            return
        ptoks = samples[0].prompt_tokens or 0
        if len(samples) == 1:
            ctoks = samples[0].completion_tokens or 0
        else:
            ctoks = sum(s.completion_tokens or 0 for s in samples)
        st.prompt_tokens += ptoks
        st.completion_tokens += ctoks
        if self.prices is not None:
            st.cost += self.prices.cost(ptoks, ctoks)
        if self._budget and self.stop_reason is None:
            self.stop_reason = budget_exceeded(self.cfg, st.prompt_tokens, st.completion_tokens, st.cost)

    def _nothing_answered(self) -> bool:
        return self.stats.requests == 0

    def _setup_refusal(self, exc: RequestError) -> bool:
        """Count a refusal that says the run is set up wrong; True when the run must stop.

        Only while nothing has been answered yet: once the server has answered, a refusal
        is about one prompt, and the run goes on.
        """
        limit = max(1, min(REFUSALS_BEFORE_ABORT, self.stats.planned))
        if exc.status in FATAL_STATUSES and self.stats.generated == 0:
            self._refused += 1
            return self._refused >= limit
        if not self._nothing_answered():
            return False
        if exc.status in SAME_MESSAGE_STATUSES:
            msg = str(exc)
            self._refused_by_message[msg] = self._refused_by_message.get(msg, 0) + 1
            return self._refused_by_message[msg] >= limit
        if exc.unreachable:
            self._unreachable += 1
            return self._unreachable >= limit
        return False

    async def run_async(self, works: list[Work]) -> None:
        cfg = self.cfg
        backend = self._get_backend()
        if self.limiter is None:
            self.limiter = RateLimiter(cfg.rpm, cfg.tpm)
        else:  # a later chunk on a new event loop: keep the pacing and token budget, new lock
            self.limiter.rebind()
        # Stage-2 continuations are extra requests from the same worker: only then can the
        # worker pool alone exceed the cap.
        self.slots = asyncio.Semaphore(cfg.concurrency) if cfg.two_step else None
        if not works:
            return
        await backend.start()
        queue: asyncio.Queue[Work] = asyncio.Queue()
        for w in self._split(works):
            queue.put_nowait(w)

        async def worker() -> None:
            while True:
                w = await queue.get()
                try:
                    if self._abort is None and self.stop_reason is None:
                        await self._do_work(w, queue)
                finally:
                    queue.task_done()

        tasks = [asyncio.create_task(worker()) for _ in range(min(cfg.concurrency, queue.qsize()))]
        try:
            await queue.join()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await backend.close()
        if self._abort is not None:
            hint = ""
            if self._abort.unreachable and self._abort.status is None:
                raise GradesetError(
                    f"the server at {cfg.base_url} cannot be reached ({self._abort}); is it running, and are the "
                    "host and port right? Nothing more was sent")
            if (self._abort.status == 404 and cfg.backend == "openai" and cfg.base_url
                    and not cfg.base_url.rstrip("/").endswith("/v1")):
                hint = f" (OpenAI-compatible servers usually want the base URL to end in /v1: {cfg.base_url}/v1)"
            elif (self._abort.status == 404 and cfg.backend == "anthropic" and cfg.base_url
                    and cfg.base_url.rstrip("/").endswith("/v1")):
                hint = " (the anthropic backend wants the bare origin as base URL, without /v1)"
            seen = error_digest(self.stats.errors_by_message) if self.stats.errors_by_message else ""
            raise GradesetError(
                f"every request is refused ({self._abort}){hint}; check --model, --base-url and the API key "
                f"({cfg.api_key_env or 'the default key variable'}). Nothing more was sent"
                + (f" (server said: {seen})" if seen else ""))

    def _split(self, works: list[Work]) -> list[Work]:
        """One request per sample when the backend cannot do n per request."""
        if getattr(self._backend, "supports_n", False):
            return works
        return [self._single(w, p) for w in works for p in range(len(w.indices))]

    @staticmethod
    def _single(w: Work, pos: int) -> Work:
        return Work(w.gi, w.gid, w.prompt, [w.indices[pos]], [w.keys[pos]])

    async def _call(self, prompt: Prompt, n: int, max_tokens: int, *, prefill: str | None = None,
                    seed: int | None = None, request_id: str | None = None) -> list[Sample]:
        """One request with retries, pacing and (with two-step) the concurrency slot."""
        cfg = self.cfg
        limiter = self.limiter
        est = _est_tokens(prompt, max_tokens, n) if limiter.tpm else 0
        attempt = 0
        while True:
            if limiter.must_wait():
                await limiter.acquire(est)
            if self.slots is None:  # one worker per slot and one request per worker: no semaphore needed
                result = await self._attempt(prompt, n, max_tokens, prefill, seed, request_id, est)
            else:
                async with self.slots:
                    result = await self._attempt(prompt, n, max_tokens, prefill, seed, request_id, est)
            if not isinstance(result, RequestError):
                return result
            if result.n_unsupported or not result.retryable or attempt >= cfg.retries:
                raise result
            if result.unreachable and self._nothing_answered():
                raise result  # a wrong URL or a server not started: retrying for minutes helps nobody
            if result.retry_after is not None:
                delay = result.retry_after
                limiter.pause(delay)
            else:
                delay = backoff_delay(attempt, cfg.backoff_base, cfg.backoff_max)
            self.stats.retries += 1
            attempt += 1
            await asyncio.sleep(delay)

    async def _attempt(self, prompt: Prompt, n: int, max_tokens: int, prefill: str | None, seed: int | None,
                       request_id: str | None, est: int) -> list[Sample] | RequestError:
        try:
            samples = await self._backend.generate(prompt, n, max_tokens, prefill=prefill, seed=seed,
                                                   request_id=request_id)
        except RequestError as exc:
            self.stats.errors += 1
            if est:
                self.limiter.settle(est, 0)
            return exc
        self.stats.requests += 1
        self._bill(samples)
        if est:
            used = sum((s.completion_tokens or 0) for s in samples) + ((samples[0].prompt_tokens or 0)
                                                                       if samples else 0)
            self.limiter.settle(est, used)
        return samples

    async def _do_work(self, w: Work, queue: asyncio.Queue) -> None:
        cfg = self.cfg
        t0 = time.monotonic()
        n = len(w.indices)
        try:
            samples = await self._call(w.prompt, n, cfg.stage1_tokens, seed=_seed_for(cfg, w.gid, w.indices[0]),
                                       request_id=w.keys[0])
        except RequestError as exc:
            if exc.n_unsupported and n > 1:
                for p in range(n):
                    queue.put_nowait(self._single(w, p))
                return
            if self._setup_refusal(exc):
                # Wrong key, model or URL: stop instead of recording a failure per prompt.
                self._abort = exc
                return
            for p in range(n):
                self._record(w, p, self._response(w.indices[p], None, elapsed=time.monotonic() - t0,
                                                  error=str(exc)))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an unexpected answer must not lose the other samples
            for p in range(n):
                self._record(w, p, self._response(w.indices[p], None, elapsed=time.monotonic() - t0,
                                                  error=f"{type(exc).__name__}: {exc}"))
            return
        samples = samples[:n]
        if not samples:  # nothing to use and nothing to retry on: a failure, not a loop
            for p in range(n):
                self._record(w, p, self._response(w.indices[p], None, elapsed=time.monotonic() - t0,
                                                  error="the backend returned no samples"))
            return
        for p in range(len(samples), n):  # the server answered fewer choices than asked
            queue.put_nowait(self._single(w, p))
        if cfg.two_step:
            await asyncio.gather(*(self._finish_two_step(w, p, s, t0) for p, s in enumerate(samples)))
        else:
            elapsed = time.monotonic() - t0
            for p, s in enumerate(samples):
                self._record(w, p, self._response(w.indices[p], s, elapsed=elapsed))

    async def _finish_two_step(self, w: Work, p: int, s1: Sample, t0: float) -> None:
        cfg = self.cfg
        if not needs_stage2(s1.text, cfg.think_end):
            self._record(w, p, self._response(w.indices[p], s1, elapsed=time.monotonic() - t0))
            return
        partial = with_think_end(s1.text, cfg.think_end)
        try:
            s2 = (await self._call(w.prompt, 1, cfg.stage2_tokens, prefill=partial,
                                   seed=_seed_for(cfg, w.gid, w.indices[p]),
                                   request_id=w.keys[p] + "-2"))[0]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._record(w, p, self._response(w.indices[p], None, elapsed=time.monotonic() - t0,
                                              error=f"stage 2: {exc}", two_step=True, stage1=s1))
            return
        extra = dict(s1.extra)
        extra.update({k: v for k, v in s2.extra.items() if k.startswith("stage2_")})
        extra["stage2_prompt_tokens"] = s2.prompt_tokens
        joined = Sample(text=partial + s2.text, finish_reason=s2.finish_reason, prompt_tokens=s1.prompt_tokens,
                        completion_tokens=s2.completion_tokens, reasoning=s1.reasoning, extra=extra)
        self._record(w, p, self._response(w.indices[p], joined, elapsed=time.monotonic() - t0,
                                          two_step=True, stage1=s1))

    # -- local backends ----------------------------------------------------------------------
    def run_local(self, works: list[Work]) -> None:
        cfg = self.cfg
        if not works:
            return
        backend = self._get_backend()
        units = [(w, p) for w in works for p in range(len(w.indices))]
        # Similar lengths batch together: less padding per generate() call. Results are
        # keyed, so the order of work does not change the output.
        units.sort(key=lambda u: sum(len(str(m.get("content") or "")) for m in u[0].prompt.messages))
        try:
            size = getattr(backend, "batch_size", None) or cfg.batch_size
            for start in range(0, len(units), size):
                if self.stop_reason is not None:
                    break
                chunk = units[start:start + size]
                self._local_batch(backend, chunk)
        finally:
            backend.close()

    def _local_batch(self, backend, chunk: list[tuple[Work, int]]) -> None:
        cfg = self.cfg
        t0 = time.monotonic()
        seed = _seed_for(cfg, chunk[0][0].gid, chunk[0][0].indices[chunk[0][1]])
        try:
            outs = backend.generate_batch([(w.prompt, None) for w, _ in chunk], 1, cfg.stage1_tokens, seed=seed)
        except Exception as exc:
            for w, p in chunk:
                self._record(w, p, self._response(w.indices[p], None, elapsed=time.monotonic() - t0,
                                                  error=f"{type(exc).__name__}: {exc}"))
            return
        self.stats.requests += 1
        firsts = [o[0] for o in outs]
        for o in outs:
            self._bill(o)
        stage2 = []
        if cfg.two_step:
            stage2 = [k for k, s in enumerate(firsts) if needs_stage2(s.text, cfg.think_end)]
        finals: dict[int, Sample] = {}
        errors: dict[int, str] = {}
        if stage2:
            partials = {k: with_think_end(firsts[k].text, cfg.think_end) for k in stage2}
            try:
                outs2 = backend.generate_batch([(chunk[k][0].prompt, partials[k]) for k in stage2], 1,
                                               cfg.stage2_tokens, seed=None if seed is None else seed + 1)
                self.stats.requests += 1
                for k, o in zip(stage2, outs2):
                    s2 = o[0]
                    self._bill(o)
                    finals[k] = Sample(text=partials[k] + s2.text, finish_reason=s2.finish_reason,
                                       prompt_tokens=firsts[k].prompt_tokens,
                                       completion_tokens=s2.completion_tokens, extra=dict(firsts[k].extra))
            except Exception as exc:
                for k in stage2:
                    errors[k] = f"stage 2: {type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - t0
        per = elapsed / max(1, len(chunk))
        for k, (w, p) in enumerate(chunk):
            if k in errors:
                resp = self._response(w.indices[p], None, elapsed=per, error=errors[k], two_step=True,
                                      stage1=firsts[k])
            elif k in finals:
                resp = self._response(w.indices[p], finals[k], elapsed=per, two_step=True, stage1=firsts[k])
            else:
                resp = self._response(w.indices[p], firsts[k], elapsed=per)
            resp["meta"]["batch_time_ms"] = int(elapsed * 1000)
            self._record(w, p, resp)
        self.cache.sync()

    # -- entry -------------------------------------------------------------------------------
    def start_progress(self, total: int) -> None:
        """Show one bar over several ``run`` calls (the command feeds the engine in chunks)."""
        self.progress = Progress(self.stats, total, enabled=self.show_progress)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
        self.cache.sync()

    def run(self, groups: list[dict], n: int | None = None) -> list[dict]:
        self._base_meta["n"] = self.cfg.n if n is None else n  # complete() asks for one per prompt
        bases = self.key_bases(groups)
        works = self.plan(groups, bases, n)
        if self.stop_reason is not None:
            works = []  # a budget limit was reached in an earlier chunk: keep what is cached, send nothing
        own_bar = self.progress is None
        if own_bar:
            self.start_progress(sum(len(w.indices) for w in works))
        try:
            if self.cfg.backend in ("transformers", "vllm") or getattr(self._backend, "local", False):
                self.run_local(works)
            else:
                _run_coroutine(self.run_async(works))
        finally:
            if own_bar:
                self.close()
            self.cache.sync()
        return self.assemble(groups, bases, n)


def _run_coroutine(coro) -> Any:
    """asyncio.run, also from inside a running loop (notebooks): then in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="gradeset-generate")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")
