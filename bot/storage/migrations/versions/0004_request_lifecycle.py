"""issue 17: request lifecycle (events, schedule, deadlines), API keys, broadcasts

Requests keep their history in request_events; `status` takes the lifecycle's states, and the
former `open` becomes `received` (its first state), `in_progress` becomes `taken`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = bot.storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.alter_column(
            "status", existing_type=sa.String(length=16), type_=sa.String(length=24)
        )
        batch_op.add_column(sa.Column("scheduled_for", UTC, nullable=True))
        batch_op.add_column(
            sa.Column("scheduled_slot", sa.String(length=16), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("contractor", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("due_at", UTC, nullable=True))
        batch_op.add_column(
            sa.Column("reminded_level", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("reminded_at", UTC, nullable=True))
        batch_op.create_index("ix_requests_due_at", ["due_at"], unique=False)
    op.execute("UPDATE requests SET status = 'received' WHERE status = 'open'")
    op.execute("UPDATE requests SET status = 'taken' WHERE status = 'in_progress'")
    op.create_table(
        "request_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("from_status", sa.String(length=24), nullable=False),
        sa.Column("to_status", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_request_events_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_users.id"], name=op.f("fk_request_events_staff_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_events")),
    )
    op.create_index(
        op.f("ix_request_events_request_id"), "request_events", ["request_id"], unique=False
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_used_at", UTC, nullable=True),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_keys_token_hash")),
    )
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("residence_id", sa.Integer(), nullable=False),
        sa.Column("building", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_broadcasts_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["residence_id"],
            ["residences.id"],
            name=op.f("fk_broadcasts_residence_id_residences"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_users.id"], name=op.f("fk_broadcasts_staff_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )


def downgrade() -> None:
    op.drop_table("broadcasts")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_request_events_request_id"), table_name="request_events")
    op.drop_table("request_events")
    op.execute("UPDATE requests SET status = 'open' WHERE status NOT IN ('closed', 'done')")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_due_at")
        batch_op.drop_column("reminded_at")
        batch_op.drop_column("reminded_level")
        batch_op.drop_column("due_at")
        batch_op.drop_column("contractor")
        batch_op.drop_column("scheduled_slot")
        batch_op.drop_column("scheduled_for")
        batch_op.alter_column(
            "status", existing_type=sa.String(length=24), type_=sa.String(length=16)
        )
