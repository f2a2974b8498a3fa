"""Alembic's environment for the dispatch database: run programmatically by
:func:`edge.dispatch.store.migrate` on the connection it passes in ``attributes``."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
