"""A real two-node Ray cluster on this machine: the partitioned program gives the same rows
as in-process, and losing the second node mid-run loses and duplicates nothing.

Each node is ``ray start --block`` in its own process group, so the fixture (and the
node-kill test) end exactly the processes they started, never another user's Ray.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from gradeset.distributed.executor import ORD, LocalExecutor  # noqa: E402

ROOT = Path(__file__).parent.parent
RUN_DATA = Path(__file__).parent / "data" / "run"
# the functions below run on the cluster's workers, which cannot import this test module
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(cond, what: str, timeout: float = 60.0):
    """Wait for an event another process signals (a file, a node joining), with a deadline."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _start(args: list[str], env: dict) -> subprocess.Popen:
    ray_bin = str(Path(sys.executable).with_name("ray"))
    return subprocess.Popen([ray_bin, "start", "--block", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill(proc: subprocess.Popen):
    with __import__("contextlib").suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture
def cluster():
    tmp = tempfile.mkdtemp(prefix="rdc", dir="/tmp")  # short: Ray's socket paths must fit
    port = _free_port()
    env = dict(os.environ)
    # workers import gradeset and the test-only steps (runsteps) as the driver does
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(RUN_DATA), env.get("PYTHONPATH")]))
    # a killed node is noticed in about a second, not the default 30 s
    env["RAY_health_check_period_ms"] = "200"
    env["RAY_health_check_failure_threshold"] = "3"
    # a throwaway cluster bound to loopback only: no token (a token in ~/.ray would switch it on)
    env["RAY_AUTH_MODE"] = "disabled"
    old_auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    head = _start(["--head", "--port", str(port), "--num-cpus", "1", "--temp-dir", tmp,
                   "--node-ip-address", "127.0.0.1",
                   "--include-dashboard", "false", "--disable-usage-stats"], env)
    node2 = saved = None
    try:
        addr = f"127.0.0.1:{port}"
        node2 = _start(["--address", addr, "--num-cpus", "1", "--resources", '{"node2": 1}',
                        "--node-ip-address", "127.0.0.1",
                        "--disable-usage-stats"], env)
        ray.shutdown()  # an earlier module's session in this process
        ray.init(address=addr, _node_ip_address="127.0.0.1", include_dashboard=False, configure_logging=False,
                 log_to_driver=False)
        _wait_for(lambda: sum(n["Alive"] for n in ray.nodes()) == 2, "the second node to join")
        saved = ray.data.DataContext.get_current()
        ctx = copy.deepcopy(saved)
        ctx.enable_progress_bars = False
        ray.data.DataContext._set_current(ctx)
        yield {"address": addr, "node2": node2, "tmp": Path(tmp)}
    finally:
        if saved is not None:
            ray.data.DataContext._set_current(saved)
        ray.shutdown()
        if node2 is not None:
            _kill(node2)
        _kill(head)
        if old_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old_auth


def _rows(n: int = 400) -> list[dict]:
    return [{"id": f"r{i}", "text": f"t{(i * 7919) % 97}", ORD: i} for i in range(n)]


def _node_id(rows):
    return [{**r, "node": ray.get_runtime_context().get_node_id()} for r in rows]


def _node_id_meeting(rows, folder: str):
    """_node_id, once a task on each of the two nodes has started (a barrier with a deadline)."""
    Path(folder, ray.get_runtime_context().get_node_id()).touch()
    _wait_for(lambda: len(os.listdir(folder)) >= 2, "tasks on both nodes")
    return _node_id(rows)


def _dedup(ex, ds):
    return ex.group_reduce(ds, lambda r: r["text"], lambda g: g[:1])


def _want() -> list[tuple[str, str]]:
    local = LocalExecutor(partitions=4, seed=3)
    return sorted((r["id"], r["text"]) for r in _dedup(local, local.dataset(_rows())).rows())


def test_two_nodes_equal_in_process(cluster):
    from gradeset.distributed.ray_exec import RayExecutor

    ex = RayExecutor()
    assert ex.partitions == 2
    # each of the 8 blocks is tagged by the node whose task mapped it (tasks meet until both
    # nodes run one: Ray reuses a leased worker, so tiny tasks could all finish on one node)
    meet = cluster["tmp"] / "meet"
    meet.mkdir()
    tagged = ex.map_batches(ex.dataset(_rows(), blocks=8), lambda rows: _node_id_meeting(rows, str(meet)))
    out = ex.rows(_dedup(ex, tagged))
    assert sorted((r["id"], r["text"]) for r in out) == _want()
    assert len({r["node"] for r in ex.rows(tagged)}) == 2  # both nodes did part of the work


def test_node_killed_mid_run_loses_nothing(cluster):
    from gradeset.distributed.ray_exec import RayExecutor

    node2_id = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "node2" in n["Resources"])
    marker, release = cluster["tmp"] / "held", cluster["tmp"] / "release"
    ex = RayExecutor()
    result: dict = {}

    def run():
        try:
            ds = ex.map_batches(ex.dataset(_rows(), blocks=8),
                                lambda rows: hold_on(rows, node2_id, str(marker), str(release)))
            result["rows"] = ex.rows(_dedup(ex, ds))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    _wait_for(marker.exists, "a task to start on node 2")
    _kill(cluster["node2"])
    release.write_text("go")
    t.join(timeout=120)
    assert not t.is_alive()
    assert "error" not in result, result.get("error")
    assert sorted((r["id"], r["text"]) for r in result["rows"]) == _want()
    # the node really died (the GCS notices within its health-check period)
    _wait_for(lambda: sum(n["Alive"] for n in ray.nodes()) == 1, "node 2 to be marked dead")


def hold_on(rows, node2_id: str, marker: str, release: str):
    """Test-only step body: block on node 2 until released (see the node-kill test)."""
    if ray.get_runtime_context().get_node_id() == node2_id:
        Path(marker).write_text(str(os.getpid()))
        _wait_for(lambda: Path(release).exists(), "the release file", timeout=120)
    return rows


# -- `gradeset run --runner ray` on the two-node cluster ------------------------------------

WHOLE_STREAM = [{"verify": {"task": "math"}}, {"dedup": {"method": "exact"}},
                {"dedup": {"method": "near", "threshold": 0.9}},
                {"balance": {"bucket_caps": {"mixed": 40, "all-correct": 25}}},
                {"sample": {"n": 60, "seed": 1}},
                {"check": {"group_size": 2, "disable": ["near_duplicates"], "json": "out/stage.json"}}]


def _pipeline(folder: Path, steps: list) -> Path:
    import shutil

    import yaml

    if str(RUN_DATA) not in sys.path:  # the driver builds the test-only steps too
        sys.path.insert(0, str(RUN_DATA))
    folder.mkdir(parents=True)
    shutil.copy(RUN_DATA / "groups.jsonl", folder / "groups.jsonl")
    doc = {"source": {"path": "groups.jsonl"}, "steps": steps, "outputs": {"groups": "out/groups"},
           # one chunk per Ray task, so consecutive chunks alternate between the two nodes' actors
           "run": {"chunk_size": 64, "ray_task_groups": 64}}
    (folder / "p.yaml").write_text(yaml.safe_dump(doc))
    return folder / "p.yaml"


def _output(folder: Path) -> list[dict]:
    from gradeset.io.readers import read_jsonl

    rows = [r for f in sorted((folder / "out" / "groups").glob("shard-*.jsonl")) for _, r in read_jsonl(f)]
    return sorted(rows, key=lambda r: r["id"])


def _in_process(tmp_path: Path, steps: list) -> tuple[list[dict], dict]:
    from gradeset.run.local import run_pipeline

    run_pipeline(_pipeline(tmp_path / "local", steps), runner="local", progress=False)
    return _output(tmp_path / "local"), orjson_load(tmp_path / "local" / "out" / "stage.json")


def orjson_load(path: Path) -> dict:
    import orjson

    return orjson.loads(path.read_bytes())


def test_gradeset_run_on_two_nodes_equals_in_process(cluster, tmp_path):
    from gradeset.run.local import run_pipeline

    summary = run_pipeline(_pipeline(tmp_path / "ray", WHOLE_STREAM), runner="ray", address=cluster["address"],
                           progress=False)
    want, stage = _in_process(tmp_path, WHOLE_STREAM)
    got = _output(tmp_path / "ray")
    assert got == want and 0 < len(got) <= 60 and summary["written"] == len(got)
    assert orjson_load(tmp_path / "ray" / "out" / "stage.json")["stats"] == stage["stats"]


def test_gradeset_run_survives_losing_a_node(cluster, tmp_path):
    """Node 2 dies while a task of the run is inside a step on it: the run finishes, or the
    same command re-run on the surviving node resumes; either way the output equals the
    in-process one, nothing lost or duplicated."""
    from gradeset.errors import GradesetError
    from gradeset.run.local import run_pipeline

    node2_id = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "node2" in n["Resources"])
    marker, release = cluster["tmp"] / "held", cluster["tmp"] / "release"
    # its own prefix stage of two actors, spread one per node: some chunks pass node 2
    # (held at its second chunk there, so earlier chunks are checkpointed: a re-run resumes from them)
    hold = {"runsteps:HoldOnNode": {"node": node2_id, "marker": str(marker), "release": str(release), "at": 2},
            "ray": {"concurrency": 2}}
    # Numbered stamps each row's position in the stream: unlike dedup it hides nothing, so a
    # chunk replayed twice (or lost) after the node's loss shifts every later seq
    steps = [WHOLE_STREAM[0], hold, "runsteps:Numbered", WHOLE_STREAM[3], WHOLE_STREAM[5]]
    p = _pipeline(tmp_path / "ray", steps)
    result: dict = {}

    def run():
        try:
            result["summary"] = run_pipeline(p, runner="ray", progress=False)
        except GradesetError as exc:  # a lost actor ends the run; the re-run below resumes it
            result["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    _wait_for(lambda: marker.exists() and marker.read_text(), "a task of the run to start on node 2", timeout=120)
    _kill(cluster["node2"])
    with contextlib.suppress(ProcessLookupError):  # the worker holding the step, if it outlived its raylet
        os.kill(int(marker.read_text()), signal.SIGKILL)
    release.write_text("go")
    t.join(timeout=180)
    assert not t.is_alive()
    if "error" in result:
        result["summary"] = run_pipeline(p, runner="ray", progress=False)
    assert sum(n["Alive"] for n in ray.nodes()) == 1
    want, _ = _in_process(tmp_path, [s for s in steps if s is not hold])
    got = _output(tmp_path / "ray")
    assert [r["id"] for r in got] == [r["id"] for r in want]  # nothing lost, nothing twice
    assert got == want and result["summary"]["written"] == len(want)
