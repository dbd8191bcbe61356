"""First-start sample data: synthetic hourly bars so backtests work before real data is added."""

from __future__ import annotations

from pathlib import Path

from see_grpc.adapters.bars.store import (
    SUFFIXES,
    read_synthetic_names,
    write_parquet_atomically,
    write_synthetic_marker,
)
from see_grpc.trading.instruments import parse_instrument
from see_grpc.trading.synthetic import CROSSES, USD_PAIRS, synthetic_hourly

SAMPLE_PAIRS = (*USD_PAIRS, *CROSSES)


def ensure_sample_data(data_dir: Path) -> list[Path]:
    """Write `<PAIR>_1h.parquet` for each sample pair that has no file at all yet; returns the files written.

    The files are listed in a marker so loads report them as synthetic; real files are never overwritten.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = {path.name.rsplit("_", 1)[0] for path in data_dir.iterdir() if path.suffix in SUFFIXES}
    missing = [s for s in SAMPLE_PAIRS if parse_instrument(s).file_stem not in existing]
    if not missing:
        return []
    generated = synthetic_hourly()
    written: list[Path] = []
    for symbol in missing:
        bars = generated[symbol]
        target = data_dir / f"{parse_instrument(symbol).file_stem}_1h.parquet"
        write_parquet_atomically(bars, target)
        written.append(target)
    if written:
        write_synthetic_marker(data_dir, read_synthetic_names(data_dir) | {path.name for path in written})
    return written
