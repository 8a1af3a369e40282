"""conversations.due_at, handoffs.reason as text, identity codes

`due_at`: when the dialogue's pending work falls due (an intake the tenant stopped answering
becomes a request); the periodic loop reads the index instead of every conversation.
`handoffs.reason` says in words what the person must know, longer than a code.
`identity_codes`: one-time codes sent by SMS to prove a web-chat or Telegram sender is the
tenant (hash only, expiry, tries).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_conversations_due_at", ["due_at"], unique=False)
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.alter_column(
            "reason", existing_type=sa.String(length=64), type_=sa.Text(), existing_nullable=False
        )
    op.create_table(
        "identity_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column(
            "conversation_id", sa.Integer(), sa.ForeignKey("conversations.id"), nullable=False
        ),
        sa.Column("code_hash", sa.String(length=128), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_identity_codes_tenant", "identity_codes", ["tenant_id", "created_at"])
    op.create_index(
        "ix_identity_codes_conversation", "identity_codes", ["conversation_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_identity_codes_conversation", table_name="identity_codes")
    op.drop_index("ix_identity_codes_tenant", table_name="identity_codes")
    op.drop_table("identity_codes")
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.alter_column(
            "reason", existing_type=sa.Text(), type_=sa.String(length=64), existing_nullable=False
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_due_at")
        batch_op.drop_column("due_at")
