"""Alembic environment: SEE migrates itself on start, on the connection SqlDatabase.start passes in."""

from alembic import context
from sqlalchemy.engine import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("SEE's migrations run from SqlDatabase.start(), which passes the connection in")

context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
