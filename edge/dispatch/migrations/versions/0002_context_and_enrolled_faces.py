"""The scene around a hit and the enrolled face: alert context frames, enrolled face crops.

Alerts may carry a context frame (schema v1 ``context``: a small scene JPEG, the matched face's
box, every other face blurred on the device); it is kept beside the alert as sent. Reference
photos gain their thumbnail's size, the enrolled face (a crop, and its box in the thumbnail) and,
where the list's details recorded no face, why not.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("has_context", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "alert_contexts",
        sa.Column("alert_id", sa.String(36), primary_key=True),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("box", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("entry_photos") as batch:
        batch.add_column(sa.Column("width", sa.Integer))
        batch.add_column(sa.Column("height", sa.Integer))
        batch.add_column(sa.Column("face_jpeg", sa.LargeBinary))
        batch.add_column(sa.Column("face_box", sa.String(64)))
        batch.add_column(sa.Column("face_note", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("entry_photos") as batch:
        for column in ("face_note", "face_box", "face_jpeg", "height", "width"):
            batch.drop_column(column)
    op.drop_table("alert_contexts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("has_context")
