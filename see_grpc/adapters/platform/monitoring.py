"""Client of the Monitoring service: operational events (Monitor) when MONITORING_SERVICE_URL is set."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from see_grpc.adapters.platform.client import PlatformHttpClient

logger = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
SERVICE_NAME = "see"
# Kinds that need a person now; every other kind is a warning.
SEVERITIES = {"kill_switch": "critical", "execution_failed": "error", "gateway_unavailable": "error"}


class MonitoringClient(PlatformHttpClient):
    async def alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        """Never raises: monitoring must not stop trading. A failed send is logged with the whole event."""
        event = {
            "kind": kind,
            "severity": SEVERITIES.get(kind, "warning"),
            "message": message,
            "details": details,
            "service": SERVICE_NAME,
            "time": datetime.now(UTC).isoformat(),
        }
        try:
            # Times, decimals and the like as strings: a detail must never make the event unsendable.
            body = json.loads(json.dumps(event, default=str))
            await self.guarded(f"POST {EVENTS_PATH}", lambda: self._post(body))
        except Exception as exc:  # whatever went wrong, the trading code that called this goes on
            logger.warning("%s did not take the event (%s): %s", self.config.service, exc, event)

    async def _post(self, body: dict[str, Any]) -> None:
        async with await self.send("POST", EVENTS_PATH, {"json": body}):
            pass  # any 2xx takes the event, whatever its body
