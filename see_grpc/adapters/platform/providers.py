"""What the ml_enhanced strategies take from platform services, fetched before they run, as extra bar columns.

Strategies are pure functions of their bars, so the caller (backtest or live runner) awaits
`StrategyDataProvider.extra_columns(...)` and joins the result to the bars before `target_positions`. With a
service URL unset the frame is empty and the strategy computes the same quantities itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pandas as pd

from see_grpc.adapters.platform.analysis_engine import AnalysisEngineClient
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.feature_store import FeatureStoreClient
from see_grpc.adapters.platform.series import SeriesRequest
from see_grpc.config import Settings
from see_grpc.trading.features import FEATURE_PREFIX, feature_names
from see_grpc.trading.strategies.base import int_param
from see_grpc.trading.strategies.causal import ATR_COLUMN, REGIME_COLUMN, CausalEnhancedV2
from see_grpc.trading.strategies.ml import MLEnhancedV1


class StrategyDataProvider:
    def __init__(
        self, analysis_engine: AnalysisEngineClient | None = None, feature_store: FeatureStoreClient | None = None
    ) -> None:
        self.analysis_engine = analysis_engine
        self.feature_store = feature_store

    @classmethod
    def from_settings(cls, settings: Settings) -> StrategyDataProvider:
        key = settings.service_api_key.get_secret_value() if settings.service_api_key else None
        engine, store = settings.analysis_engine_url, settings.feature_store_url
        return cls(
            AnalysisEngineClient(PlatformClientConfig("Analysis Engine", str(engine), key)) if engine else None,
            FeatureStoreClient(PlatformClientConfig("Feature Store", str(store), key)) if store else None,
        )

    async def close(self) -> None:
        for client in (self.analysis_engine, self.feature_store):
            if client is not None:
                await client.close()

    async def extra_columns(
        self,
        template_id: str,
        params: Mapping[str, object],
        instrument: str,
        timeframe: str,
        index: pd.DatetimeIndex,
    ) -> pd.DataFrame:
        """Columns for the bars on `index` of the strategy whose built-in template is `template_id`.

        `params` are the validated parameters. Bars the service did not return get NaN (the strategy stays flat
        there). Raises DependencyUnavailableError when a configured service cannot answer: the result would
        otherwise depend silently on which source happened to be up.
        """
        request = SeriesRequest.covering(instrument, timeframe, index)
        if template_id == CausalEnhancedV2.id and self.analysis_engine is not None:
            frame = await _analysis_columns(self.analysis_engine, request, params)
        elif template_id == MLEnhancedV1.id and self.feature_store is not None:
            frame = await _feature_columns(self.feature_store, request, params)
        else:
            return pd.DataFrame(index=index)
        return frame.reindex(index)


async def _analysis_columns(
    client: AnalysisEngineClient, request: SeriesRequest, params: Mapping[str, object]
) -> pd.DataFrame:
    atr_name = f"atr_{int_param(params, 'vol_period')}"
    settings = {
        "period": str(params["vol_period"]),
        "lookback": str(params["regime_lookback"]),
        "low": str(params["low_vol_percentile"]),
        "high": str(params["high_vol_percentile"]),
    }
    indicators, regime = await asyncio.gather(client.indicators(request, [atr_name]), client.regime(request, settings))
    return pd.concat([indicators[atr_name].rename(ATR_COLUMN), regime[REGIME_COLUMN]], axis=1)


async def _feature_columns(
    client: FeatureStoreClient, request: SeriesRequest, params: Mapping[str, object]
) -> pd.DataFrame:
    names = feature_names(int_param(params, "feature_lags"), int_param(params, "indicator_period"))
    return (await client.features(request, names)).add_prefix(FEATURE_PREFIX)
