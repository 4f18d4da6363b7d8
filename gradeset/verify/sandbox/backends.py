"""Isolation backends: how the sandbox harness is started.

- ``bwrap`` (bubblewrap): new PID, network, IPC, UTS (and user) namespaces, a new root
  holding only the interpreter, the system libraries, ``/proc`` of its own namespace, a few
  devices and two small private tmpfs folders (``/sbx``, the working folder, and ``/tmp``).
- ``unshare`` (util-linux): the same namespaces; the harness builds the same root itself
  (tmpfs, read-only binds, ``pivot_root``, old root unmounted).
- ``none``: no isolation at all, only when the user asked for it (``--unsafe-no-sandbox``).

In both isolated backends the program ends up as uid 1000 in a user namespace of its own,
mapped to a non-root uid outside (a random one when gradeset runs as root), with no
capabilities and ``no_new_privs``, so ``RLIMIT_NPROC`` holds; the harness is PID 1 of the
namespace (or its only child), so when it exits every process the program started dies.
"""

from __future__ import annotations

import ast
import contextlib
import marshal
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from gradeset.errors import GradesetError

NAMES = ("bwrap", "unshare")
ENV_VAR = "GRADESET_SANDBOX"
INSTALL_HINT = ("install bubblewrap (apt-get install bubblewrap / dnf install bubblewrap) or util-linux's "
                "unshare with user namespaces enabled")
_HARNESS = (Path(__file__).with_name("harness.py")).read_text(encoding="utf-8")
_WORK = "/sbx"
_DEVS = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


class SandboxUnavailable(GradesetError):
    """No way to isolate model code here, and the user did not opt out."""


@dataclass
class JobResult:
    """What came back from one sandbox run, by kind of record."""

    load: dict | None = None
    calls: dict[int, dict] = field(default_factory=dict)
    progs: dict[int, dict] = field(default_factory=dict)
    stdio: dict[int, dict] = field(default_factory=dict)
    done: bool = False
    fatal: str | None = None
    timed_out: bool = False
    stderr: str = ""


def base_python() -> str:
    """The real interpreter (not a venv's link to it), so no site-packages come along."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _python_dirs() -> tuple[list[str], list[str]]:
    """Folders holding the interpreter and its standard library; site-packages to hide."""
    exe = base_python()
    prefix = os.path.realpath(sys.base_prefix)
    dirs = {prefix, os.path.dirname(exe)}
    for key in ("stdlib", "platstdlib"):
        p = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix, "installed_base": prefix}).get(key)
        if p:
            dirs.add(os.path.realpath(p))
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and os.path.isdir(libdir):
        dirs.add(os.path.realpath(libdir))
    hide = []
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix}).get(key)
        if p and os.path.isdir(p):
            hide.append(os.path.realpath(p))
    # keep only the outermost folders
    keep = sorted(d for d in dirs if os.path.isdir(d) and not any(d != o and d.startswith(o + "/") for o in dirs))
    return keep, sorted(set(hide))


def _system_layout() -> tuple[list[str], list[tuple[str, str]]]:
    """Shared-library folders to bind, and the merged-/usr symlinks to recreate."""
    binds, links = [], []
    for p in ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32"):
        if os.path.islink(p):
            links.append((os.readlink(p), p))
        elif os.path.isdir(p):
            binds.append(p)
    return binds, links


def _plan(root: str, tmp_mb: int) -> dict:
    py, hide = _python_dirs()
    sys_binds, links = _system_layout()
    binds = [(d, d) for d in sys_binds + [p for p in py if not any(p == b or p.startswith(b + "/") for b in sys_binds)]]
    return {"root": root, "binds": binds, "symlinks": links, "devs": list(_DEVS),
            "tmpfs": [(h, 1, "0755") for h in hide] + [("/tmp", tmp_mb, "1777"), (_WORK, tmp_mb, "0777")]}


def _bwrap_args(tool: str, as_root: bool, tmp_mb: int) -> list[str]:
    plan = _plan("", tmp_mb)
    args = [tool, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if as_root:  # the harness switches to a random non-root uid and makes its own user namespace
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--uid", "1000", "--gid", "1000"]
    parents = sorted({str(a) for _, dst in plan["binds"] for a in Path(dst).parents if str(a) != "/"})
    for d in parents:  # traversable by the non-root uid (bwrap would create them 0700 for root)
        args += ["--perms", "0755", "--dir", d]
    for src, dst in plan["binds"]:
        args += ["--ro-bind", src, dst]
    for target, dst in plan["symlinks"]:
        args += ["--symlink", target, dst]
    for dst, size_mb, mode in plan["tmpfs"]:
        args += ["--perms", mode, "--size", str(size_mb << 20), "--tmpfs", dst]
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--chdir", _WORK, "--clearenv"]
    for k, v in _sandbox_env().items():
        args += ["--setenv", k, v]
    return args


def _sandbox_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": _WORK, "TMPDIR": "/tmp", "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Backend:
    name: str  # bwrap | unshare | none
    tool: str | None = None

    @property
    def isolated(self) -> bool:
        return self.name != "none"


def _limits(memory_mb: int, cpu_s: int, fsize_mb: int):
    def apply() -> None:
        import ctypes
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_mb << 20, fsize_mb << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    return apply


def run_job(backend: Backend, job: dict, *, wall_timeout: float, memory_mb: int = 1024, fsize_mb: int = 16,
            nproc: int = 64, tmp_mb: int = 64) -> JobResult:
    """Start the harness under ``backend`` with ``job``; collect its records.

    Everything the program started is dead when this returns: the harness's namespace died
    with it, or (unsafe backend) its process group was killed.
    """
    as_root = os.geteuid() == 0
    nonce = secrets.token_hex(16)
    biggest_input = max((len(str(t).encode("utf-8", "replace")) for t in job.get("stdio") or []), default=0)
    fsize_mb = max(fsize_mb, (biggest_input >> 20) + 2)  # the harness stores each stdin in a memfd
    job = dict(job, nonce=nonce, isolated=backend.isolated, nproc=nproc, workdir=_WORK,
               drop_uid=(100_000 + secrets.randbelow(1 << 30)) if as_root and backend.isolated else None,
               userns=backend.isolated and (as_root or backend.name == "unshare"), mounts=None)
    python = base_python()
    scratch = tempfile.mkdtemp(prefix="gradeset-sbx-")
    try:
        if backend.name == "bwrap":
            cmd = _bwrap_args(backend.tool or "bwrap", as_root, tmp_mb)
        elif backend.name == "unshare":
            cmd = [backend.tool or "unshare", "--mount", "--pid", "--net", "--ipc", "--uts", "--fork",
                   "--kill-child", "--propagation", "private"]
            if not as_root:
                cmd += ["--user", "--map-root-user"]
            job["mounts"] = _plan(scratch, tmp_mb)
        else:
            job["workdir"] = scratch
            cmd = []
        cmd += [python, "-I", "-S", "-c", _HARNESS]
        env = _sandbox_env() if backend.isolated else dict(_sandbox_env(), HOME=scratch, TMPDIR=scratch)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=scratch, env=env, start_new_session=True,
                                preexec_fn=_limits(memory_mb, int(wall_timeout) + 2, fsize_mb))
        timed_out = False
        try:
            out, err = proc.communicate(marshal.dumps(job), timeout=wall_timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            inits = _children(proc.pid)  # the namespace's init: when it is gone, so is the rest
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            _wait_gone(inits, deadline=time.monotonic() + 10)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _collect(out, err, nonce, timed_out)


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of pid's children, so a recycled pid is not mistaken for them."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [(int(k), _start_time(int(k))) for k in kids]


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _wait_gone(procs: list[tuple[int, str]], deadline: float) -> None:
    """Poll until each process has exited (the kernel kills a PID namespace's members before
    its init finishes exiting), so nothing the program started outlives the verdict."""
    for pid, start in procs:
        while start and _start_time(pid) == start and time.monotonic() < deadline:
            time.sleep(0.002)


def _literal(payload: bytes):
    """A payload from the sandbox: the repr of plain literals, read without running anything."""
    try:
        return ast.literal_eval(payload.decode("utf-8", "replace"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _collect(out: bytes, err: bytes, nonce: str, timed_out: bool) -> JobResult:
    """Read the harness's records: ``b"<nonce> <kind> <index> <ok> <length>\\n" + payload``."""
    r = JobResult(timed_out=timed_out, stderr=err[-2000:].decode("utf-8", "replace"))
    pos, tag = 0, nonce.encode()
    while pos < len(out):
        nl = out.find(b"\n", pos)
        if nl < 0:
            break
        parts = out[pos:nl].split(b" ")
        try:
            if len(parts) != 5 or parts[0] != tag:
                raise ValueError
            kind, i, ok, size = parts[1].decode(), int(parts[2]), parts[3] == b"1", int(parts[4])
        except (ValueError, UnicodeDecodeError):
            break  # only the harness writes here; anything else means it was stopped mid-record
        payload = out[nl + 1:nl + 1 + size]
        pos = nl + 1 + size
        if len(payload) < size:
            break
        value = _literal(payload)
        if kind == "load" and r.load is None:
            r.load = {"ok": ok, "err": None if ok else str(value)}
        elif kind == "call":
            r.calls.setdefault(i, {"ok": True, "v": value} if ok else {"ok": False, "err": str(value)})
        elif kind == "prog":
            r.progs.setdefault(i, {"ok": ok, "err": "" if ok else str(value)})
        elif kind == "stdio" and type(value) is tuple and len(value) == 5:
            out_text, err_text, trunc, code, timeout = value
            r.stdio.setdefault(i, {"out": str(out_text), "err": str(err_text), "trunc": trunc is True,
                                   "code": code if type(code) is int else None, "timeout": timeout is True})
        elif kind == "done":
            r.done = True
        elif kind == "fatal":
            r.fatal = str(value)
    return r


# ---------------------------------------------------------------- choosing a backend
@lru_cache(maxsize=16)
def probe(name: str, path_env: str | None) -> tuple[str | None, str]:
    """(tool path, "") when ``name`` can isolate a program here, else (None, why not)."""
    tool = shutil.which(name, path=path_env)
    if not tool:
        return None, f"{name}: not found on PATH"
    try:
        r = run_job(Backend(name, tool), {"code": "x = 6 * 7", "calls": ["x"], "programs": [], "stdio": [],
                                          "timeout": 10.0, "max_bytes": 4096}, wall_timeout=30)
    except OSError as exc:
        return None, f"{name}: {exc}"
    ok = r.done and r.calls.get(0, {}).get("v") == ["i", hex(42)]
    if ok:
        return tool, ""
    why = r.fatal or r.stderr.strip().splitlines()[-1:] or ["no result"]
    return None, f"{name}: cannot isolate here ({why if isinstance(why, str) else why[0]})"


def choose(requested: str | None = None, unsafe_no_sandbox: bool = False) -> Backend:
    """The backend to use: ``requested`` (or $GRADESET_SANDBOX) or the first that works.

    Raises SandboxUnavailable (exit 2) naming what to install when nothing isolates and the
    user did not pass ``unsafe_no_sandbox``.
    """
    if unsafe_no_sandbox:
        return Backend("none")
    want = (requested or os.environ.get(ENV_VAR) or "auto").strip().lower()
    if want == "none":
        raise SandboxUnavailable("sandbox 'none' runs model code without isolation: pass --unsafe-no-sandbox "
                                 "(Python: unsafe_no_sandbox=True) to allow it")
    if want not in ("auto", *NAMES):
        raise SandboxUnavailable(f"unknown sandbox {want!r}; use auto, bwrap, unshare")
    reasons = []
    for name in NAMES if want == "auto" else (want,):
        tool, why = probe(name, os.environ.get("PATH"))
        if tool:
            return Backend(name, tool)
        reasons.append(why)
    raise SandboxUnavailable(
        "code grading runs model-written programs and needs process isolation, which is not available here ("
        + "; ".join(reasons) + f"): {INSTALL_HINT}; or pass --unsafe-no-sandbox (pipeline: unsafe_no_sandbox: true) "
        "to run model code WITHOUT isolation")
