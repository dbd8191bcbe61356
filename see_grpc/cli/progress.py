"""Progress bars on stderr, so stdout stays the command's answer."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text


def compact(number: float) -> str:
    """1,234 -> 1,234; 560,000 -> 560k; 2,000,000 -> 2.0M: short enough for an 80-column terminal."""
    if number >= 1e6:
        return f"{number / 1e6:.1f}M"
    if number >= 1e5:
        return f"{number / 1e3:.0f}k"
    return f"{number:,.0f}"


class DoneColumn(ProgressColumn):
    """`560k/2.0M bars`, or `560k bars` while the total is unknown."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self._unit = unit

    def render(self, task: Task) -> Text:
        total = f"/{compact(task.total)}" if task.total is not None else ""
        return Text(f"{compact(task.completed)}{total} {self._unit}", style="progress.download")


class RateColumn(ProgressColumn):
    """Items a second, e.g. `1.2M bars/s`, from Rich's moving estimate."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self._unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{compact(speed)} {self._unit}/s", style="progress.data.speed")


def progress_bar(unit: str) -> Progress:
    """What is running, done of total, rate, elapsed and time left (ETA)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(bar_width=24),
        DoneColumn(unit),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,  # gone when the work ends or fails: the summary or the error is what stays
    )
