"""Environments (seeded dev, staging, prod) and per-function deployments, layers and their versions,
Go/Rust builds, the function's executor/image, the layers of a published version, and the environment
an invocation ran in.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 09:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from data.types import new_id, utcnow

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("functions") as batch:
        batch.add_column(
            sa.Column("executor", sa.String(length=16), nullable=False, server_default="process")
        )
        batch.add_column(sa.Column("image", sa.String(length=256), nullable=False, server_default=""))
    with op.batch_alter_table("function_versions") as batch:
        batch.add_column(sa.Column("layers", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("invocations") as batch:
        batch.add_column(sa.Column("environment", sa.String(length=32), nullable=True))

    environments = op.create_table(
        "environments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("env_vars", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    now = utcnow()
    op.bulk_insert(
        environments,
        [
            {
                "id": new_id(),
                "name": name,
                "description": description,
                "position": position,
                "is_default": position == 0,
                "env_vars": {},
                "secrets": "",
                "created_at": now,
                "updated_at": now,
            }
            for position, (name, description) in enumerate(
                (
                    ("dev", "Development: runs the working copy unless a version is deployed"),
                    ("staging", "Pre-production"),
                    ("prod", "Production"),
                )
            )
        ],
    )
    op.create_table(
        "function_environments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("function_id", sa.String(length=36), nullable=False),
        sa.Column("environment_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("env_vars", sa.JSON(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=True),
        sa.Column("timeout_sec", sa.Integer(), nullable=True),
        sa.Column("deployed_by", sa.String(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["function_id"], ["functions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("function_id", "environment_id", name="uq_function_environment"),
    )
    op.create_index("ix_function_environments_function_id", "function_environments", ["function_id"])
    op.create_index("ix_function_environments_environment_id", "function_environments", ["environment_id"])

    op.create_table(
        "layers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("compatible_runtimes", sa.JSON(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "layer_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("layer_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("build_log", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(["layer_id"], ["layers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("layer_id", "version", name="uq_layer_version"),
    )
    op.create_index("ix_layer_versions_layer_id", "layer_versions", ["layer_id"])
    op.create_table(
        "function_layers",
        sa.Column("function_id", sa.String(length=36), nullable=False),
        sa.Column("layer_id", sa.String(length=36), nullable=False),
        sa.Column("layer_version", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["function_id"], ["functions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["layer_id"], ["layers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("function_id", "layer_id"),
    )

    op.create_table(
        "builds",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("function_id", sa.String(length=36), nullable=False),
        sa.Column("function_name", sa.String(length=64), nullable=False),
        sa.Column("runtime", sa.String(length=16), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_builds_function_id_id", "builds", ["function_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_builds_function_id_id", table_name="builds")
    op.drop_table("builds")
    op.drop_table("function_layers")
    op.drop_index("ix_layer_versions_layer_id", table_name="layer_versions")
    op.drop_table("layer_versions")
    op.drop_table("layers")
    op.drop_index("ix_function_environments_environment_id", table_name="function_environments")
    op.drop_index("ix_function_environments_function_id", table_name="function_environments")
    op.drop_table("function_environments")
    op.drop_table("environments")
    with op.batch_alter_table("invocations") as batch:
        batch.drop_column("environment")
    with op.batch_alter_table("function_versions") as batch:
        batch.drop_column("layers")
    with op.batch_alter_table("functions") as batch:
        batch.drop_column("image")
        batch.drop_column("executor")
