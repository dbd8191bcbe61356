"""Every shell and Python example of README.md and docs/ runs, in order, against a real server, as a reader runs it.

Each document's `bash` and `python` blocks run in one bash session (so `KEY=...` of one block is there in the
next), in a fresh folder where a fresh `python -m see_grpc` keeps its data (so `cat data/api_key` works, as after
`make run`), with `.venv` linked to the project's and `.venv/bin` on PATH. Two things differ from a reader's
machine, both made explicit here: the server listens on free ports, written over `localhost:8003` and
`localhost:50051` in the examples (and SEE_TARGET for `see`), and a block may be preceded by a directive comment:

    <!-- doc-test: skip (why) -->         not run (it starts a server or runs this suite); the reason is required
    <!-- doc-test: file NAME -->          not run: written to NAME, for the blocks after it to use

A block fails the test if a command fails (`set -e`), if anything prints a Python traceback, or if an answer is a
grpc-gateway error body (`{"code": N, "message": ...}`).
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import server_process

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"bash", "sh", "shell", "python"}
DOC_SECONDS = 900.0  # a document's examples on a loaded machine (backtests, an execution that replays 25 s)

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_DIRECTIVE = re.compile(r"<!--\s*doc-test:\s*(skip|file)\s*(.*?)\s*-->\s*$")
_ERROR_BODY = re.compile(r'\{"code": ?\d+, ?"message"')


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    text: str
    directive: str = ""
    argument: str = ""

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def blocks_of(document: Path) -> list[Block]:
    text = document.read_text()
    found = []
    for match in _FENCE.finditer(text):
        language = match.group(1).lower()
        if language not in RUNNABLE:
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        directive = _DIRECTIVE.search(before)
        line = text.count("\n", 0, match.start()) + 1
        kind, argument = directive.groups() if directive else ("", "")
        found.append(Block(document, line, language, match.group(2), kind, argument))
    return found


def script_for(blocks: list[Block], folder: Path, http_port: int, grpc_port: int) -> str:
    """One bash script: each block announced on stderr, Python blocks as files run by the venv's python."""
    lines = ["set -e"]
    for number, block in enumerate(blocks):
        text = block.text.replace("localhost:8003", f"127.0.0.1:{http_port}")
        text = text.replace("localhost:50051", f"127.0.0.1:{grpc_port}")
        if block.directive == "file":
            (folder / block.argument).write_text(text)
            continue
        if block.directive == "skip":
            continue
        lines.append(f"echo {shlex.quote('=== ' + block.name)} >&2")
        if block.language == "python":
            path = folder / f"example_{number}.py"
            path.write_text(text)
            lines.append(f"python {shlex.quote(path.name)}")
        else:
            lines.append(text)
    return "\n".join(lines) + "\n"


def test_every_directive_is_well_formed() -> None:
    for document in DOCUMENTS:
        for block in blocks_of(document):
            if block.directive == "skip":
                assert block.argument.startswith("(") and len(block.argument) > 4, f"{block.name}: skip needs (why)"
            if block.directive == "file":
                assert re.fullmatch(r"[\w.-]+", block.argument), f"{block.name}: file needs a plain name"


@pytest.mark.parametrize(
    "document",
    [d for d in DOCUMENTS if any(not b.directive for b in blocks_of(d))],
    ids=lambda d: str(d.relative_to(ROOT)),
)
async def test_the_examples_of_the_document_run(document: Path, tmp_path: Path) -> None:
    folder = tmp_path / "reader"
    folder.mkdir()
    (folder / ".venv").symlink_to(Path(sys.prefix))
    async with server_process(folder, API_KEY="") as server:  # no API_KEY: the server writes data/api_key
        script = script_for(blocks_of(document), folder, server.http_port, server.grpc_port)
        env = {k: v for k, v in os.environ.items() if k not in ("SEE_API_KEY", "API_KEY", "SEE_TARGET")}
        env["PATH"] = f"{Path(sys.prefix) / 'bin'}:{env.get('PATH', '')}"
        env["SEE_TARGET"] = f"127.0.0.1:{server.grpc_port}"
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", script, cwd=folder, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), DOC_SECONDS)
    out, err = out_bytes.decode(errors="replace"), err_bytes.decode(errors="replace")
    last_block = ([line for line in err.splitlines() if line.startswith("=== ")] or ["(before any block)"])[-1]
    report = f"{last_block}\n--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}"
    assert process.returncode == 0, f"an example failed in {report}"
    assert "Traceback" not in out + err, report
    assert not _ERROR_BODY.search(out), f"an example got an error answer in {report}"
