"""Alembic migrations of the Nimbus schema; applied on start by data.migrate.migrate()."""
