"""RayExecutor gives what LocalExecutor gives for the same program, and workers write parts
atomically under deterministic names (one Ray session per module)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from gradeset.distributed.executor import ORD, LocalExecutor  # noqa: E402
from gradeset.distributed.ray_exec import RayExecutor  # noqa: E402
from gradeset.distributed.write import part_name, write_part  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    saved = ray.data.DataContext.get_current()
    ctx = __import__("copy").deepcopy(saved)
    ctx.enable_progress_bars = False
    ray.data.DataContext._set_current(ctx)
    yield
    ray.data.DataContext._set_current(saved)  # later modules see Ray Data's context untouched
    if started:
        ray.shutdown()


def _rows(n: int = 60) -> list[dict]:
    # text repeats every 7 rows: the first of each text (lowest ORD) must survive
    return [{"id": f"r{i}", "text": f"t{i % 7}", ORD: i, "nested": {"k": [i, None, "x"]}} for i in range(n)]


def exact_dedup(ex, ds):
    """A tiny partitioned exact dedup (keep the lowest ORD per text), for developing against."""
    return ex.group_reduce(ds, lambda r: r["text"], lambda group: group[:1])


def _ids(rows):
    return sorted(r["id"] for r in rows)


def test_group_reduce_equals_local_and_keeps_first_by_ord():
    rows = _rows()
    local = LocalExecutor(partitions=3, seed=1)
    want = exact_dedup(local, local.dataset(rows)).rows()
    ex = RayExecutor(partitions=3)
    # reversed input order: arrival differs, ORD decides
    got = ex.rows(exact_dedup(ex, ex.dataset(list(reversed(rows)), blocks=5)))
    assert _ids(got) == _ids(want)
    assert sorted(r["id"] for r in got) == sorted(f"r{i}" for i in range(7))
    assert {r["id"]: r["nested"] for r in got} == {f"r{i}": {"k": [i, None, "x"]} for i in range(7)}


def test_group_reduce_groups_never_share_a_call():
    ex = RayExecutor(partitions=2)
    out = ex.rows(ex.group_reduce(ex.dataset(_rows(), blocks=4), lambda r: r["text"],
                                  lambda g: [{"text": g[0]["text"], "n": len(g), "texts": len({r["text"] for r in g}),
                                              "ords": [r[ORD] for r in g]}]))
    assert sorted(r["text"] for r in out) == [f"t{i}" for i in range(7)]
    assert all(r["texts"] == 1 and r["ords"] == sorted(r["ords"]) for r in out)
    assert sum(r["n"] for r in out) == 60


def test_map_batches_and_aggregate_and_broadcast():
    ex = RayExecutor(partitions=2)
    keep = ex.broadcast({"t1", "t2"})
    ds = ex.map_batches(ex.dataset(_rows(), blocks=4), lambda rows: [r for r in rows if r["text"] in ex.resolve(keep)])
    counts = ex.aggregate(ds, lambda rows: {"n": len(rows), "ords": sum(r[ORD] for r in rows)},
                          lambda a, b: {"n": a["n"] + b["n"], "ords": a["ords"] + b["ords"]}, {"n": 0, "ords": 0})
    want = [r for r in _rows() if r["text"] in {"t1", "t2"}]
    assert counts == {"n": len(want), "ords": sum(r[ORD] for r in want)}


def test_worker_writes_parts_atomically_with_reports(tmp_path):
    ex = RayExecutor(partitions=2)
    dest = str(tmp_path / "out")

    def write(rows):
        idx = min(r[ORD] for r in rows) if rows else 0
        return [write_part(rows, dest, part_name(idx))] if rows else []

    ds = exact_dedup(ex, ex.dataset(_rows(), blocks=3))
    reports = ex.rows(ex.map_batches(ds, write))
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(r["file"] for r in reports)  # no temp file left behind
    assert sum(r["rows"] for r in reports) == 7
    for r in reports:
        data = (tmp_path / "out" / r["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["sha256"] and len(data) == r["bytes"]
        assert len([orjson.loads(line) for line in data.splitlines()]) == r["rows"]
    # a retried task rewrites the same name: still one file per part, same content
    again = write_part([{"id": "x"}], dest, reports[0]["file"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == files
    assert (tmp_path / "out" / again["file"]).read_bytes() == b'{"id":"x"}\n'


READ_FIXTURE = Path(__file__).parent / "data" / "run" / "rejects_mixed.jsonl"


@pytest.mark.parametrize("parts", [1, 2, 3, 7, 50, 10_000])
def test_range_reader_equals_streaming_reader(parts):
    from gradeset.distributed.read import global_rejects, line_ranges, read_range
    from gradeset.io.readers import read_jsonl

    want_rejects: list = []
    want = [obj for _, obj in read_jsonl(READ_FIXTURE, want_rejects.append)]
    ranges = line_ranges(READ_FIXTURE, parts)
    size = READ_FIXTURE.stat().st_size
    assert ranges[0][0] == 0 and (ranges[-1][1] in (size, -1))
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # contiguous, no gap or overlap
    results = [read_range(READ_FIXTURE, a, b, k) for k, (a, b) in enumerate(ranges)]
    rows = sorted((r for rs, _, _ in results for r in rs), key=lambda r: r[ORD])
    assert [{k: v for k, v in r.items() if k != ORD} for r in rows] == want
    got_rejects = global_rejects([(rj, n) for _, rj, n in results])
    assert [r.to_json() for r in got_rejects] == [r.to_json() for r in want_rejects]
    assert len(want_rejects) >= 5 and len(want) >= 20


def test_ranges_read_on_workers_feed_the_partitioned_program():
    from gradeset.distributed.read import line_ranges, read_range

    ranges = line_ranges(READ_FIXTURE, 4)
    ex = RayExecutor(partitions=2)
    path = str(READ_FIXTURE)
    tasks = ex.dataset([{"k": k, "a": a, "b": b} for k, (a, b) in enumerate(ranges)], blocks=len(ranges))
    ds = ex.map_batches(tasks, lambda ts: [r for t in ts for r in read_range(path, t["a"], t["b"], t["k"])[0]])
    got = ex.rows(exact_dedup(ex, ex.map_batches(ds, lambda rs: [{**r, "text": r["text"][-2:]} for r in rs])))
    from gradeset.io.readers import read_jsonl

    first: dict = {}
    for _, obj in read_jsonl(READ_FIXTURE):
        first.setdefault(obj["text"][-2:], obj["id"])
    assert sorted(r["id"] for r in got) == sorted(first.values())


def test_write_partitioned_is_independent_of_block_layout(tmp_path):
    from gradeset.distributed.write import write_partitioned

    ex = RayExecutor(partitions=2)
    rows = _rows(90)
    a = write_partitioned(ex, ex.dataset(rows, blocks=2), str(tmp_path / "a"), parts=4)
    b = write_partitioned(ex, ex.dataset(list(reversed(rows)), blocks=7), str(tmp_path / "b"), parts=4)
    assert a == b and sum(r["rows"] for r in a) == 90
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir()) == [r["file"] for r in a]
    written = []
    for name in files:
        data = (tmp_path / "a" / name).read_bytes()
        assert data == (tmp_path / "b" / name).read_bytes()
        part = [orjson.loads(line) for line in data.splitlines()]
        assert [int(r["id"][1:]) for r in part] == sorted(int(r["id"][1:]) for r in part)  # ORD order
        written += part
    assert sorted(r["id"] for r in written) == sorted(r["id"] for r in rows)
    assert all(ORD not in r for r in written)
