"""`python -m see_grpc`: the server on the settings of the environment (embedded defaults when unset)."""

from __future__ import annotations

import asyncio
import logging
import sys

from see_grpc.config import SettingsError, load_settings
from see_grpc.observability.logging import configure_logging
from see_grpc.observability.tracing import configure_tracing
from see_grpc.server import serve


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        configure_logging("INFO")
        logging.getLogger("see_grpc").critical(str(exc))
        return 2
    configure_logging("DEBUG" if settings.debug_mode else settings.log_level)
    configure_tracing(settings)
    try:
        asyncio.run(serve(settings))
    except Exception:
        logging.getLogger("see_grpc").critical("could not start", exc_info=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
