"""Which server the command talks to, with which key, and how its failures reach the person at the terminal.

A failed call prints the server's status and message (and its field violations) on stderr and exits with the gRPC
status code as the exit code (NOT_FOUND 5, INVALID_ARGUMENT 3, UNAUTHENTICATED 16, UNAVAILABLE 14 ...), never a
traceback. Ctrl-C exits 130.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import grpc
import typer
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.console import Console

from see_grpc.adapters.secrets import KEY_FILE_NAME
from see_grpc.client import SeeClient

DEFAULT_TARGET = "127.0.0.1:50051"
# Backtest answers are bounded to well under 4 MB; the margin covers a large optimization's leaderboard.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
INTERRUPTED = 130
PIPE_CLOSED = 141  # as a process ended by SIGPIPE, the way `yes | head` ends

errors = Console(stderr=True, highlight=False)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Connection:
    """The server and credentials given by the global options, shared by every command of one invocation."""

    target: str
    api_key: str
    key_source: str
    timeout: float

    def client(self) -> SeeClient:
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        return SeeClient(self.target, self.api_key, default_timeout=self.timeout, options=options)


def find_api_key(given: str | None, key_file: Path | None) -> tuple[str, str]:
    """The key and where it came from: --api-key or SEE_API_KEY, else the key file a local server wrote."""
    if given:
        return _header_safe(given.strip(), "SEE_API_KEY"), "SEE_API_KEY"
    path = key_file or Path(os.environ.get("DATA_DIR", "data")) / KEY_FILE_NAME
    try:
        return _header_safe(path.read_text().strip(), str(path)), str(path)
    except (OSError, UnicodeDecodeError):
        return "", f"nowhere (SEE_API_KEY is unset and {path} cannot be read)"


def _header_safe(key: str, source: str) -> str:
    """A key travels as a header value: printable ASCII only (a newline or a Cyrillic letter cannot be sent)."""
    if not all(" " <= char <= "~" for char in key):
        usage_error(f"the API key from {source} holds characters a header cannot carry (printable ASCII only)")
    return key


def main_guarded(app: Callable[[], object]) -> None:
    """Ctrl-C before any call (imports take a while) or a closed pipe after the last one: no traceback."""
    try:
        app()
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(INTERRUPTED)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(PIPE_CLOSED)


def run(connection: Connection, work: Callable[[SeeClient], Awaitable[_T]]) -> _T:
    """Run one command's calls on a fresh client, turning gRPC failures into a message and an exit code."""

    async def call() -> _T:
        async with connection.client() as client:
            return await work(client)

    try:
        return asyncio.run(call())
    except grpc.aio.AioRpcError as error:
        fail_with(error, connection)
    except KeyboardInterrupt:
        errors.print("interrupted")
        raise typer.Exit(INTERRUPTED) from None
    except BrokenPipeError:  # `see fills --follow ID | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error while exiting
        raise typer.Exit(PIPE_CLOSED) from None


def fail_with(error: grpc.aio.AioRpcError, connection: Connection) -> NoReturn:
    code = error.code()
    message = error.details() or "no message"
    lines = [f"error: {code.name}: {message}"]
    lines += [f"  {line}" for line in _violations(error) if line not in message]
    lines += [hint] if (hint := _hint(code, connection)) else []
    for line in lines:
        errors.print(line, markup=False, soft_wrap=True)
    raise typer.Exit(code.value[0])


def _violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    lines: list[str] = []
    for detail in status.details if status is not None else ():
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            lines += [f"{v.field}: {v.description}" for v in request.field_violations]
    return lines


def _hint(code: grpc.StatusCode, connection: Connection) -> str:
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"the API key came from {connection.key_source}; set SEE_API_KEY or --key-file"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"is the SEE server running at {connection.target}? (--target or SEE_TARGET)"
    return ""


def invalid_input(message: str) -> NoReturn:
    """A file the command reads is wrong: said as the server would say it (INVALID_ARGUMENT, exit 3)."""
    errors.print(f"error: {grpc.StatusCode.INVALID_ARGUMENT.name}: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(grpc.StatusCode.INVALID_ARGUMENT.value[0])


def usage_error(message: str) -> NoReturn:
    """A mistake in the command's own arguments, found before anything is sent: exit 2, as for bad options."""
    raise typer.BadParameter(message)
