"""Run untrusted Python in a separate, limited, killable process.

Layers, strongest available first:

- bubblewrap (``bwrap``) when installed: new user/net/pid/ipc namespaces (no network),
  the filesystem read-only except a private working folder, ``--die-with-parent``;
- always: a new session (so the whole process group is killed at the time limit),
  ``RLIMIT_CPU``/``RLIMIT_AS``/``RLIMIT_FSIZE``/``RLIMIT_NPROC``/no core files, an
  isolated interpreter (``-I``: no user site, no PYTHON* variables, no cwd on the path),
  a scrubbed environment (no API keys leak into model code) and a fresh temp folder as cwd.

Without bubblewrap there is no network isolation; ``sandbox_info()`` says which layers are
active and the code verifier reports it in its detail once.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache


@dataclass
class RunResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool


@lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """bwrap if installed and able to create namespaces here (containers often forbid it)."""
    path = shutil.which("bwrap")
    if not path:
        return None
    try:
        ok = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True,
                            timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return path if ok else None


def _python_binds() -> list[str]:
    """Read-only binds that bring back an interpreter living under /tmp (a venv in a CI clone
    there), which the fresh tmpfs on /tmp would otherwise hide."""
    binds: list[str] = []
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for d in sorted(dirs):
        real = os.path.realpath(d)
        if real == "/tmp" or real.startswith("/tmp/"):
            binds += ["--ro-bind", real, real]
    return binds


def sandbox_info() -> dict:
    return {"bubblewrap": bwrap_path() is not None, "network_isolated": bwrap_path() is not None,
            "rlimits": True, "new_session": True, "isolated_python": True}


def _limits(cpu_s: int, memory_mb: int, fsize_mb: int, nproc: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_mb << 20, fsize_mb << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    return apply


def run_python(files: dict[str, str], main: str, *, stdin: str = "", timeout: float = 5.0, memory_mb: int = 1024,
               fsize_mb: int = 16, nproc: int = 64, max_output: int = 20000, secret: bytes | None = None) -> RunResult:
    """Run ``python -I main`` in a fresh folder holding ``files``; kill its group at the time limit.

    ``secret`` is written to a pipe passed as fd whose number is ``argv[1]`` (the harness
    reads it and closes the pipe before any model code runs).
    """
    work = tempfile.mkdtemp(prefix="gradeset-sbx-")
    rfd = wfd = None
    try:
        for name, content in files.items():
            with open(os.path.join(work, name), "w", encoding="utf-8") as f:
                f.write(content)
        args = [sys.executable, "-I", "-B", main]
        pass_fds: tuple[int, ...] = ()
        if secret is not None:
            rfd, wfd = os.pipe()
            os.write(wfd, secret)
            os.close(wfd)
            wfd = None
            args.append(str(rfd))
            pass_fds = (rfd,)
        bw = bwrap_path()
        if bw:
            args = [bw, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
                    "--proc", "/proc", "--tmpfs", "/tmp", *_python_binds(), "--bind", work, work,
                    "--chdir", work, "--new-session", *args]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work, "TMPDIR": work,
               "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(args, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, pass_fds=pass_fds,
                                preexec_fn=_limits(int(timeout) + 1, memory_mb, fsize_mb, nproc))
        if rfd is not None:
            os.close(rfd)
            rfd = None
        timed_out = False
        try:
            out, err = proc.communicate(stdin.encode("utf-8", "replace"), timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)  # stray children of a finished program
        return RunResult(proc.returncode, out[:max_output].decode("utf-8", "replace"),
                         err[-max_output:].decode("utf-8", "replace"), timed_out)
    finally:
        for fd in (rfd, wfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        shutil.rmtree(work, ignore_errors=True)
