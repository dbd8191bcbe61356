"""Where the machine allows no OS isolation layer, user code is refused unless the operator opts in.

The "machine" is a server process under a seccomp filter like a locked-down container's: no unshare, no Landlock,
no seccomp of its own, no change of user. Its workers inherit the filter, so every layer really fails.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.unit.sandbox.conftest import SMA_CROSS

SERVER = r"""
import errno, json, sys
import pyseccomp as seccomp

locked = seccomp.SyscallFilter(seccomp.ALLOW)
for name in ("unshare", "setns", "landlock_create_ruleset", "seccomp", "setresuid", "setresgid", "setuid",
             "setgid", "setgroups"):
    locked.add_rule(seccomp.ERRNO(errno.EPERM), name)
locked.add_rule(seccomp.ERRNO(errno.EPERM), "prctl", seccomp.Arg(0, seccomp.EQ, 22))  # PR_SET_SECCOMP
locked.load()

from see_grpc.errors import FailedPreconditionError
from see_grpc.sandbox.pool import SandboxLimits, SandboxPool

code, allow = sys.stdin.read(), sys.argv[1] == "allow"
pool = SandboxPool(size=1, limits=SandboxLimits(cpu_seconds=10, wall_seconds=60.0), allow_unisolated=allow)
outcome = {"report": pool.isolation_report()}
try:
    outcome["loaded"] = pool.load(code, {}).name
except FailedPreconditionError as exc:
    outcome["refused"] = exc.message
try:
    outcome["summary"] = pool.isolation_summary()
except FailedPreconditionError as exc:
    outcome["summary_error"] = exc.message
pool.close()
print(json.dumps(outcome))
"""


def _run(allow: bool) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SERVER, "allow" if allow else "refuse"],
        input=SMA_CROSS, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    outcome = json.loads(done.stdout)
    assert isinstance(outcome, dict)
    return outcome


def test_user_code_is_refused_where_no_layer_is_allowed() -> None:
    outcome = _run(allow=False)
    report = outcome["report"]
    assert isinstance(report, dict)
    assert all(state.startswith(("unavailable", "not needed")) for state in report.values()), report
    refused = str(outcome.get("refused"))
    assert "allows none of the sandbox's operating-system isolation layers" in refused
    assert "SANDBOX_ALLOW_UNISOLATED=true" in refused and "docs/security.md" in refused
    assert "loaded" not in outcome
    assert "allows none" in str(outcome["summary_error"])


def test_the_operator_can_opt_in_to_the_python_policy_alone() -> None:
    outcome = _run(allow=True)
    if "refused" in outcome:
        pytest.fail(f"refused although SANDBOX_ALLOW_UNISOLATED was set: {outcome}")
    assert outcome["loaded"] == "SMA cross (user code)"
