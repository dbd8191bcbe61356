"""`python -m see_grpc --help` lists the server's environment options and exits without serving."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_options_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "see_grpc", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:3] == ["PORT", "default:", "8003"] for line in lines if line.strip())
    assert any(line.split()[:3] == ["GRPC_PORT", "default:", "50051"] for line in lines if line.strip())


def test_unknown_argument_exits_two() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "see_grpc", "--bogus"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "usage: python -m see_grpc" in done.stderr
