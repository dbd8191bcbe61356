"""Parameter validation of the strategy contract."""

from __future__ import annotations

import pytest

from see_grpc.errors import StrategyConfigurationError
from see_grpc.trading.strategies import BUILTIN_STRATEGIES, ParamSpec

pytestmark = pytest.mark.unit

TREND = BUILTIN_STRATEGIES["trend_following_v1"]
MEAN_REVERSION = BUILTIN_STRATEGIES["mean_reversion_v1"]
ML = BUILTIN_STRATEGIES["ml_enhanced_v1"]


def test_defaults_are_the_contract_values() -> None:
    assert TREND.validate_parameters({}) == {"fast_period": 12, "slow_period": 26}
    assert MEAN_REVERSION.validate_parameters({}) == {
        "lookback_period": 20,
        "entry_threshold": 2.0,
        "exit_threshold": 0.5,
    }


def test_overrides_merge_and_json_doubles_become_ints() -> None:
    params = TREND.validate_parameters({"fast_period": 10.0})
    assert params == {"fast_period": 10, "slow_period": 26}
    assert type(params["fast_period"]) is int


def test_int_is_accepted_for_a_float() -> None:
    params = MEAN_REVERSION.validate_parameters({"entry_threshold": 3})
    assert params["entry_threshold"] == 3.0
    assert type(params["entry_threshold"]) is float


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fast": 5}, "no parameter 'fast'"),
        ({"fast_period": True}, "'fast_period' must be an integer"),
        ({"fast_period": 12.5}, "'fast_period' must be an integer"),
        ({"fast_period": "12"}, "'fast_period' must be an integer"),
        ({"fast_period": 1}, "'fast_period' is 1; it must be >= 2"),
        ({"slow_period": 5000}, "'slow_period' is 5000; it must be <= 2000"),
        ({"fast_period": 30}, "'fast_period' \\(30\\) must be smaller than 'slow_period' \\(26\\)"),
        ({"fast_period": 26}, "must be smaller than"),
    ],
)
def test_trend_rejections_name_the_parameter(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(StrategyConfigurationError, match=message):
        TREND.validate_parameters(overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"entry_threshold": False}, "'entry_threshold' must be a finite number"),
        ({"entry_threshold": float("nan")}, "'entry_threshold' must be a finite number"),
        ({"exit_threshold": 2.5}, "'exit_threshold' \\(2.5\\) must be smaller than 'entry_threshold'"),
    ],
)
def test_mean_reversion_rejections(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(StrategyConfigurationError, match=message):
        MEAN_REVERSION.validate_parameters(overrides)


def test_choice_and_bool_parameters() -> None:
    assert ML.validate_parameters({"model": "gradient_boosting"})["model"] == "gradient_boosting"
    with pytest.raises(StrategyConfigurationError, match="'model' is 'svm'; choose one of"):
        ML.validate_parameters({"model": "svm"})
    flag = ParamSpec("use_filter", "bool", False)
    assert flag.coerce(True) is True
    with pytest.raises(StrategyConfigurationError, match="'use_filter' must be true or false"):
        flag.coerce(1)
