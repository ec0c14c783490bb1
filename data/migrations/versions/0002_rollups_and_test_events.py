"""Per-minute metric rollups (counts and a sparse latency histogram) and saved test events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 06:32:18.370228
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_latency",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("function_id", sa.String(length=36), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "function_id", "bucket"),
    )
    op.create_index("ix_metric_latency_function_minute", "metric_latency", ["function_id", "minute"])

    op.create_table(
        "metric_minutes",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("function_id", sa.String(length=36), nullable=False),
        sa.Column("invocations", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("timeouts", sa.Integer(), nullable=False),
        sa.Column("cold_starts", sa.Integer(), nullable=False),
        sa.Column("duration_sum_ms", sa.Float(), nullable=False),
        sa.Column("duration_max_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "function_id"),
    )
    op.create_index("ix_metric_minutes_function_minute", "metric_minutes", ["function_id", "minute"])

    op.create_table(
        "test_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("function_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["function_id"], ["functions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("function_id", "name", name="uq_test_events_function_name"),
    )


def downgrade() -> None:
    op.drop_table("test_events")
    op.drop_index("ix_metric_minutes_function_minute", table_name="metric_minutes")
    op.drop_table("metric_minutes")
    op.drop_index("ix_metric_latency_function_minute", table_name="metric_latency")
    op.drop_table("metric_latency")
