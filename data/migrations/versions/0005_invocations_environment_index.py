"""An index for listing invocations by environment (the invocations filter).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_invocations_environment_id", "invocations", ["environment", "id"])


def downgrade() -> None:
    op.drop_index("ix_invocations_environment_id", table_name="invocations")
