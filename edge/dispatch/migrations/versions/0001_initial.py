"""The first dispatch schema: alerts, crops, reviews, devices, lists, entries, accounts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(36), nullable=False, unique=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("event_time", sa.String(40), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("watchlist_id", sa.String(128), nullable=False),
        sa.Column("watchlist_version", sa.String(128), nullable=False),
        sa.Column("entry_id", sa.String(128), nullable=False),
        sa.Column("entry_label", sa.String(256), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("quality", sa.Float, nullable=False),
        sa.Column("track_id", sa.BigInteger, nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("location_name", sa.String(200)),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("test", sa.Boolean, nullable=False),
        sa.Column("has_crop", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reviewed_at", sa.Float),
        sa.Column("reviewed_by", sa.String(128)),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_alerts_device_seq", "alerts", ["device_id", "seq"])
    op.create_index("ix_alerts_entry_seq", "alerts", ["watchlist_id", "entry_id", "seq"])
    op.create_index("ix_alerts_state_seq", "alerts", ["state", "seq"])
    op.create_index("ix_alerts_event_time", "alerts", ["event_time"])
    op.create_table(
        "alert_crops",
        sa.Column("alert_id", sa.String(36), primary_key=True),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "reviews",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.alert_id"), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("by_user", sa.String(128), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("sent_at", sa.Float),
    )
    op.create_index("ix_reviews_alert_id", "reviews", ["alert_id"])
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16)),
        sa.Column("state_reason", sa.String(200)),
        sa.Column("status_at", sa.Float),
        sa.Column("status", sa.Text),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("heartbeat", sa.Text),
        sa.Column("watchlist_id", sa.String(128)),
        sa.Column("watchlist_version", sa.String(128)),
        sa.Column("software", sa.String(64)),
        sa.Column("model", sa.String(128)),
        sa.Column("outbox_depth", sa.Integer),
        sa.Column("audit_seq", sa.BigInteger),
        sa.Column("audit_hash", sa.String(64)),
        sa.Column("audit_problem", sa.Text),
        sa.Column("audit_problem_at", sa.Float),
    )
    op.create_table(
        "watchlists",
        sa.Column("list_id", sa.String(128), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("imported_at", sa.Float, nullable=False),
        sa.Column("imported_by", sa.String(128), nullable=False),
        sa.Column("valid_until", sa.String(40), nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
    )
    op.create_table(
        "entries",
        sa.Column("list_id", sa.String(128), primary_key=True),
        sa.Column("entry_id", sa.String(128), primary_key=True),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("added", sa.String(40)),
        sa.Column("expires", sa.String(40)),
        sa.Column("reason", sa.Text),
        sa.Column("legal_basis", sa.Text),
        sa.Column("case_ref", sa.Text),
        sa.Column("photos", sa.Integer, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "entry_photos",
        sa.Column("list_id", sa.String(128), primary_key=True),
        sa.Column("entry_id", sa.String(128), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("photo", sa.String(32), nullable=False),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("user_id", _SEQ, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(128)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", _SEQ, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_login_failures_key", "login_failures", ["key"])
    op.create_table(
        "actions",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    for table in (
        "actions",
        "login_failures",
        "sessions",
        "api_tokens",
        "users",
        "entry_photos",
        "entries",
        "watchlists",
        "devices",
        "reviews",
        "alert_crops",
        "alerts",
    ):
        op.drop_table(table)
