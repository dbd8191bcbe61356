"""SQL storage of strategies and backtests (SQLite or PostgreSQL), migrated with Alembic on start."""

from see_grpc.adapters.storage.database import SqlDatabase, SqlUnitOfWork

__all__ = ["SqlDatabase", "SqlUnitOfWork"]
