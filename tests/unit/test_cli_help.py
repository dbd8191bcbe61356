"""`see --help` and every command's help are complete: each exits 0 and names every option the command takes."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from see_grpc.cli.app import app

pytestmark = pytest.mark.unit

EXPECTED = {
    "strategies list", "strategies show", "strategies register", "strategies pause", "strategies archive",
    "strategies activate", "strategies delete", "backtest", "backtests list", "backtests show", "backtests report",
    "optimize", "optimizations list", "optimizations show", "optimizations cancel", "executions start",
    "executions list", "executions show", "executions stop", "executions pause", "executions resume", "fills",
    "signals", "bars import", "trades", "equity", "health",
}  # fmt: skip


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every leaf command under a group (Typer's commands and groups, duck-typed: Typer vendors its click)."""
    found: dict[tuple[str, ...], Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found |= _commands(command, (*prefix, name))
        else:
            found[(*prefix, name)] = command
    return found


COMMANDS = _commands(typer.main.get_group(app))


def test_every_command_of_the_contract_and_the_issue_exists() -> None:
    assert {" ".join(path) for path in COMMANDS} == EXPECTED


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_each_command_explains_itself_and_every_option(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    command = COMMANDS[path]
    assert command.help, f"{' '.join(path)} has no help text"
    options = [p for p in command.params if p.param_type_name == "option" and p.name != "help"]
    for option in options:
        assert option.help, f"{' '.join(path)} {option.opts[0]} has no help text"
        assert option.opts[0] in result.output
    assert "--json" in result.output  # every command, for scripts


def test_the_top_level_help_lists_the_groups_and_how_the_key_is_found() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("strategies", "backtest", "optimize", "executions", "fills", "signals", "bars", "trades"):
        assert name in result.output
    assert "SEE_API_KEY" in result.output
