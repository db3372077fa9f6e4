"""Persisted spend for budgets (gateway.limits.models).

Revision ID: 0003_limits
Revises: 0002_usage
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_limits"
down_revision = "0002_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_spend",
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("period", sa.String(length=64), nullable=False),
        sa.Column("spend_usd", sa.Float(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "period", name="pk_limit_spend"),
    )
    op.create_index("ix_limit_spend_period", "limit_spend", ["period"])


def downgrade() -> None:
    op.drop_index("ix_limit_spend_period", table_name="limit_spend")
    op.drop_table("limit_spend")
