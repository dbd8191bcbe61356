"""Client of the Feature Store: named model features of an instrument's bars."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from see_grpc.adapters.platform.client import PlatformHttpClient
from see_grpc.adapters.platform.series import SeriesRequest, series_frame

FEATURES_PATH = "/api/v1/features"


class FeatureStoreClient(PlatformHttpClient):
    async def features(self, request: SeriesRequest, names: Sequence[str]) -> pd.DataFrame:
        """Features named as see_grpc.trading.features.feature_names makes them, one column each."""
        reply = await self.post_json(FEATURES_PATH, {**request.fields(), "features": list(names)})
        return series_frame(reply, names, self.config.service)
