"""`python -m see_grpc`: the server on the settings of the environment (embedded defaults when unset)."""

from __future__ import annotations

import asyncio
import logging
import sys

from see_grpc.config import Settings, SettingsError, load_settings
from see_grpc.observability.logging import configure_logging
from see_grpc.observability.tracing import configure_tracing
from see_grpc.server import serve


def _usage() -> str:
    """The options are the environment variables of Settings; printed with their defaults, no server started."""
    lines = [
        "usage: python -m see_grpc [--help]",
        "",
        "Starts the SEE server (gRPC + REST). Options are environment variables (or a .env file):",
        "",
    ]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else str(field.default)
        lines.append(f"  {name.upper():<32} default: {default}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        if args[0] in ("-h", "--help"):
            print(_usage())
            return 0
        print(_usage(), file=sys.stderr)
        return 2
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
