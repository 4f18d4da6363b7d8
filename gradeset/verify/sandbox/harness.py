"""The program that runs inside the sandbox (stdlib only; started as ``python -I -S -c SOURCE``).

Two roles in two processes, so that model code never shares an interpreter with the part
that reports results:

- the *harness* reads the job from stdin, confines itself (new root for the ``unshare``
  backend, a non-root uid, its own user namespace, no capabilities, no new privileges, a
  process limit), keeps the only handle on the result channel (its original stdout) and
  makes itself non-dumpable so no other process can read its memory or file descriptors;
- for each unit of work it forks a *child* that closes the result channel, runs the model's
  program and sends back plain values (tagged, as a Python literal) on a pipe. The harness checks the
  shape of each message, forwards it with the run's nonce, enforces the per-test time limit
  and, after each child, kills every other process it can see.

Expected outputs are never in the job: the child only learns the call expressions (inputs)
and the test programs that could not be checked outside. The parent compares.
"""

import builtins
import ctypes
import io
import marshal
import os
import resource
import select
import sys
import time

# no json, re, enum or signal here: importing them costs more than the rest of a run.
# Messages are framed as b"<header>\n" + payload, payloads are repr() of plain literals
# that the parent reads with ast.literal_eval; the job comes from the parent as marshal.
SIGKILL = 9

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

_exec, _compile, _eval, _isinstance, _type = exec, compile, eval, isinstance, type


# ---------------------------------------------------------------- confinement (harness)
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, src, dst, fstype, flags, data=None):
    def enc(s):
        return (None if s is None else s.encode())
    _check(libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {dst}")


def _make_at(path, is_dir=True):
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))


def build_root(libc, plan):
    """A fresh tmpfs root holding only the interpreter, its libraries, /proc, a few devices
    and the private folders; the host's root is unmounted (no way back)."""
    root = plan["root"]
    os.umask(0o022)  # folders made here must be traversable by the non-root uid we switch to
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    for src, dst in plan["binds"]:
        target = root + dst
        _make_at(target, os.path.isdir(src))
        _mount(libc, src, target, None, MS_BIND | MS_REC)
        flags = os.statvfs(target).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
        _mount(libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
    for dev in plan["devs"]:
        _make_at(root + dev, False)
        _mount(libc, dev, root + dev, None, MS_BIND)
    for target, dst in plan["symlinks"]:
        os.makedirs(os.path.dirname(root + dst), exist_ok=True)
        os.symlink(target, root + dst)
    for dst, size_mb, mode in plan["tmpfs"]:
        _make_at(root + dst)
        _mount(libc, "tmpfs", root + dst, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size={size_mb}m")
    _make_at(root + "/proc")
    _mount(libc, "proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    nr = SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(f"pivot_root: unknown machine {os.uname().machine}")
    _check(libc.syscall(nr, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    _mount(libc, None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _drop_caps(libc):
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability this kernel knows (EPERM: we hold none)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    data = (ctypes.c_uint32 * 6)()
    _check(libc.capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")


def confine(job):
    libc = _libc()
    if job.get("isolated") and os.getpid() > 2:
        # we kill(-1) after each test: only ever inside a PID namespace of our own
        raise OSError(f"not in a new PID namespace (pid {os.getpid()})")
    if job.get("mounts"):
        build_root(libc, job["mounts"])
    uid = job.get("drop_uid")
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # to write our own uid_map below
    if job.get("userns"):
        # uid 1000 in a user namespace of our own; where the host forbids creating one
        # (AppArmor on recent Ubuntu) the uid is already non-root outside: keep it, drop caps
        euid, egid = os.geteuid(), os.getegid()
        if libc.unshare(CLONE_NEWUSER) == 0:
            for name, text in (("setgroups", "deny"), ("uid_map", f"1000 {euid} 1"), ("gid_map", f"1000 {egid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        _drop_caps(libc)
    if job.get("isolated"):
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
        n = int(job["nproc"])
        resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    os.chdir(job["workdir"])


# ---------------------------------------------------------------- plain values (child)
class NotPlain(TypeError):
    pass


def plain(x, depth=0):
    """A copy of x made only of builtin types, read through the base types' own slots so a
    subclass's overridden methods (``__eq__``, ``__iter__`` …) are never what is compared."""
    if depth > 200:
        raise NotPlain("value nested deeper than 200 levels")
    if x is None or x is True or x is False:
        return x
    d = depth + 1
    if _isinstance(x, int):
        return int.__index__(x)
    if _isinstance(x, float):
        return float.__float__(x)
    if _isinstance(x, complex):
        return complex(complex.real.__get__(x), complex.imag.__get__(x))
    if _isinstance(x, str):
        return str.__str__(x)
    if _isinstance(x, bytes):
        return bytes.__bytes__(x)
    if _isinstance(x, bytearray):
        return bytes(bytearray.copy(x))
    if _isinstance(x, list):
        return [plain(e, d) for e in list.__iter__(x)]
    if _isinstance(x, tuple):
        return tuple(plain(e, d) for e in tuple.__iter__(x))
    if _isinstance(x, dict):
        return {plain(k, d): plain(v, d) for k, v in dict.items(x)}
    if _isinstance(x, frozenset):
        return frozenset(plain(e, d) for e in frozenset.__iter__(x))
    if _isinstance(x, set):
        return {plain(e, d) for e in set.__iter__(x)}
    raise NotPlain(f"returned a {_type(x).__name__}, not a plain value (None, bool, int, float, complex, "
                   "str, bytes, list, tuple, dict, set)")


def encode(x, budget):
    """A plain value as nested lists of tags and strings (sent as its repr); ``budget`` is a
    one-item list of characters left."""
    t = _type(x)
    if x is None:
        out = ["n"]
    elif t is bool:
        out = ["b", x]
    elif t is int:
        out = ["i", hex(x)]
    elif t is float:
        out = ["f", float.hex(x)]
    elif t is complex:
        out = ["c", float.hex(x.real), float.hex(x.imag)]
    elif t is str:
        out = ["s", x]
    elif t is bytes:
        out = ["y", x.hex()]
    elif t is list or t is tuple or t is set or t is frozenset:
        out = [{list: "l", tuple: "t", set: "set", frozenset: "fs"}[t], [encode(e, budget) for e in x]]
    elif t is dict:
        out = ["d", [[encode(k, budget), encode(v, budget)] for k, v in x.items()]]
    else:
        raise NotPlain(t.__name__)
    budget[0] -= 8 + (len(out[1]) if t in (str, int, bytes) else 0)
    if budget[0] < 0:
        raise OverflowError("result too large to return")
    return out


def plain_eq(a, b):
    """``==`` for fallback tests: both sides reduced to plain values first."""
    return plain(a) == plain(b)


# ---------------------------------------------------------------- children
def _describe(exc):
    try:
        text = f"{_type(exc).__name__}: {exc}"
    except BaseException:
        text = _type(exc).__name__
    return text[:500]


def _child_prep(keep, stdin_fd, stdout_fd, stderr_fd, cpu_s):
    os.setpgid(0, 0)
    for target, fd in ((0, stdin_fd), (1, stdout_fd), (2, stderr_fd)):
        os.dup2(fd, target)
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    cpu = max(1, int(cpu_s) + 1)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        cpu = min(cpu, max(hard - 1, 1))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1 if hard == resource.RLIM_INFINITY else hard))
    sys.set_int_max_str_digits(0)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8",
                                 errors="replace")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8",
                                  errors="replace")
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
                                  errors="replace", write_through=True)
    sys.argv = ["solution.py"]
    builtins.exit = builtins.quit = sys.exit


def _sender(w):
    write = os.write

    def send(i, ok, text):
        """One message to the harness: index, ok flag, and a literal (repr) as payload."""
        data = text.encode("utf-8", "backslashreplace")
        buf = b"%d %d %d\n" % (i, 1 if ok else 0, len(data)) + data
        while buf:
            buf = buf[write(w, buf):]
    return send


def _load(job, g):
    _exec(_compile(job["code"], "solution.py", "exec"), g)
    for src in job.get("setup") or []:
        _exec(_compile(src, "test.py", "exec"), g)


def _only(job, *keys, **extra):
    """The part of the job a child needs; the rest (other tests, the nonce) is dropped
    from the child's copy of the harness's memory before model code runs."""
    small = {k: job.get(k) for k in keys}
    small.update(extra)
    job.clear()
    return small


def child_calls(job, w, start, null):
    job = _only(job, "code", "setup", "calls", "timeout", "max_bytes")
    _child_prep(w, null, null, null, job["timeout"] * (len(job["calls"]) - start + 1))
    send = _sender(w)
    g = {"__name__": "solution", "__builtins__": builtins}
    try:
        _load(job, g)
    except BaseException as exc:
        send(-1, False, repr(_describe(exc)))
        os._exit(0)
    send(-1, True, "''")
    for i in range(start, len(job["calls"])):
        try:
            value = _eval(_compile(job["calls"][i], "test.py", "eval"), g)
            ok, text = True, repr(encode(plain(value), [job["max_bytes"]]))
        except OverflowError as exc:
            ok, text = False, repr((f"result too large to return (over max_output_bytes={job['max_bytes']}); "
                                    "raise max_output_bytes") if str(exc) == "result too large to return"
                                   else _describe(exc))
        except BaseException as exc:
            ok, text = False, repr(_describe(exc))
        send(i, ok, text)
    os._exit(0)


def child_program(job, i, w, null, key):
    job = _only(job, "code", "setup", "timeout", "max_bytes", programs={i: job["programs"][i]})
    _child_prep(w, null, null, null, job["timeout"] * 2)
    send = _sender(w)
    g = {"__name__": "solution", "__builtins__": builtins}
    try:
        _load(job, g)
        g["__gs_eq__"] = plain_eq
        _exec(_compile(job["programs"][i], "test.py", "exec"), g)
        ok, text = True, repr(key)
    except BaseException as exc:
        ok, text = False, repr(_describe(exc))
    send(i, ok, text)
    os._exit(0)


def child_stdio(job, stdin_fd, out_w, err_w):
    job = _only(job, "code", "timeout")
    _child_prep(max(stdin_fd, out_w, err_w), stdin_fd, out_w, err_w, job["timeout"])
    os.closerange(3, 65536)
    g = {"__name__": "__main__", "__builtins__": builtins}
    code = 0
    try:
        _exec(_compile(job["code"], "solution.py", "exec"), g)
    except SystemExit as exc:
        c = exc.code
        code = c if _isinstance(c, int) else (0 if c is None else 1)
    except BaseException as exc:
        import traceback

        traceback.print_exception(exc)
        code = 1
    try:
        sys.stdout.flush()
    except BaseException:
        code = code or 1
    os._exit(code & 0xFF)


# ---------------------------------------------------------------- harness
class Frames:
    """Messages from a child: ``b"<index> <ok> <length>\n"`` then ``length`` bytes of payload."""

    def __init__(self, fd, limit):
        self.fd, self.limit, self.buf, self.eof = fd, limit, b"", False

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if self.eof or left <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], left)
        if ready:
            chunk = os.read(self.fd, 1 << 16)
            if chunk:
                self.buf += chunk
            else:
                self.eof = True
        return True

    def next(self, deadline):
        """(index, ok, payload) or "timeout" / "eof" / "garbled" / "toolong"."""
        while True:
            nl = self.buf.find(b"\n", 0, 64)
            if nl >= 0:
                parts = self.buf[:nl].split(b" ")
                try:
                    i, ok, size = (int(p) for p in parts)
                except ValueError:
                    return "garbled"
                if len(parts) != 3 or ok not in (0, 1) or size < 0:
                    return "garbled"
                if size > self.limit:
                    return "toolong"
                while len(self.buf) < nl + 1 + size:
                    if not self._fill(deadline):
                        return "eof" if self.eof else "timeout"
                payload = self.buf[nl + 1:nl + 1 + size]
                self.buf = self.buf[nl + 1 + size:]
                return i, ok == 1, payload
            if len(self.buf) >= 64:
                return "garbled"
            if not self._fill(deadline):
                return "eof" if self.eof else "timeout"


class Harness:
    def __init__(self, job, res, null):
        self.job, self.res, self.null = job, res, null
        self.timeout = float(job["timeout"])

    def emit(self, kind, i=0, ok=False, payload=b"''"):
        """A record for the parent: ``b"<nonce> <kind> <index> <ok> <length>\n" + payload``."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8", "backslashreplace")
        data = b"%s %s %d %d %d\n" % (self.job["nonce"].encode(), kind.encode(), i, 1 if ok else 0,
                                       len(payload)) + payload
        while data:
            data = data[os.write(self.res, data):]

    def fork(self, fn, *args):
        for attempt in range(50):
            try:
                pid = os.fork()
                break
            except BlockingIOError:  # processes of the last child not reaped yet
                self.reap()
                time.sleep(0.01 * (attempt + 1))
        else:
            raise OSError("cannot fork a child for the program")
        if pid == 0:
            try:
                os.close(self.res)
                fn(*args)
            finally:
                os._exit(70)
        return pid

    def reap(self):
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    return
            except ChildProcessError:
                return

    def clear(self, pid):
        """Kill everything the program started and wait until it is gone from /proc: in a
        namespace, every process but us (and bubblewrap's init, which reaps orphans)."""
        if not self.job.get("isolated"):
            try:  # noqa: SIM105 (contextlib costs an import in every sandbox)
                os.killpg(pid, SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:  # noqa: SIM105
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            return
        me, deadline = os.getpid(), time.monotonic() + 10
        while True:
            try:  # noqa: SIM105
                os.kill(-1, SIGKILL)
            except ProcessLookupError:
                pass
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                pass
            others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
            if not others or time.monotonic() > deadline:
                return
            time.sleep(0.001)

    def calls(self):
        calls, i, first = self.job["calls"], 0, True
        why_not = {"timeout": "timeout", "toolong": "result too large to return; raise max_output_bytes",
                   "eof": "the program exited before returning"}
        while i < len(calls) or first:
            r, w = os.pipe()
            pid = self.fork(child_calls, self.job, w, i, self.null)
            os.close(w)
            frames = Frames(r, 8 * self.job["max_bytes"] + 4096)  # repr escapes grow text up to 4x
            msg = frames.next(time.monotonic() + self.timeout)
            loaded = _type(msg) is tuple and msg[0] == -1 and msg[1]
            if first:
                if _type(msg) is tuple and msg[0] == -1:
                    self.emit("load", -1, loaded, msg[2])
                else:
                    why = "timeout while loading the solution" if msg == "timeout" else \
                        f"the program stopped while loading ({msg})"
                    self.emit("load", -1, False, repr(why))
                first = False
            if not loaded:
                for j in range(i, len(calls)):
                    self.emit("call", j, False, repr("the solution failed to load"))
                i = len(calls)
            while loaded and i < len(calls):
                msg = frames.next(time.monotonic() + self.timeout)
                if _type(msg) is tuple and msg[0] == i:
                    self.emit("call", i, msg[1], msg[2])
                    i += 1
                    continue
                self.emit("call", i, False, repr(why_not.get(msg, "malformed message from the program")))
                i += 1
                break
            os.close(r)
            self.clear(pid)

    def programs(self):
        for i in range(len(self.job["programs"])):
            r, w = os.pipe()
            # a pass must carry this key: a program that writes forged messages to every
            # descriptor it has cannot pass (one that digs the key out of the test's frame
            # can; the documented limit of tests that run whole in the sandbox)
            key = os.urandom(16).hex()
            pid = self.fork(child_program, self.job, i, w, self.null, key)
            os.close(w)
            msg = Frames(r, 4096).next(time.monotonic() + self.timeout)
            if _type(msg) is tuple and msg[0] == i:
                if msg[1]:
                    ok = msg[2] == repr(key).encode()
                    self.emit("prog", i, ok, "''" if ok else repr("forged result"))
                else:
                    self.emit("prog", i, False, msg[2])
            else:
                why = {"timeout": "timeout", "eof": "the program exited before the test finished"}.get(
                    msg, "malformed message from the program")
                self.emit("prog", i, False, repr(why))
            os.close(r)
            self.clear(pid)

    def stdio(self):
        limit = int(self.job["max_bytes"])
        for i, text in enumerate(self.job["stdio"]):
            data = str(text).encode("utf-8", "replace")
            src = os.memfd_create("stdin")
            view = data
            while view:
                view = view[os.write(src, view):]
            os.lseek(src, 0, os.SEEK_SET)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            pid = self.fork(child_stdio, self.job, src, out_w, err_w)
            for fd in (src, out_w, err_w):
                os.close(fd)
            out, err, trunc, status = bytearray(), bytearray(), False, None
            deadline = time.monotonic() + self.timeout
            open_fds = [out_r, err_r]
            while open_fds:
                if status is None:
                    done, st = os.waitpid(pid, os.WNOHANG)
                    if done:
                        status = st
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select(open_fds, [], [], min(left, 0.05 if status is None else 0.0))
                if not ready and status is not None:
                    break  # the program is gone; a leftover child may hold the pipe
                for fd in ready:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        open_fds.remove(fd)
                    elif fd == out_r:
                        room = limit - len(out)
                        trunc = trunc or len(chunk) > room
                        out += chunk[:max(room, 0)]
                    else:
                        err = (err + chunk)[-2000:]
            while status is None and time.monotonic() < deadline:  # output closed: the program is exiting
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = st
                else:
                    time.sleep(0.001)
            timed_out = status is None
            code = None if status is None else os.waitstatus_to_exitcode(status)
            self.emit("stdio", i, True, repr((out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                                              trunc, code, timed_out)))
            os.close(out_r)
            os.close(err_r)
            self.clear(pid)


def main():
    job = marshal.loads(sys.stdin.buffer.read())
    res = os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    h = Harness(job, res, null)
    try:
        confine(job)
    except Exception as exc:
        h.emit("fatal", 0, False, repr(f"sandbox setup failed: {_describe(exc)}"))
        os._exit(3)
    if job.get("calls") is not None:
        h.calls()
    h.programs()
    h.stdio()
    h.emit("done", 0, True)
    os._exit(0)


main()
