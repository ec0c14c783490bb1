"""An index for the audit log's actor filter (newest first within one actor).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 12:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_actor_id", "audit_logs", ["actor", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_actor_id", table_name="audit_logs")
