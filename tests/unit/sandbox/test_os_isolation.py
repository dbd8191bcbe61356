"""The operating-system layers hold on their own: plain Python, with the Python policy switched off, in a worker.

The "server" here is a separate process started with secrets in its environment, like SEE's; its files sit in a
world-readable and world-writable folder, so ordinary permissions are not what stops the worker.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from see_grpc.priority import WORKER_NICENESS
from see_grpc.sandbox import isolation
from see_grpc.sandbox.pool import SandboxLimits, SandboxPool, run_unrestricted_for_tests
from tests.unit.sandbox.conftest import SMA_CROSS

SECRET = "sk-test-0123456789abcdef-never-in-a-worker"
DENIED = {"EACCES", "EPERM", "EROFS", "ENOENT", "ESRCH", "EAGAIN", "ENOSYS"}  # never EMFILE: the fd limit is not it

# What a worker's environment may hold: the import path, thread counts, its temp folder, and the locale that Python
# sets itself (PEP 538). No key, no database or Redis address.
WORKER_ENVIRONMENT = {"PYTHONPATH", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                      "TMPDIR", "LC_CTYPE"}  # fmt: skip

ATTACKS = r"""
import ctypes, errno, json, os, resource, signal, socket
os.close(2)  # one free descriptor, so that the open-files limit is not what refuses the attempts below
libc = ctypes.CDLL(None, use_errno=True)
result = {"environ": dict(os.environ)}

def attempt(name, action):
    try:
        value = action()
    except OSError as exc:
        result[name] = errno.errorcode.get(exc.errno, str(exc.errno))
    except ValueError as exc:  # what resource.setrlimit raises for EPERM
        result[name] = "EPERM" if "not allowed" in str(exc) else "allowed: " + str(exc)
    else:
        result[name] = "allowed: " + repr(value)[:200]

def read(path):
    with open(path, "rb") as file:
        return file.read()

def create(path):
    with open(path, "xb"):
        return path

def checked(value):
    if value != 0:
        raise OSError(ctypes.get_errno(), "call failed")
    return value

def fork():
    child = os.fork()
    if child == 0:
        os._exit(0)
    return child

def connect():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(("127.0.0.1", LISTENER))
        return "connected"

attempt("read_server_environ", lambda: read(f"/proc/{SERVER}/environ"))
attempt("read_server_cmdline", lambda: read(f"/proc/{SERVER}/cmdline"))
attempt("read_key_file", lambda: read(KEY_FILE))
attempt("read_database", lambda: read(DATABASE))
attempt("list_data_folder", lambda: os.listdir(DATA))
attempt("read_passwd", lambda: read("/etc/passwd"))
attempt("write_data_folder", lambda: create(DATA + "/planted.py"))
attempt("mkdir_data_folder", lambda: os.mkdir(DATA + "/planted"))
attempt("write_tmp", lambda: create("/tmp/see-sandbox-planted"))
attempt("overwrite_database", lambda: os.truncate(DATABASE, 0))
attempt("unlink_database", lambda: os.unlink(DATABASE))
attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
attempt("unix_socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
attempt("connect_loopback", connect)
attempt("signal_server", lambda: os.kill(SERVER, 0))
attempt("kill_server", lambda: os.kill(SERVER, signal.SIGKILL))
attempt("kill_process_group", lambda: os.killpg(os.getpgid(SERVER), signal.SIGKILL))
attempt("ptrace_server", lambda: checked(libc.ptrace(16, SERVER, 0, 0)))
attempt("fork", fork)
attempt("exec", lambda: os.execv("/bin/sh", ["sh", "-c", "true"]))
attempt("unshare_again", lambda: checked(libc.unshare(0x10000000)))
attempt("raise_cpu_limit", lambda: resource.setrlimit(resource.RLIMIT_CPU, (-1, -1)))
attempt("raise_open_files", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)))
attempt("temp_folder", lambda: create(os.environ["TMPDIR"] + "/scratch"))
"""


@dataclass
class FakeServer:
    pid: int
    listener: int
    data: Path
    key_file: Path
    database: Path


@pytest.fixture
def server() -> Iterator[FakeServer]:
    data = Path(tempfile.mkdtemp(prefix="see-fake-server-"))
    data.chmod(0o777)
    key_file, database = data / "api_key", data / "see.db"
    key_file.write_text(SECRET)
    database.write_bytes(b"SQLite format 3\x00" + SECRET.encode())
    for path in (key_file, database):
        path.chmod(0o666)
    env = {"API_KEY": SECRET, "SERVICE_API_KEY": SECRET, "DATABASE_URL": f"postgresql://see:{SECRET}@db/see"}
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=env)
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield FakeServer(process.pid, listener.getsockname()[1], data, key_file, database)
    finally:
        listener.close()
        process.kill()
        process.wait()
        for path in sorted(data.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        data.rmdir()


def _attack(server: FakeServer) -> tuple[dict[str, object], dict[str, str]]:
    constants = (
        f"SERVER = {server.pid}\nLISTENER = {server.listener}\nDATA = {str(server.data)!r}\n"
        f"KEY_FILE = {str(server.key_file)!r}\nDATABASE = {str(server.database)!r}\n"
    )
    reply, layers = run_unrestricted_for_tests(constants + ATTACKS, SandboxLimits(wall_seconds=60.0))
    assert reply.get("ok") is True, reply
    result = reply["result"]
    assert isinstance(result, dict)
    return result, layers


def _require_layers(layers: dict[str, str]) -> None:
    missing = [layer for layer in isolation.OS_LAYERS if layers.get(layer) != "active"]
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"CI machines allow every isolation layer; not active here: {missing} ({layers})")
    if len(missing) == len(isolation.OS_LAYERS):
        pytest.skip(f"this machine allows no OS isolation layer: {layers}")


def test_user_code_with_the_policy_off_cannot_reach_the_server(server: FakeServer) -> None:
    result, layers = _attack(server)
    _require_layers(layers)
    assert SECRET not in json.dumps(result), json.dumps(result, indent=1)
    environ = result["environ"]
    assert isinstance(environ, dict) and set(environ) <= WORKER_ENVIRONMENT
    refused = {name: outcome for name, outcome in result.items() if name not in ("environ", "temp_folder")}
    assert all(outcome in DENIED for outcome in refused.values()), refused
    assert result["temp_folder"] == "allowed: " + repr(environ["TMPDIR"] + "/scratch")


def test_the_server_and_its_files_are_untouched_after_the_attack(server: FakeServer) -> None:
    _attack(server)
    assert os.waitpid(server.pid, os.WNOHANG) == (0, 0)  # still running
    assert server.key_file.read_text() == SECRET
    assert server.database.read_bytes().endswith(SECRET.encode())
    assert sorted(p.name for p in server.data.iterdir()) == ["api_key", "see.db"]
    assert not Path("/tmp/see-sandbox-planted").exists()


def test_the_worker_is_pid_2_of_a_pid_namespace_of_its_own() -> None:
    reply, layers = run_unrestricted_for_tests("import os\nresult = [os.getpid(), os.getppid()]\n")
    _require_layers(layers)
    if layers.get("pid_ns") != "active":
        pytest.skip(f"no PID namespace here: {layers}")
    assert reply["result"] == [2, 1]  # the worker proper under the namespace's init: no server process to name


def test_the_worker_runs_below_the_servers_priority() -> None:
    reply, _ = run_unrestricted_for_tests("import os\nresult = os.getpriority(os.PRIO_PROCESS, 0)\n")
    assert reply["result"] == max(os.getpriority(os.PRIO_PROCESS, 0), WORKER_NICENESS)


def test_a_worker_runs_only_the_strategy_it_was_started_for() -> None:
    pool = SandboxPool(size=1, limits=SandboxLimits(cpu_seconds=5, wall_seconds=30.0))
    try:
        pool.load(SMA_CROSS, {})
        first = set(pool._idle)
        other = SMA_CROSS.replace("SMA cross (user code)", "another strategy")
        pool.load(other, {})
        assert len(pool._idle) == 2 and first < set(pool._idle)  # a second worker, not the first one reused
    finally:
        pool.close()


def test_a_worker_is_not_reused_after_an_error() -> None:
    pool = SandboxPool(size=1, limits=SandboxLimits(cpu_seconds=5, wall_seconds=30.0))
    try:
        pool.load(SMA_CROSS, {})
        (worker,) = pool._idle
        with pytest.raises(Exception, match="fast_period"):
            pool.load(SMA_CROSS, {"fast_period": "not a number"})
        assert worker not in pool._idle and worker not in pool._started
        pool.load(SMA_CROSS, {})
        assert worker not in pool._idle
    finally:
        pool.close()


def test_a_forbidden_system_call_ends_the_worker() -> None:
    code = "import ctypes\nctypes.CDLL(None).syscall(0x40000000 | 39)\nresult = 'still running'\n"  # x32 getpid
    reply, layers = run_unrestricted_for_tests(code)
    if layers.get("seccomp") != "active":
        pytest.skip(f"no seccomp here: {layers}")
    assert reply == {
        "ok": False,
        "kind": "died",
        "message": "it made a system call the sandbox forbids and was stopped",
    }


def test_the_isolation_probe_runs_once_for_concurrent_callers() -> None:
    """Single-flight: callers that ask at once, before the probe has finished, share the one probe and its result."""
    pool = SandboxPool(size=1)
    barrier = threading.Barrier(8)

    def ask() -> Future[dict[str, str]]:
        barrier.wait()
        return pool.probe_isolation()

    with ThreadPoolExecutor(max_workers=8) as callers:
        probes = list(callers.map(lambda _: ask(), range(8)))
    assert all(probe is probes[0] for probe in probes)
    assert pool.isolation_report() == probes[0].result(timeout=120)
    assert set(pool.isolation_report()) == set(isolation.OS_LAYERS)
    pool.close()
