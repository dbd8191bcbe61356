"""A store whose folder is still being prepared (a first start writes the sample set in the background, so start-up
does not wait for it): its reads and writes wait for that work, and fail as it did."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from see_grpc.adapters.bars import FileBarStore
from tests.unit.bars.test_bar_paths import CSV, _bars

pytestmark = pytest.mark.unit

START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)


def test_a_load_waits_for_the_folder_to_be_ready(tmp_path: Path) -> None:
    ready: Future[object] = Future()
    store = FileBarStore(tmp_path, ready=ready)
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(store.load, "EUR/USD", "1h", START, END)
        # The file appears only now: a load that did not wait would have found no EUR/USD data.
        (tmp_path / "EUR_USD_1h.csv").write_text(CSV)
        ready.set_result(None)
        loaded = loading.result(timeout=60)
    assert list(loaded.bars["close"]) == [1.0, 1.0]


@pytest.mark.parametrize(
    "use",
    [
        pytest.param(lambda store: store.load("EUR/USD", "1h", START, END), id="load"),
        pytest.param(lambda store: store.save("EUR/USD", "1h", _bars()), id="save"),
        pytest.param(lambda store: store.swap_rates("EUR/USD"), id="swap_rates"),
        pytest.param(lambda store: store.available(), id="available"),
    ],
)
def test_a_failed_preparation_fails_every_use(tmp_path: Path, use: Callable[[FileBarStore], object]) -> None:
    ready: Future[object] = Future()
    ready.set_exception(OSError("No space left on device"))
    with pytest.raises(OSError, match="No space left"):
        use(FileBarStore(tmp_path, ready=ready))
    assert list(tmp_path.iterdir()) == []  # nothing written either
