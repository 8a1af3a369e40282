"""tenants.departed_at; content_overrides (managers' texts and FAQ answers)

`relais import tenants --full` marks the tenants absent from a full export as departed;
managers edit tenant-facing texts and FAQ answers in the console, stored over the YAML seed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 23:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("departed_at", bot.storage.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "content_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("updated_at", bot.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_overrides")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_content_overrides_kind")),
    )


def downgrade() -> None:
    op.drop_table("content_overrides")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("departed_at")
