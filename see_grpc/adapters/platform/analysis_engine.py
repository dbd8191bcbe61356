"""Client of the Analysis Engine: indicators and market regime of an instrument's bars."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from see_grpc.adapters.platform.client import PlatformHttpClient
from see_grpc.adapters.platform.series import SeriesRequest, series_frame

INDICATORS_PATH = "/api/v1/indicators"
REGIME_PATH = "/api/v1/regime"
REGIME_COLUMNS = ("regime", "volatility_percentile")


class AnalysisEngineClient(PlatformHttpClient):
    async def indicators(self, request: SeriesRequest, names: Sequence[str]) -> pd.DataFrame:
        """Indicators named like `atr_24` (name_period), one column each."""
        reply = await self.post_json(INDICATORS_PATH, {**request.fields(), "indicators": list(names)})
        return series_frame(reply, names, self.config.service)

    async def regime(self, request: SeriesRequest, settings: dict[str, str]) -> pd.DataFrame:
        """Volatility regime label and ATR percentile per bar; `settings` are the classifier's query parameters."""
        reply = await self.get_json(REGIME_PATH, {**request.fields(), **settings})
        return series_frame(reply, REGIME_COLUMNS, self.config.service)
