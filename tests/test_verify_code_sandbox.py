"""The code verifier cannot be fooled and model code cannot escape (issue 12, items 2 and 3).

Every test runs once per isolation backend (bubblewrap, util-linux unshare). A backend that
cannot run here is skipped naming the missing tool, except bubblewrap under CI=true, which
must be present.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import skip_unless

from gradeset.verify import get_verifier
from gradeset.verify.sandbox import SandboxUnavailable, choose, probe

ATTACKS = Path(__file__).parent / "data" / "verify" / "code_attacks"
CALL_TESTS = ["assert add(2, 3) == 5", "assert add(-1, 4) == 3", "assert add(10, 5) == 15"]
LOOP_TESTS = ["for a, b, s in [(2, 3, 5), (-1, 4, 3), (10, 5, 15)]:\n    assert add(a, b) == s"]


def block(src: str) -> str:
    return f"```python\n{src}\n```"


@pytest.fixture(params=["bwrap", "unshare"])
def backend(request, monkeypatch):
    name = request.param
    tool, why = probe(name, os.environ.get("PATH"))
    if tool is None:
        if name == "bwrap" and os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must install bubblewrap: {why}")
        skip_unless(False, name, f"{name} unavailable here: {why}")  # fails where GRADESET_REQUIRE lists it
    monkeypatch.setenv("GRADESET_SANDBOX", name)
    return name


def verifier(**opts):
    return get_verifier("code", test_timeout=opts.pop("test_timeout", 5), **opts)


# ---------------------------------------------------------------- cannot be fooled
@pytest.mark.parametrize("tests", [CALL_TESTS, LOOP_TESTS], ids=["split-asserts", "in-sandbox-asserts"])
def test_correct_solution_passes(backend, tests):
    v = verifier()
    assert v.backend.name == backend
    out = v(block((ATTACKS / "correct_add.py").read_text()), tests)
    assert out.correct and out.score == 1.0, out.execution_output


@pytest.mark.parametrize("attack", sorted(p.name for p in ATTACKS.glob("*.py") if p.name != "correct_add.py"))
@pytest.mark.parametrize("tests", [CALL_TESTS, LOOP_TESTS], ids=["split-asserts", "in-sandbox-asserts"])
def test_fake_pass_tricks_are_graded_wrong(backend, attack, tests):
    out = verifier()(block((ATTACKS / attack).read_text()), tests)
    assert not out.correct and out.score == 0.0, (attack, out.execution_output)


def test_expected_values_never_enter_the_sandbox(backend):
    """The program sees every string its interpreter holds; the expected values are not there."""
    spy = block("import gc\n"
                "def greet(name):\n"
                "    needle = ''.join(['QW', 'ZX'])\n"
                "    for o in gc.get_objects():\n"
                "        items = o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple, set)) else ()\n"
                "        if any(isinstance(v, str) and needle in v for v in list(items)):\n"
                "            return 'LEAKED'\n"
                "    return 'HELLO_' + needle + '_' + name\n")
    out = verifier()(spy, ["assert greet('x') == 'HELLO_QWZX_x'", "assert greet('y') != 'HELLO_QWZX_NOPE'"])
    assert out.correct, out.execution_output


def test_results_must_be_plain_values_and_failures_are_explained(backend):
    v = verifier()
    gen = block("def evens(n):\n    return (i for i in range(0, n, 2))\n")
    assert v(gen, ["assert list(evens(5)) == [0, 2, 4]"]).correct  # conversion runs in the sandbox
    bad = v(gen, ["assert evens(5) == [0, 2, 4]"])
    assert not bad.correct and "not a plain value" in bad.execution_output
    wrong = v(block("def add(a, b):\n    return a - b\n"), CALL_TESTS)
    assert wrong.score == 0.0 and "assert add(2, 3) == 5 failed (got -1)" in wrong.execution_output


def test_humaneval_check_and_tolerance_forms(backend):
    tests = ("def check(candidate):\n    assert candidate(2) == 1.4142135623730951\n"
             "    assert abs(candidate(9) - 3.0) < 1e-9\n    assert math.isclose(candidate(16), 4.0)\n"
             "import math\ncheck(root)\n")
    good = block("def root(x):\n    return x ** 0.5\n")
    assert verifier()(good, [tests]).correct
    evil = block("class E(float):\n    def __sub__(self, o):\n        return 0.0\n    def __eq__(self, o):\n"
                 "        return True\n    __hash__ = float.__hash__\ndef root(x):\n    return E(7.0)\n")
    assert not verifier()(evil, [tests]).correct


def test_output_over_the_capture_limit_is_reported(backend):
    v = verifier(max_output_bytes=1000)
    prog = block("print('x' * 5000)")
    out = v(prog, [{"input": "", "output": "x" * 5000}])
    assert not out.correct and "capture limit" in out.execution_output and "raise max_output_bytes" in \
        out.execution_output
    assert verifier()(prog, [{"input": "", "output": "x" * 5000}]).correct


def test_stdio_program_cannot_print_its_way_to_a_pass(backend):
    prog = block("import os, sys\nprint(input())\nsys.stdout.flush()\nos._exit(0)\n")
    out = verifier()(prog, [{"input": "1 2\n", "output": "3"}])
    assert not out.correct and "expected '3', got '1 2'" in out.execution_output


# ---------------------------------------------------------------- cannot escape
def test_files_written_outside_the_private_folder_do_not_appear(backend, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    name = f"gradeset-escape-{secrets.token_hex(6)}"
    targets = [Path("/tmp") / name, home / name, Path(__file__).parent / name]
    code = block("import os\n"
                 f"TARGETS = {[str(t) for t in targets]!r}\n"
                 "def write():\n"
                 "    for t in TARGETS + [os.path.expanduser('~/x')]:\n"
                 "        try:\n            open(t, 'w').write('escaped')\n        except OSError:\n            pass\n"
                 "    open('scratch.txt', 'w').write('ok')\n"
                 "    return open('scratch.txt').read()\n")
    out = verifier()(code, ["assert write() == 'ok'"])
    assert out.correct, out.execution_output  # its own folder is writable
    assert not any(t.exists() for t in targets)


def test_secret_in_home_is_not_readable(backend, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    secret = f"SECRET-{secrets.token_hex(8)}"
    (home / "secret.txt").write_text(secret)
    monkeypatch.setenv("HOME", str(home))
    code = block("import os\n"
                 f"PATHS = [{str(home / 'secret.txt')!r}, os.path.expanduser('~/secret.txt'), '/root/.bashrc']\n"
                 "def read():\n"
                 "    got = []\n"
                 "    for p in PATHS:\n"
                 "        try:\n            got.append(open(p).read())\n        except OSError:\n            pass\n"
                 "    return '|'.join(got) or 'nothing'\n")
    out = verifier()(code, ["assert read() == 'nothing'", "assert read() == 'x'"])
    assert out.score == 0.5, out.execution_output  # first test: nothing readable
    assert secret not in out.execution_output


def test_parent_environment_is_unreadable(backend, monkeypatch):
    key = f"sk-gradeset-test-{secrets.token_hex(8)}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    code = block("import os\n"
                 "def scan():\n"
                 "    blobs = [repr(dict(os.environ))]\n"
                 "    pids = [p for p in os.listdir('/proc') if p.isdigit()] + [str(os.getppid())]\n"
                 "    for pid in pids:\n"
                 "        for f in ('environ', 'cmdline'):\n"
                 "            try:\n                blobs.append(open(f'/proc/{pid}/{f}', 'rb').read().decode('latin-1'))\n"
                 "            except OSError:\n                pass\n"
                 "    return sum('sk-gradeset-test' in b for b in blobs)\n"
                 "def dump():\n    return open(f'/proc/{os.getppid()}/environ', 'rb').read().decode('latin-1')\n")
    from gradeset.verify import verify_groups

    # graded in a pool worker: a process started with the key in its environment, the
    # sandbox's parent (what /proc/PPID/environ would show without isolation)
    group = {"prompt": "p", "answer": ["assert scan() == 0", "assert dump() == ''"], "responses": [{"text": code}]}
    r = verify_groups([group], task="code", workers=1, timeout=30)[0]["responses"][0]
    assert r["execution_output"].startswith("passed 1/2"), r["execution_output"]  # scan() found nothing
    assert key not in json.dumps(r)


def test_no_network_to_a_listener_the_test_starts(backend):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = block("import socket\n"
                 "def connect():\n"
                 f"    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=3).close()\n"
                 "        return 'connected'\n"
                 "    except OSError as e:\n        return type(e).__name__\n")
    try:
        out = verifier()(code, ["assert connect() == 'connected'"])
        assert not out.correct and "failed (got '" in out.execution_output, out.execution_output  # refused/unreachable
        with pytest.raises(BlockingIOError):  # a completed connection would be waiting in the backlog
            listener.accept()
    finally:
        listener.close()


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_double_forked_daemon_dies_with_the_verdict(backend):
    marker = f"gradeset-daemon-{secrets.token_hex(6)}"
    code = block("import os, sys\n"
                 "def spawn():\n"
                 "    r, w = os.pipe()\n"
                 "    if os.fork() == 0:\n"
                 "        os.setsid()\n"
                 "        if os.fork() == 0:\n"
                 "            os.write(w, b'up')\n"
                 f"            os.execv(sys.executable, [sys.executable, '-c', 'import time\\nwhile True: time.sleep(1)', "
                 f"{marker!r}])\n"
                 "        os._exit(0)\n"
                 "    return 'started' if os.read(r, 2) == b'up' else 'no'\n")
    out = verifier()(code, ["assert spawn() == 'started'"])
    assert out.correct, out.execution_output  # the daemon was running during the test
    alive = _processes_with(marker)
    assert alive == [], [Path(f"/proc/{p}/status").read_text()[:300] for p in alive]


def test_process_limit_holds_as_root(backend):
    code = block("import os\n"
                 "def forks():\n"
                 "    r, w = os.pipe()\n"
                 "    n = 0\n"
                 "    for _ in range(300):\n"
                 "        try:\n            pid = os.fork()\n        except OSError:\n            break\n"
                 "        if pid == 0:\n            os.read(r, 1)\n            os._exit(0)\n"
                 "        n += 1\n"
                 "    return n\n")
    out = verifier(nproc=64)(code, ["assert forks() < 64", "assert forks() == 300"])
    assert out.score == 0.5 and "test 1" in out.execution_output, out.execution_output


def test_program_runs_unprivileged_and_sees_only_a_small_root(backend):
    code = block("import os\n"
                 "def who():\n    return os.getuid()\n"
                 "def caps():\n"
                 "    s = open('/proc/self/status').read()\n"
                 "    return [l.split()[1] for l in s.splitlines() if l.startswith(('CapEff', 'CapPrm', 'CapBnd'))]\n"
                 "def top():\n    return sorted(os.listdir('/'))\n"
                 "def seen(p):\n    return os.path.exists(p)\n")
    tests = ["assert who() == 1000", "assert caps() == ['0000000000000000'] * 3",
             "assert set(top()) <= {'dev', 'lib', 'lib32', 'lib64', 'proc', 'root', 'sbx', 'tmp', 'usr'}",
             f"assert seen({str(Path(__file__).resolve())!r}) is False", "assert seen('/etc/passwd') is False",
             f"assert seen({sys.prefix + '/bin'!r}) is False"]
    out = verifier()(code, tests)
    assert out.correct, out.execution_output


def test_timeouts_and_memory_limit(backend):
    v = verifier(test_timeout=1)
    spin = v(block("def add(a, b):\n    while True:\n        pass\n"), CALL_TESTS[:2])
    assert not spin.correct and "timeout" in spin.execution_output
    bomb = v(block("x = bytearray(4 * 1024**3)\ndef add(a, b):\n    return a + b\n"), CALL_TESTS[:1])
    assert not bomb.correct and "MemoryError" in bomb.execution_output


# ---------------------------------------------------------------- refusal and opt-out
def _no_tools_path(tmp_path: Path) -> str:
    """A PATH with python and gradeset but neither bwrap nor unshare."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("python", "gradeset"):
        src = Path(sys.executable).parent / tool
        if src.exists() and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(src)
    return str(bin_dir)


def test_refuses_without_isolation_in_python(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _no_tools_path(tmp_path))
    monkeypatch.delenv("GRADESET_SANDBOX", raising=False)
    with pytest.raises(SandboxUnavailable, match="bubblewrap") as err:
        get_verifier("code")
    assert err.value.exit_code == 2 and "unshare" in str(err.value) and "--unsafe-no-sandbox" in str(err.value)
    with pytest.raises(SandboxUnavailable, match="bwrap: not found"):
        choose("bwrap")


def _cli(tmp_path: Path, path_env: str, *extra: str) -> subprocess.CompletedProcess:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "add", "answer": CALL_TESTS,
                               "responses": [{"text": block((ATTACKS / "correct_add.py").read_text())}]}) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "GRADESET_SANDBOX"}
    env.update(PATH=path_env, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-m", "gradeset", "verify", str(src), "--out", str(tmp_path / "out.jsonl"),
                           "--task", "code", *extra], capture_output=True, text=True, env=env, timeout=300)


def test_cli_refuses_with_exit_2_and_names_the_package(tmp_path):
    r = _cli(tmp_path, _no_tools_path(tmp_path))
    assert r.returncode == 2 and "bubblewrap" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_unsafe_flag_runs_and_warns_every_time(tmp_path):
    for _ in range(2):
        r = _cli(tmp_path, _no_tools_path(tmp_path), "--unsafe-no-sandbox")
        assert r.returncode == 0 and "WARNING" in r.stderr and "WITHOUT isolation" in r.stderr, r.stderr
    row = json.loads((tmp_path / "out.jsonl").read_text())
    resp = row["responses"][0]
    assert resp["correct"] is True and "UNSAFE" in resp["execution_output"]


def test_pipeline_step_passes_the_opt_out(tmp_path, monkeypatch):
    from gradeset.verify.step import VerifyStep

    monkeypatch.setenv("PATH", _no_tools_path(tmp_path))
    monkeypatch.delenv("GRADESET_SANDBOX", raising=False)
    group = {"prompt": "add", "answer": CALL_TESTS, "responses": [{"text": block("def add(a, b):\n    return a + b")}]}
    with pytest.raises(SandboxUnavailable):
        VerifyStep(task="code", workers=0)([dict(group)])
    step = VerifyStep(task="code", workers=0, unsafe_no_sandbox=True)
    with pytest.warns(RuntimeWarning, match="WITHOUT isolation"):
        out = step([dict(group)])
    assert out[0]["responses"][0]["correct"] is True
    assert VerifyStep(task="math", unsafe_no_sandbox=True).params.get("unsafe_no_sandbox") is None


def test_pipeline_yaml_passes_the_opt_out(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "add", "answer": CALL_TESTS,
                               "responses": [{"text": block((ATTACKS / "correct_add.py").read_text())}]}) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "GRADESET_SANDBOX"}
    env.update(PATH=_no_tools_path(tmp_path), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    for name, extra in (("refused", ""), ("unsafe", ", unsafe_no_sandbox: true")):
        (tmp_path / f"{name}.yaml").write_text(f"source: {{path: in.jsonl}}\nsteps:\n  - verify: {{task: code{extra}}}\n"
                                               f"outputs:\n  groups: {name}.jsonl\n")
    refused = subprocess.run([sys.executable, "-m", "gradeset", "run", str(tmp_path / "refused.yaml")],
                             capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2 and "bubblewrap" in refused.stderr, refused.stderr
    ok = subprocess.run([sys.executable, "-m", "gradeset", "run", str(tmp_path / "unsafe.yaml")],
                        capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    shard = next((tmp_path / "unsafe.jsonl").glob("shard-*.jsonl"))  # a shard folder
    row = json.loads(shard.read_text().splitlines()[0])
    assert row["responses"][0]["correct"] is True and "UNSAFE" in row["responses"][0]["execution_output"]


def test_split_keeps_expected_values_in_the_parent():
    """The expressions sent into the sandbox hold the inputs, never the expected values."""
    from gradeset.verify.code_tests import Fallback, Split, split_test

    forms = {
        "assert add(2, 3) == 87125": ["add(2, 3)"],
        "assert 87125 == add(2, 3)": ["add(2, 3)"],
        "assert abs(root(2) - 1.87125) < 1e-6": ["root(2)"],
        "assert math.isclose(root(2), 1.87125, rel_tol=1e-3)": ["root(2)"],
        "assert sorted(pairs([3, 1])) == [(1, 87125)]": ["sorted(pairs([3, 1]))"],
        "assert set(f('a')) == set([87125])": ["set(f('a'))"],
        "assert not is_prime(87125 + 1) and is_prime(2)": ["is_prime(87125 + 1)", "is_prime(2)"],
        "expected = [87125, 87125]\nassert f([1, 2]) == expected": ["f([1, 2])"],
        "x = [4, 5]\nassert f(x) == 87125": ["f([4, 5])"],
        "def check(candidate):\n    assert candidate('q') == '87125'\n    assert candidate('') is None\n"
        "check(solve)\n": ["solve('q')", "solve('')"],
        "assert isinstance(f(1), int) and type(f(2)) is list and f(3)[0] == 87125": ["f(1)", "f(2)", "f(3)"],
    }
    for src, want in forms.items():
        calls: list[str] = []
        split = split_test(src, calls)
        assert isinstance(split, Split), src
        assert calls == want, (src, calls)
    for src in ("assert add(2, 3) == 87125", "for i in range(3):\n    assert f(i) == 87125"):
        calls = []
        out = split_test(src, calls)
        if isinstance(out, Fallback):  # runs whole in the sandbox, with == comparing plain copies
            assert "__gs_eq__(f(i), 87125)" in out.source and calls == []


def test_parent_evaluation_of_hostile_tests_is_bounded(backend):
    v = verifier()
    code = block("def f(x):\n    return x\n")
    out = v(code, ["assert f(9) == 9 ** 9 ** 9", "assert f('a') * 10 ** 12 == 'a'", "assert f(1) == 1"])
    assert out.score == pytest.approx(1 / 3) and "too large" in out.execution_output


def test_in_sandbox_asserts_can_be_turned_off(backend):
    good = block((ATTACKS / "correct_add.py").read_text())
    assert verifier()(good, LOOP_TESTS + CALL_TESTS).correct
    strict = verifier(in_sandbox_asserts=False)(good, LOOP_TESTS + CALL_TESTS)
    assert strict.score == pytest.approx(3 / 4)
    assert "cannot be checked outside the sandbox" in strict.execution_output


def test_overall_time_limit_kills_the_daemons_too(backend):
    """The harness itself stuck past the whole-run limit: everything is still gone on return."""
    import threading
    import time

    from gradeset.verify.sandbox import Backend, run_job

    marker = f"gradeset-stuck-{secrets.token_hex(6)}"
    code = ("import os, sys\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            f"        os.execv(sys.executable, [sys.executable, '-c', 'import time\\nwhile True: time.sleep(1)', {marker!r}])\n"
            "    os._exit(0)\n"
            "while True:\n    pass\n")
    result = {}
    job = {"code": code, "calls": ["1"], "programs": [], "stdio": [], "timeout": 600.0, "max_bytes": 4096}
    t = threading.Thread(target=lambda: result.update(r=run_job(Backend(backend, probe(backend, os.environ.get(
        "PATH"))[0]), job, wall_timeout=10)))
    t.start()
    deadline = time.monotonic() + 60
    while not _processes_with(marker) and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)  # polling for the daemon to appear, not synchronising on time
    seen = bool(_processes_with(marker))
    t.join()
    assert seen, "the daemon never started"
    assert result["r"].timed_out and _processes_with(marker) == []
