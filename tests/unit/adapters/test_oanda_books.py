"""books.py: an execution's fills and positions told apart in v20 transactions written by hand from v20's shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from see_grpc.adapters.oanda.books import parse_entry, tagged_fills, tagged_positions
from see_grpc.adapters.oanda.wire import MalformedMessageError, client_id
from see_grpc.trading.reconciliation import TaggedPosition

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 3, 10, tzinfo=UTC)
SEE_ORDER = "ex1:EUR/USD:2025-03-03T10:00:00+00:00"


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _order(order_id: str, extensions: dict[str, str] | None = None) -> dict[str, Any]:
    return {"id": order_id, "type": "MARKET_ORDER", "time": _at(int(order_id)), "instrument": "EUR_USD"} | (
        {"clientExtensions": extensions} if extensions else {}
    )


def _fill(fill_id: str, order_id: str, units: str, price: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": fill_id,
        "type": "ORDER_FILL",
        "time": _at(int(fill_id)),
        "orderID": order_id,
        "instrument": "EUR_USD",
        "units": units,
        "fullVWAP": price,
        "commission": "1.0000",
        "reason": "MARKET_ORDER",
    } | fields


SEE = {"id": client_id(SEE_ORDER), "tag": "ex1", "comment": SEE_ORDER}


def _history() -> list[dict[str, Any]]:
    return [
        _order("1", SEE),  # SEE's order: opens trade 2 under ex1
        _fill("2", "1", "1000", "1.10000", tradeOpened={"tradeID": "2", "units": "1000", "price": "1.10000"}),
        _order("3", {"id": "my-own-tool", "tag": "desk"}),  # someone else's order on the account: trade 4
        _fill("4", "3", "500", "1.10010", tradeOpened={"tradeID": "4", "units": "500", "price": "1.10010"}),
        _order("5"),  # OANDA's margin closeout of 1,200: all of trade 2, 200 of trade 4
        _fill(
            "6",
            "5",
            "-1200",
            "1.09000",
            reason="MARKET_ORDER_MARGIN_CLOSEOUT",
            # TradeReduce units written unsigned here: the direction comes from the trade, whatever sign v20 sends.
            tradesClosed=[{"tradeID": "2", "units": "1000", "price": "1.09000"}],
            tradeReduced={"tradeID": "4", "units": "-200", "price": "1.09000"},
        ),
    ]


def _entries(transactions: list[dict[str, Any]]) -> list[Any]:
    return [entry for t in transactions if (entry := parse_entry(t)) is not None]


def test_own_fills_carry_see_s_id_and_a_closeout_counts_for_the_tag_s_share_only() -> None:
    [own, closeout] = tagged_fills(_entries(_history()), "ex1", None)
    assert (own.client_order_id, own.units, own.price, own.commission) == (SEE_ORDER, 1000, 1.1, 1.0)
    assert (closeout.fill_id, closeout.client_order_id, closeout.units) == ("6", "", -1000)
    assert (closeout.price, closeout.reason) == (1.09, "MARKET_ORDER_MARGIN_CLOSEOUT")
    assert closeout.commission == pytest.approx(1000 / 1200)  # its share of the fill's commission
    assert tagged_fills(_entries(_history()), "desk", None) == []  # only SEE's orders are its own by tag
    later = tagged_fills(_entries(_history()), "ex1", T0 + timedelta(minutes=2))  # `after` is exclusive
    assert [f.fill_id for f in later] == ["6"]


def test_an_order_under_the_tag_whose_comment_does_not_hash_to_its_id_is_malformed() -> None:
    with pytest.raises(MalformedMessageError, match="do not match its id"):
        parse_entry(_order("1", {**SEE, "comment": SEE_ORDER + ":edited"}))


def test_positions_sum_the_tag_s_open_trades_per_instrument() -> None:
    def trade(units: str, price: str, tag: str, instrument: str = "EUR_USD") -> dict[str, Any]:
        return {"instrument": instrument, "currentUnits": units, "price": price, "clientExtensions": {"tag": tag}}

    trades = [
        trade("1000", "1.1000", "ex1"),
        trade("3000", "1.2000", "ex1"),
        trade("-50", "150.00", "ex1", "USD_JPY"),
        trade("-10", "151.00", "ex1", "USD_JPY"),
        trade("999", "1.3000", "ex2"),
        {"instrument": "EUR_USD", "currentUnits": "7", "price": "1.0"},  # no extensions: not SEE's
    ]
    held = tagged_positions(trades, "ex1")
    assert [(p.instrument, p.units) for p in held] == [("EUR/USD", 4000), ("USD/JPY", -60)]
    averages = [p.average_price for p in held]
    assert averages == pytest.approx([(1000 * 1.1 + 3000 * 1.2) / 4000, (50 * 150 + 10 * 151) / 60])
    hedged = [trade("1000", "1.1000", "ex1"), trade("-400", "1.2000", "ex1")]  # a hedging account: both sides
    assert tagged_positions(hedged, "ex1") == [TaggedPosition("EUR/USD", 600, None)]
