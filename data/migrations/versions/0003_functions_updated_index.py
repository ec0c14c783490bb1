"""An index for listing functions by last update (the console's "Recently updated" sort).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 08:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_functions_updated_at_id", "functions", ["updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_functions_updated_at_id", table_name="functions")
