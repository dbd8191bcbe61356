"""Operating-system isolation that a sandbox worker applies to itself before it runs any user code.

The Python-level policy (policy.py) is one layer; libraries call methods named by strings, so it can be bypassed.
These layers hold even then. Each is applied where the kernel allows it and reported by name, so the server can
say which are active (/health/detailed) and refuse user code when none is:

- ``uid``: a worker started as root drops to ``nobody`` (65534): the server's files, keys and processes are then
  another user's, protected by ordinary permissions.
- ``user_ns``, ``pid_ns``, ``net_ns``, ``mount_ns`` (unshare(2), plus IPC and UTS): the worker gets its own user
  namespace (no capability over anything outside it), its own PID namespace (the server's processes cannot be
  named, signalled or traced; a fresh /proc shows only the worker), a network namespace with no interface but a
  loopback that is down, and a mount namespace whose whole tree is read-only except a private, size-limited tmpfs
  over its temp folder.
- ``landlock``: read access only beneath the interpreter's and the libraries' folders, read-write only beneath the
  temp folder; nothing else (no /proc, no data folder, no key file, no database).
- ``seccomp``: a system-call allowlist (libseccomp); every other call fails with EPERM: no socket, fork, exec,
  ptrace, mount, unshare, and signals only to the worker itself.
- ``rlimits`` (set by the worker, see worker.py): CPU time, address space, file size, open files, processes.

A worker is four processes: the one the server started (it maps the user namespace, then waits and passes the exit
status on), the one that entered the namespaces (it waits), the init of the new PID namespace (it reaps), and the
worker proper, PID 2, which runs the code. The init cannot be the worker: the kernel drops signals such as SIGXCPU
(the CPU limit) sent to an init. The waiters hold no user code and die with the worker or the server: the kernel
kills the first one when the server ends (`die_with_parent`), and each inner one when the one before it ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyseccomp as seccomp
from landlock import FSAccess, Ruleset

NOBODY = 65534
TMPFS_BYTES = 64 * 1024**2
OS_LAYERS = ("uid", "user_ns", "pid_ns", "net_ns", "mount_ns", "landlock", "seccomp")

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE = 1, 4
_SYS_MOUNT_SETATTR = {"x86_64": 442, "aarch64": 442}
_AT_FDCWD, _AT_RECURSIVE = -100, 0x8000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
_STATUS_SIGNAL_BASE = 128  # exit code 128 + N: the worker died of signal N (passed on by the init)
_PARENT_PID = "SEE_SANDBOX_PARENT_PID"  # in a sandbox process's environment: the server that started it
PROBE_SECONDS = 60.0

# The kernel's parent-death signal fires when the *thread* that forked a process ends, not its process: every
# sandbox process is forked by this one thread, which lives as long as the server.
_launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-launcher")

_libc = ctypes.CDLL(None, use_errno=True)

# What CPython, numpy and pandas use once imported; everything else answers EPERM.
_ALLOWED_SYSCALL_NAMES = """
    read write readv writev pread64 pwrite64 preadv pwritev lseek close close_range fstat newfstatat statx stat lstat
    fstatfs statfs access faccessat faccessat2 openat open getdents64 readlink readlinkat getcwd fcntl dup dup2 dup3
    mkdir mkdirat unlink unlinkat rmdir rename renameat renameat2 ftruncate fsync fdatasync umask
    mmap munmap mremap mprotect madvise brk mincore
    rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending sigaltstack restart_syscall
    futex set_robust_list get_robust_list rseq set_tid_address arch_prctl
    clock_gettime clock_getres clock_nanosleep nanosleep gettimeofday time
    getpid gettid getppid getpgrp getpgid getsid getuid geteuid getgid getegid getresuid getresgid getgroups
    getrusage times getrlimit sched_getaffinity sched_yield sched_getparam sched_getscheduler getpriority
    uname sysinfo getrandom getcpu poll ppoll select pselect6 exit exit_group
"""


def enter_namespaces() -> str:
    """Enter new user, PID, network, mount, IPC and UTS namespaces; call it first, while the process has one thread.

    The process forks: the parent stays outside, maps the child's user namespace (the child's root is the outside
    user `nobody` when the server is root, else the server's own user) and then only waits. The child forks again
    so that the worker proper is PID 2 of the new PID namespace under an init that reaps. The worker keeps its
    current user until `confine`, so that it can still import what only the server's user may read.
    """
    if os.geteuid() == 0:
        with contextlib.suppress(OSError):  # then the change of user fails too, and says so
            os.setgroups([])  # root's supplementary groups would outlive the change of user
    outside_uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    outside_gid = NOBODY if os.getegid() == 0 else os.getegid()
    unshared_r, unshared_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    child = os.fork()
    if child != 0:
        os.close(unshared_w)
        os.close(mapped_r)
        verdict = b"0"
        if os.read(unshared_r, 1) == b"1" and _map_user_namespace(child, outside_uid, outside_gid):
            verdict = b"1"
        os.write(mapped_w, verdict)
        _wait_and_pass_on(child, as_init=False)
    os.close(unshared_r)
    os.close(mapped_w)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the server killed the waiter: the worker goes with it
    flags = _CLONE_NEWUSER | _CLONE_NEWPID | _CLONE_NEWNET | _CLONE_NEWNS | _CLONE_NEWIPC | _CLONE_NEWUTS
    failed = _libc.unshare(flags) != 0
    number = ctypes.get_errno()
    os.write(unshared_w, b"0" if failed else b"1")
    mapped = os.read(mapped_r, 1) == b"1"
    os.close(unshared_w)
    os.close(mapped_r)
    if failed:
        return _unavailable(OSError(number, os.strerror(number)))
    if not mapped:
        return "unavailable: the user namespace could not be mapped"
    _wait_and_pass_on(os.fork(), as_init=False)  # the first child is the PID namespace's init...
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    _wait_and_pass_on(os.fork(), as_init=True)  # ...and its child the worker proper, PID 2
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    return "active"


def _map_user_namespace(child: int, uid: int, gid: int) -> bool:
    try:
        _write(f"/proc/{child}/setgroups", "deny")  # no way back to root's groups inside
        _write(f"/proc/{child}/uid_map", f"0 {uid} 1")
        _write(f"/proc/{child}/gid_map", f"0 {gid} 1")
    except OSError:
        return False
    return True


def confine(temp_dir: Path, read_dirs: Iterable[Path], namespaces: str) -> dict[str, str]:
    """Every layer but seccomp (apply it last, with `filter_syscalls`), after `enter_namespaces` said `namespaces`."""
    report = {"uid": _become_unprivileged(inside_namespaces=namespaces == "active")}
    report.update(dict.fromkeys(("user_ns", "pid_ns", "net_ns", "mount_ns"), namespaces))
    if namespaces == "active":
        report["mount_ns"] = _private_mounts(temp_dir)
    report["landlock"] = _restrict_paths(temp_dir, read_dirs)
    return report


def filter_syscalls() -> str:
    """Load the system-call allowlist; from here on the process cannot open sockets, fork, exec or trace."""
    try:
        syscall_filter = seccomp.SyscallFilter(seccomp.ERRNO(errno.EPERM))
        syscall_filter.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)  # x32 or 32-bit calls end the worker
        syscall_filter.set_attr(seccomp.Attr.CTL_TSYNC, 1)  # every thread, the libraries' too
        for name in _ALLOWED_SYSCALL_NAMES.split():
            _allow(syscall_filter, name)
        me = os.getpid()
        for name in ("kill", "tgkill"):  # a signal only to itself (raise(), os.abort())
            syscall_filter.add_rule(seccomp.ALLOW, name, seccomp.Arg(0, seccomp.EQ, me))
        syscall_filter.add_rule(seccomp.ALLOW, "prlimit64", seccomp.Arg(0, seccomp.EQ, 0))  # its own limits only
        syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # glibc then tries clone, which is refused
        syscall_filter.load()
    except (OSError, RuntimeError) as exc:
        return _unavailable(exc)
    return "active"


def _allow(syscall_filter: seccomp.SyscallFilter, name: str) -> None:
    with contextlib.suppress(OSError, ValueError, RuntimeError):  # a call this architecture lacks (open on arm64)
        syscall_filter.add_rule(seccomp.ALLOW, name)


def _become_unprivileged(*, inside_namespaces: bool) -> str:
    """Take the user the namespace maps (nobody when the server is root), or outside one drop root directly."""
    if not inside_namespaces and os.geteuid() != 0:
        return "not needed: the server does not run as root"
    try:
        if inside_namespaces:
            os.setresgid(0, 0, 0)  # the namespace's root: outside, nobody (or the server's own user)
            os.setresuid(0, 0, 0)
        else:
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
    except OSError as exc:
        return _unavailable(exc)
    if inside_namespaces and _outside_uid() != NOBODY:
        return "not needed: the server does not run as root"
    return "active"


def _outside_uid() -> int:
    with open("/proc/self/uid_map") as uid_map:
        return int(uid_map.read().split()[1])


def _wait_and_pass_on(child: int, *, as_init: bool) -> None:
    """In the parent: wait for the child and end with its status. In the child (child == 0): return at once."""
    if child == 0:
        return
    while True:
        try:
            pid, status = os.waitpid(-1 if as_init else child, 0)  # an init reaps every orphan of its namespace
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            break
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if as_init:  # the kernel ignores most signals an init sends itself: the waiter outside passes it on
            os._exit(_STATUS_SIGNAL_BASE + number)
        _die_of(number)
    code = os.WEXITSTATUS(status)
    if not as_init and code > _STATUS_SIGNAL_BASE:
        _die_of(code - _STATUS_SIGNAL_BASE)
    os._exit(code)


def _die_of(number: int) -> None:
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    os._exit(_STATUS_SIGNAL_BASE + number)  # a signal whose default is not to end the process


def _private_mounts(temp_dir: Path) -> str:
    """Read-only view of the whole tree, a fresh /proc of this PID namespace, a private tmpfs as temp folder."""
    try:
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        _read_only_tree()
        _mount("tmpfs", str(temp_dir), "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={TMPFS_BYTES},mode=0700")
    except OSError as exc:
        return _unavailable(exc)
    # A container that masks parts of /proc forbids a new one; Landlock still hides it.
    with contextlib.suppress(OSError):
        _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    return "active"


def _read_only_tree() -> None:
    class MountAttr(ctypes.Structure):
        _fields_ = [
            ("attr_set", ctypes.c_uint64),
            ("attr_clr", ctypes.c_uint64),
            ("propagation", ctypes.c_uint64),
            ("userns_fd", ctypes.c_uint64),
        ]

    number = _SYS_MOUNT_SETATTR.get(os.uname().machine)
    if number is None:
        raise OSError(errno.ENOSYS, "mount_setattr is not known on this architecture")
    attr = MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV, 0, 0, 0)
    result = _libc.syscall(number, _AT_FDCWD, b"/", _AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr))
    _check(result)


def _restrict_paths(temp_dir: Path, read_dirs: Iterable[Path]) -> str:
    try:
        ruleset = Ruleset()
        readable = FSAccess.READ_FILE | FSAccess.READ_DIR | FSAccess.EXECUTE
        for directory in sorted({path.resolve() for path in read_dirs}):
            _allow_path(ruleset, directory, readable)
        ruleset.allow(str(temp_dir), rules=FSAccess.all())
        ruleset.apply()
        os.close(ruleset._fd)  # the binding keeps the ruleset's descriptor open; the worker needs no spare one
    except Exception as exc:  # the binding raises its own error types for a kernel without Landlock
        return _unavailable(exc)
    return "active"


def _allow_path(ruleset: Ruleset, directory: Path, rules: FSAccess) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):  # not there, or out of the worker's reach anyway
        ruleset.allow(str(directory), rules=rules)


def library_dirs() -> list[Path]:
    """What a worker may read: the interpreter's library, site-packages, SEE's own packages, system libraries."""
    paths = sysconfig.get_paths()
    dirs = [Path(paths[name]) for name in ("stdlib", "platstdlib", "purelib", "platlib")]
    dirs += [Path(entry) for entry in sys.path if entry.endswith(("site-packages", "dist-packages", ".zip"))]
    dirs += [Path(__file__).resolve().parents[1]]  # see_grpc
    generated = sys.modules.get("see")
    if generated is not None and generated.__file__ is not None:
        dirs.append(Path(generated.__file__).resolve().parent)
    dirs += [Path(p) for p in ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo")]
    return dirs


def _unavailable(exc: BaseException) -> str:
    """The reason without file names or addresses: this text is shown in /health/detailed and in errors."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return f"unavailable: {reason}"


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0))


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    def encode(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    _check(_libc.mount(encode(source), encode(target), encode(kind), flags, encode(data)))


def _check(result: int) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def launch(module: str, *args: str, **options: Any) -> subprocess.Popen[bytes]:
    """`python -m MODULE ARGS` as a sandbox process: empty environment, own session, forked by the launcher."""
    command = [sys.executable, "-m", module, *args]
    options = {"env": worker_environment(), "cwd": "/", "start_new_session": True, **options}
    # Own session and process group: nothing it signals reaches the server. Our interpreter and module, no shell.
    return _launcher.submit(_popen, command, options).result()


def _popen(command: list[str], options: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, **options)  # noqa: S603 - see launch


def die_with_parent() -> None:
    """First thing in a sandbox process: the kernel kills it when the server ends, however (SIGKILL included)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    expected = os.environ.pop(_PARENT_PID, None)  # read once; user code sees only the documented environment
    if expected is not None and os.getppid() != int(expected):
        os._exit(1)  # the server ended before the request above: nobody would ever signal this process


def probe() -> dict[str, str]:
    """Which layers this machine allows, found by applying them in a throwaway process (see `_probe_main`)."""
    with tempfile.TemporaryDirectory(prefix="see-sandbox-probe-") as temp_dir:
        give_to_worker(Path(temp_dir))
        process = launch(__name__, temp_dir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            stdout, _ = process.communicate(timeout=PROBE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return dict.fromkeys(OS_LAYERS, f"unavailable: the probe did not finish within {PROBE_SECONDS:g} s")
    try:
        report = json.loads(stdout)
    except ValueError:
        return dict.fromkeys(OS_LAYERS, f"unavailable: the probe ended with status {process.returncode}")
    return {str(key): str(value) for key, value in report.items()}


def give_to_worker(temp_dir: Path) -> None:
    """A worker started as root runs as nobody: its temp folder must be nobody's."""
    if os.geteuid() == 0:
        os.chown(temp_dir, NOBODY, NOBODY)


def worker_environment() -> dict[str, str]:
    """Nothing of the server's environment: no key, no database or Redis address, no broker token."""
    env = {"PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}  # import SEE as the server does
    env[_PARENT_PID] = str(os.getpid())
    for threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[threads] = "1"  # one request at a time per worker, and no thread may start once seccomp is on
    return env


def active_layers(report: Mapping[str, str]) -> list[str]:
    return [layer for layer in OS_LAYERS if report.get(layer) == "active"]


def _probe_main() -> None:
    die_with_parent()
    namespaces = enter_namespaces()
    report = confine(Path(sys.argv[1]), library_dirs(), namespaces)
    report["seccomp"] = filter_syscalls()
    sys.stdout.write(json.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    _probe_main()
