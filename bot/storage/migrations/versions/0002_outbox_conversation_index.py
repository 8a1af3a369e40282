"""outbox: index on (conversation_id, status)

The dispatcher keeps a conversation's replies in order by asking, for each due row, whether an
earlier row of the same conversation is still undelivered; the worker asks the same before
sending its replies at once. Without this index both scan the whole outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 02:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_conversation_status", ["conversation_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_conversation_status")
