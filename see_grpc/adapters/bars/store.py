"""Bar files in BACKTEST_DATA_DIR: `<BASE>_<QUOTE>_<timeframe>.csv|.parquet`.

No request text reaches a path: instrument and timeframe are parsed into known values first, every file name is
built from those, and every path is resolved and refused unless it stays inside the data folder (a link may not
lead out of it). Messages name files by their base name, never by the server's folder.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import Future, wait
from datetime import datetime
from pathlib import Path

import pandas as pd

from see_grpc.adapters.bars.readers import read_bar_file
from see_grpc.errors import BacktestConfigError, BacktestDataError, InvalidArgumentError
from see_grpc.service.ports import LoadedBars, SwapRates
from see_grpc.text import quoted
from see_grpc.trading.bars import can_resample, check_timeframe, resample_bars, validate_bars
from see_grpc.trading.instruments import TIMEFRAMES, Instrument, parse_instrument, parse_timeframe

SUFFIXES = (".parquet", ".csv")  # parquet first: uploads are written as parquet
SWAP_TABLE = "financing.csv"  # instrument,long_rate,short_rate: annual, positive paid, negative earned
SWAP_COLUMNS = ("instrument", "long_rate", "short_rate")
SYNTHETIC_MARKER = ".synthetic.json"
SYNTHETIC_SOURCE = "synthetic sample (generated, not market data)"
_CACHE_FILES = 4  # validated files kept in memory, so repeated runs (optimisation) skip parsing

logger = logging.getLogger(__name__)


class FileBarStore:
    """`ready`, when given, is work on the folder still under way (the sample set a first start writes in the
    background): every read and write waits for it, and fails as it did."""

    def __init__(self, data_dir: Path, ready: Future[object] | None = None) -> None:
        self.data_dir = data_dir
        self._ready = ready
        self._cache: OrderedDict[tuple[str, int, int], pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, instrument: str, timeframe: str, start: datetime | None, end: datetime) -> LoadedBars:
        """Bars with start <= time < end (start None: from the first); a missing timeframe is resampled from the
        coarsest finer file."""
        self._wait_ready()
        pair, timeframe = _parsed(instrument, timeframe)
        path, file_timeframe = self._locate(pair, timeframe)
        bars = self._read(path).loc[None if start is None else _utc(start) : _utc(end) - pd.Timedelta(1, "ns")]
        source = path.name
        if file_timeframe != timeframe:
            bars = resample_bars(bars, timeframe)
            source = f"{path.name} resampled to {timeframe}"
        if bars.empty:
            window = f"before {end.isoformat()}" if start is None else f"from {start.isoformat()} to {end.isoformat()}"
            raise BacktestDataError(f"{source} has no {pair.symbol} bars {window}; {self._coverage(path)}")
        synthetic = path.name in self._synthetic_names()
        return LoadedBars(bars, f"{SYNTHETIC_SOURCE}: {source}" if synthetic else source, synthetic)

    def save(self, instrument: str, timeframe: str, bars: pd.DataFrame) -> Path:
        """Merge uploaded bars into `<BASE>_<QUOTE>_<timeframe>.parquet` (new rows win), written atomically.

        Rows from a synthetic file are discarded rather than mixed with real data.
        """
        self._wait_ready()
        pair, timeframe = _parsed(instrument, timeframe)
        validate_bars(bars, f"uploaded {pair.symbol} {timeframe} bars")
        check_timeframe(bars, timeframe, f"uploaded {pair.symbol} {timeframe} bars")
        existing = self._existing(pair, timeframe)
        merged = bars if existing is None else pd.concat([existing, bars])
        merged = merged[~merged.index.duplicated(keep="last")].sort_index()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        target = self._inside(f"{pair.file_stem}_{timeframe}.parquet")
        write_parquet_atomically(merged, target)
        self._forget_synthetic(target.name)
        return target

    def available(self) -> list[str]:
        """Bar file names in the data folder."""
        self._wait_ready()
        if not self.data_dir.is_dir():
            return []
        return sorted(p.name for p in self.data_dir.iterdir() if p.suffix in SUFFIXES and p.name.count("_") == 2)

    def _wait_ready(self) -> None:
        if self._ready is not None:
            self._ready.result()

    def settled(self) -> None:
        """Returns once the folder's preparation has ended, whether or not it failed (on shutdown)."""
        if self._ready is not None:
            wait([self._ready])

    def _locate(self, pair: Instrument, timeframe: str) -> tuple[Path, str]:
        exact = self._file(pair, timeframe)
        if exact is not None:
            return exact, timeframe
        finer = [tf for tf in reversed(list(TIMEFRAMES)) if can_resample(tf, timeframe)]
        for candidate in finer:
            path = self._file(pair, candidate)
            if path is not None:
                return path, candidate
        present = ", ".join(self.available()) or "none"
        finer_hint = f" (or a finer timeframe such as {pair.file_stem}_1m.csv to resample)" if finer else ""
        raise BacktestDataError(
            f"No {pair.symbol} {timeframe} data in the data folder (BACKTEST_DATA_DIR): add "
            f"{pair.file_stem}_{timeframe}.csv or .parquet{finer_hint}. Files present: {present}."
        )

    def swap_rates(self, instrument: str) -> SwapRates | None:
        """The pair's row of financing.csv (checked whole: a bad row anywhere is an error naming it)."""
        self._wait_ready()
        path = self._inside(SWAP_TABLE)
        if not path.is_file():
            return None
        table = _swap_table(path)
        rates = table.get(parse_instrument(instrument).symbol)
        return None if rates is None else SwapRates(*rates, source=SWAP_TABLE)

    def _file(self, pair: Instrument, timeframe: str) -> Path | None:
        for suffix in SUFFIXES:
            path = self._inside(f"{pair.file_stem}_{timeframe}{suffix}")
            if path.is_file():
                return path
        return None

    def _inside(self, name: str) -> Path:
        """The data folder's file `name`, resolved; refused unless it stays inside the folder (links included)."""
        root = self.data_dir.resolve()
        candidate = root / name
        if "\0" in name or candidate.parent != root:
            raise InvalidArgumentError(f"{quoted(name)} is not a plain file name")
        resolved = candidate.resolve()
        if resolved == root or not resolved.is_relative_to(root):
            raise BacktestDataError(
                f"{name} leads outside the data folder (a link to elsewhere?); bar files must be inside it."
            )
        return candidate

    def _read(self, path: Path) -> pd.DataFrame:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            bars = read_bar_file(path)
        except (ValueError, OSError) as exc:  # parser and I/O errors name the full path: the log keeps it
            logger.warning("bar file %s cannot be read", path, exc_info=True)
            raise BacktestDataError(f"{path.name} cannot be read as a bar file ({type(exc).__name__}).") from exc
        validate_bars(bars, path.name)
        with self._lock:
            self._cache[key] = bars
            while len(self._cache) > _CACHE_FILES:
                self._cache.popitem(last=False)
        return bars

    def _existing(self, pair: Instrument, timeframe: str) -> pd.DataFrame | None:
        path = self._file(pair, timeframe)
        if path is None or path.name in self._synthetic_names():
            return None
        return self._read(path)

    def _coverage(self, path: Path) -> str:
        bars = self._read(path)
        return f"the file covers {bars.index[0].isoformat()} to {bars.index[-1].isoformat()}."

    def _synthetic_names(self) -> set[str]:
        return read_synthetic_names(self.data_dir)

    def _forget_synthetic(self, name: str) -> None:
        names = self._synthetic_names()
        if name in names:
            write_synthetic_marker(self.data_dir, names - {name})


def write_parquet_atomically(bars: pd.DataFrame, target: Path) -> None:
    """Write to a temporary file in the same (existing) folder, then rename: readers never see half a file."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        bars.rename_axis("time").to_parquet(temp_name)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def read_synthetic_names(data_dir: Path) -> set[str]:
    """Names of the files ensure_sample_data generated (and nobody replaced since)."""
    marker = data_dir / SYNTHETIC_MARKER
    return set(json.loads(marker.read_text())) if marker.is_file() else set()


def write_synthetic_marker(data_dir: Path, names: set[str]) -> None:
    (data_dir / SYNTHETIC_MARKER).write_text(json.dumps(sorted(names), indent=1))


def _parsed(instrument: str, timeframe: str) -> tuple[Instrument, str]:
    """The known pair and timeframe a request names, before any path is built from them."""
    try:
        return parse_instrument(instrument), parse_timeframe(timeframe)
    except InvalidArgumentError as exc:
        raise BacktestConfigError(exc.message) from exc


def _swap_table(path: Path) -> dict[str, tuple[float, float]]:
    frame = pd.read_csv(path, dtype=str).rename(columns=lambda name: str(name).strip().lower())
    missing = [column for column in SWAP_COLUMNS if column not in frame.columns]
    if missing:
        raise BacktestDataError(
            f"{SWAP_TABLE}: missing column(s) {', '.join(missing)}; it needs {', '.join(SWAP_COLUMNS)}"
        )
    table: dict[str, tuple[float, float]] = {}
    for row, (symbol, long_text, short_text) in enumerate(frame[list(SWAP_COLUMNS)].itertuples(index=False), 1):
        try:
            pair = parse_instrument(str(symbol)).symbol
            rates = float(long_text), float(short_text)
        except (InvalidArgumentError, ValueError) as exc:
            raise BacktestDataError(f"{SWAP_TABLE}: row {row} cannot be read ({exc})") from None
        if not all(-1 <= rate <= 1 for rate in rates):  # NaN fails too
            raise BacktestDataError(f"{SWAP_TABLE}: row {row} ({pair}) has a rate outside -1..1 (annual, 0.02 = 2 %)")
        if pair in table:
            raise BacktestDataError(f"{SWAP_TABLE}: row {row} repeats {pair}")
        table[pair] = rates
    return table


def _utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
