"""The dispatch database's tables (SQLAlchemy Core), as the newest migration leaves them.

Times are Unix seconds (float) except ``event_time``, kept as the alert's own RFC 3339 text (it
sorts). Ids are text: alert ids are UUIDv7, entry ids are the list's ids as the alert names them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from edge.dispatch.alert_rows import alert_columns

metadata = MetaData()

# SQLite auto-increments only an INTEGER PRIMARY KEY (the rowid); PostgreSQL gets BIGINT.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

REVIEW_STATES = ("new", "confirmed", "rejected", "escalated")
DECISIONS = ("confirm", "reject", "escalate")
ROLES = ("operator", "supervisor", "auditor")

# The alert's own fields come from the model (edge.dispatch.alert_rows); the rest is dispatch's.
alerts = Table(
    "alerts",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    *alert_columns(),
    Column("received_at", Float, nullable=False),
    Column("has_crop", Boolean, nullable=False),
    Column("has_context", Boolean, nullable=False, server_default=false()),
    Column("state", String(16), nullable=False),
    Column("reviewed_at", Float),
    Column("reviewed_by", String(128)),
    Column("document", Text, nullable=False),
    Index("ix_alerts_device_seq", "device_id", "seq"),
    Index("ix_alerts_entry_seq", "watchlist_id", "entry_id", "seq"),
    Index("ix_alerts_state_seq", "state", "seq"),
    Index("ix_alerts_event_time", "event_time"),
)

alert_crops = Table(
    "alert_crops",
    metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("jpeg", LargeBinary, nullable=False),
)

# The scene around a hit, as the device sent it; ``box`` (JSON [x1, y1, x2, y2]) is the matched
# face in the JPEG's pixels, drawn over the picture by the page, never into it.
alert_contexts = Table(
    "alert_contexts",
    metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("jpeg", LargeBinary, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("box", String(64), nullable=False),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("alert_id", String(36), ForeignKey("alerts.alert_id"), nullable=False, index=True),
    Column("decision", String(16), nullable=False),
    Column("note", Text),
    Column("by_user", String(128), nullable=False),
    Column("at", Float, nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("sent_at", Float),  # published to the device and acknowledged by the broker
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("state", String(16)),
    Column("state_reason", String(200)),
    Column("status_at", Float),
    Column("status", Text),
    Column("heartbeat_at", Float),
    Column("heartbeat", Text),
    Column("watchlist_id", String(128)),
    Column("watchlist_version", String(128)),
    Column("software", String(64)),
    Column("model", String(128)),
    Column("outbox_depth", Integer),
    Column("audit_seq", BigInteger),
    Column("audit_hash", String(64)),
    Column("audit_problem", Text),
    Column("audit_problem_at", Float),
)

watchlists = Table(
    "watchlists",
    metadata,
    Column("list_id", String(128), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("imported_at", Float, nullable=False),
    Column("imported_by", String(128), nullable=False),
    Column("valid_until", String(40), nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("manifest", Text, nullable=False),
)

entries = Table(
    "entries",
    metadata,
    Column("list_id", String(128), primary_key=True),
    Column("entry_id", String(128), primary_key=True),
    Column("label", String(256), nullable=False),
    Column("added", String(40)),
    Column("expires", String(40)),
    Column("reason", Text),
    Column("legal_basis", Text),
    Column("case_ref", Text),
    Column("photos", Integer, nullable=False),
    Column("version", BigInteger, nullable=False),  # the list version that last carried it
)

entry_photos = Table(
    "entry_photos",
    metadata,
    Column("list_id", String(128), primary_key=True),
    Column("entry_id", String(128), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("photo", String(32), nullable=False),
    Column("jpeg", LargeBinary, nullable=False),  # the whole photo, a thumbnail
    Column("width", Integer),  # of the thumbnail (None: imported before 0002)
    Column("height", Integer),
    # The face that was enrolled: a crop of the photo, and its box (JSON) in the thumbnail.
    Column("face_jpeg", LargeBinary),
    Column("face_box", String(64)),
    Column("face_note", Text),  # why there is no face crop, when there is none
)

users = Table(
    "users",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("disabled", Boolean, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("user_id", SeqType, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(128)),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", SeqType, ForeignKey("users.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, index=True),
    Column("at", Float, nullable=False),
)

actions = Table(
    "actions",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("user_name", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("target", String(200)),
    Column("detail", Text),
)
