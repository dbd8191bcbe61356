from __future__ import annotations

import pytest

from see_grpc.service.executions import in_account_currency
from see_grpc.trading.portfolio import PositionState

pytestmark = pytest.mark.unit


def test_quote_currency_amounts_in_dollars() -> None:
    assert in_account_currency("EUR/USD", 125.0, 1.10) == 125.0
    assert in_account_currency("USD/JPY", 15_000.0, 150.0) == pytest.approx(100.0)
    assert in_account_currency("EUR/GBP", 80.0, 0.85) == 80.0  # no USD leg: left in GBP (documented)


def test_positions_reduce_extend_and_reverse_at_the_right_average_price() -> None:
    position = PositionState()
    position.apply_fill(10_000, 1.1000)
    position.apply_fill(10_000, 1.1010)
    assert position.units == 20_000 and position.average_price == pytest.approx(1.1005)
    position.apply_fill(-5_000, 1.1025)  # partial close: 5,000 x 0.0020 realised
    assert position.realized_pnl == pytest.approx(10.0) and position.average_price == pytest.approx(1.1005)
    position.apply_fill(-25_000, 1.1005)  # reverse: the rest closes flat, 10,000 short opens at 1.1005
    assert position.units == -10_000 and position.average_price == pytest.approx(1.1005)
    assert position.realized_pnl == pytest.approx(10.0)
    assert position.unrealized_pnl(bid=1.0990, ask=1.0995) == pytest.approx(10_000 * (1.1005 - 1.0995))
