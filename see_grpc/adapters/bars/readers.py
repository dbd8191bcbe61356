"""Bar files to a clean DataFrame: lower-case columns, float prices, UTC DatetimeIndex (ns)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from see_grpc.errors import BacktestDataError

TIME_COLUMNS = ("time", "timestamp", "date", "datetime", "gmt time")
_OPTIONAL = re.compile(r"^(volume|spread|(bid|ask)_(open|high|low|close))$")
_HISTDATA_LINE = re.compile(r"^\d{8} \d{6};")
_DUKASCOPY_TIME = re.compile(r"^\d{2}\.\d{2}\.\d{4} ")
HISTDATA_ZONE = "Etc/GMT+5"  # HistData.com stamps EST all year (UTC-5, no daylight saving)
DUKASCOPY_FORMAT = "%d.%m.%Y %H:%M:%S.%f"


def read_bar_file(path: Path) -> pd.DataFrame:
    """Read a .csv or .parquet bar file per the data contract; HistData ASCII files are recognised by content."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        if isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.rename_axis("time").reset_index()
        return normalise(frame, path.name)
    if _HISTDATA_LINE.match(_first_line(path)):
        return read_histdata(path)
    return normalise(pd.read_csv(path), path.name)


def read_histdata(path: Path) -> pd.DataFrame:
    """HistData.com ASCII M1: `YYYYMMDD HHMMSS;open;high;low;close;volume`, no header, times EST (UTC-5)."""
    frame = pd.read_csv(path, sep=";", header=None, names=["time", "open", "high", "low", "close", "volume"])
    times = _parse(frame["time"], path.name, "%Y%m%d %H%M%S")
    frame["time"] = times.dt.tz_localize(HISTDATA_ZONE).dt.tz_convert("UTC")
    return normalise(frame, path.name)


def read_dukascopy(path: Path) -> pd.DataFrame:
    """Dukascopy CSV export: `Gmt time,Open,High,Low,Close,Volume` with `dd.mm.yyyy HH:MM:SS.000` in UTC."""
    return normalise(pd.read_csv(path), path.name)


def normalise(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Index by the time column (naive times are UTC) and keep the contract's price columns as floats."""
    frame = frame.rename(columns=lambda name: str(name).strip().lower())
    time_column = _time_column(frame, source)
    index = pd.DatetimeIndex(_to_utc(frame[time_column], source)).as_unit("ns").rename("time")
    keep = [c for c in frame.columns if c in ("open", "high", "low", "close") or _OPTIONAL.match(c)]
    return _numeric(frame[keep], source).set_axis(index, axis=0)


def _numeric(columns: pd.DataFrame, source: str) -> pd.DataFrame:
    """Float columns; text that is not a number is an error naming its row and column (empty cells stay NaN)."""
    numbers: pd.DataFrame = columns.apply(pd.to_numeric, errors="coerce").astype("float64")
    bad = (numbers.isna() & columns.notna()).to_numpy()
    if bad.any():
        row, column = (int(i[0]) for i in bad.nonzero())
        raise BacktestDataError(
            f"{source}: row {row + 1} column '{columns.columns[column]}' holds {columns.iat[row, column]!r}, "
            "which is not a number."
        )
    return numbers


def _time_column(frame: pd.DataFrame, source: str) -> str:
    for name in TIME_COLUMNS:
        if name in frame.columns:
            return name
    first = str(frame.columns[0]) if len(frame.columns) else ""
    if first in ("", "unnamed: 0"):
        return first
    raise BacktestDataError(
        f"{source}: no time column; name it one of {', '.join(TIME_COLUMNS)} or leave the first column unnamed."
    )


def _to_utc(values: pd.Series, source: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return pd.Series(values.dt.tz_convert("UTC"))
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return pd.Series(values.dt.tz_localize("UTC"))
    text = values.astype(str)
    dayfirst = bool(len(text)) and _DUKASCOPY_TIME.match(text.iloc[0]) is not None
    return _parse(text, source, DUKASCOPY_FORMAT if dayfirst else "ISO8601", utc=True)


def _parse(values: pd.Series, source: str, time_format: str, *, utc: bool = False) -> pd.Series:
    """Parse times, naming the first row that does not parse."""
    times = pd.to_datetime(values.astype(str), format=time_format, errors="coerce", utc=utc)
    bad = times.isna().to_numpy().nonzero()[0]
    if bad.size:
        row = int(bad[0])
        raise BacktestDataError(f"{source}: row {row + 1} has a time that cannot be read: {values.iloc[row]!r}.")
    return times


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return handle.readline()
