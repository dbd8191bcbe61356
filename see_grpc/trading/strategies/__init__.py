"""Built-in strategies and the strategy contract."""

from __future__ import annotations

from see_grpc.trading.strategies.base import BaseStrategy, ParamSpec
from see_grpc.trading.strategies.breakout import BreakoutV1
from see_grpc.trading.strategies.causal import CausalEnhancedV2
from see_grpc.trading.strategies.mean_reversion import MeanReversionV1
from see_grpc.trading.strategies.ml import MLEnhancedV1
from see_grpc.trading.strategies.trend import TrendFollowingV1

BUILTIN_STRATEGIES: dict[str, type[BaseStrategy]] = {
    cls.id: cls for cls in (TrendFollowingV1, MeanReversionV1, BreakoutV1, CausalEnhancedV2, MLEnhancedV1)
}

__all__ = ["BUILTIN_STRATEGIES", "BaseStrategy", "ParamSpec"]
