"""Webhooks and their call history (issue: Triggers).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 12:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=36), nullable=False),
        sa.Column("target_name", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("signature_scheme", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("secret_rotated_at", _TS, nullable=True),
        sa.Column("tolerance_sec", sa.Integer(), nullable=False),
        sa.Column("allowed_ips", sa.JSON(), nullable=False),
        sa.Column("rate_limit_per_min", sa.Integer(), nullable=False),
        sa.Column("retry_attempts", sa.Integer(), nullable=True),
        sa.Column("retry_backoff_ms", sa.Integer(), nullable=True),
        sa.Column("retry_backoff_max_ms", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        sa.UniqueConstraint("target_kind", "target_id", name="uq_webhooks_target"),
    )
    op.create_table(
        "webhook_calls",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("query", sa.JSON(), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.Column("request_body", sa.Text(), nullable=False),
        sa.Column("request_encoding", sa.String(length=8), nullable=False),
        sa.Column("request_size", sa.Integer(), nullable=False),
        sa.Column("request_truncated", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("invocation_id", sa.String(length=36), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("response_encoding", sa.String(length=8), nullable=False),
        sa.Column("response_size", sa.Integer(), nullable=False),
        sa.Column("response_truncated", sa.Boolean(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_calls_webhook_id_id", "webhook_calls", ["webhook_id", "id"])
    op.create_index("ix_webhook_calls_webhook_outcome_id", "webhook_calls", ["webhook_id", "outcome", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_calls_webhook_outcome_id", table_name="webhook_calls")
    op.drop_index("ix_webhook_calls_webhook_id_id", table_name="webhook_calls")
    op.drop_table("webhook_calls")
    op.drop_table("webhooks")
