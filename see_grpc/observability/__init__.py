"""Logs, metrics and traces: cross-cutting, used by every layer that does I/O."""
