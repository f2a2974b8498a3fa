"""The watchlists dispatch knows: entry details and reference photos from ``import-list``, for
the alert pages (queries on :class:`~edge.dispatch.database.Database`)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select

from edge.dispatch import tables as t
from edge.dispatch.database import Database
from edge.dispatch.rows import EntryRow, ListRow, ReferencePhotoInfo


class ListRecords(Database):
    """Entries, their photos and the imported lists."""

    def entry(self, list_id: str, entry_id: str) -> EntryRow | None:
        with self.tx("read an entry") as conn:
            row = conn.execute(
                select(t.entries).where(
                    t.entries.c.list_id == list_id, t.entries.c.entry_id == entry_id
                )
            ).first()
        return None if row is None else EntryRow(**row._mapping)

    def entry_photo(
        self, list_id: str, entry_id: str, n: int, *, face: bool = False
    ) -> bytes | None:
        """Reference photo ``n`` of an entry (a thumbnail), or with ``face`` its enrolled face."""
        p = t.entry_photos.c
        with self.tx("read a reference photo") as conn:
            jpeg = conn.execute(
                select(p.face_jpeg if face else p.jpeg).where(
                    p.list_id == list_id, p.entry_id == entry_id, p.n == n
                )
            ).scalar()
        return None if jpeg is None else bytes(jpeg)

    def entry_photos(self, list_id: str, entry_id: str) -> list[ReferencePhotoInfo]:
        """An entry's reference photos, without the JPEGs, in order."""
        p = t.entry_photos.c
        with self.tx("read reference photos") as conn:
            rows = conn.execute(
                select(
                    p.n,
                    p.width,
                    p.height,
                    p.face_jpeg.is_not(None).label("has_face"),
                    p.face_box,
                    p.face_note,
                )
                .where(p.list_id == list_id, p.entry_id == entry_id)
                .order_by(p.n)
            ).mappings()
            return [
                ReferencePhotoInfo(
                    **{
                        **r,
                        "has_face": bool(r["has_face"]),
                        "face_box": None if r["face_box"] is None else json.loads(r["face_box"]),
                    }
                )
                for r in rows
            ]

    def import_list(
        self,
        manifest: Mapping[str, Any],
        entries: Sequence[Mapping[str, Any]],
        photos: Sequence[Mapping[str, Any]],
        user: str,
    ) -> None:
        """Store a list's entry details and reference thumbnails (replacing those of the same
        entries); entries that left the list are kept for the alerts that name them."""
        list_id, version = str(manifest["list_id"]), int(manifest["version"])
        ids = [str(e["entry_id"]) for e in entries]
        with self.tx(f"import list {list_id}") as conn:
            conn.execute(delete(t.watchlists).where(t.watchlists.c.list_id == list_id))
            conn.execute(
                insert(t.watchlists).values(
                    list_id=list_id,
                    version=version,
                    imported_at=time.time(),
                    imported_by=user,
                    valid_until=str(manifest["valid_until"]),
                    entry_count=len(entries),
                    manifest=json.dumps(manifest, sort_keys=True),
                )
            )
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for table in (t.entries, t.entry_photos):
                    conn.execute(
                        delete(table).where(table.c.list_id == list_id, table.c.entry_id.in_(chunk))
                    )
            if entries:
                conn.execute(
                    insert(t.entries),
                    [{**e, "list_id": list_id, "version": version} for e in entries],
                )
            if photos:
                conn.execute(insert(t.entry_photos), [{**p, "list_id": list_id} for p in photos])
            self.record_action(
                conn, user, "import_list", list_id, {"version": version, "entries": len(entries)}
            )

    def watchlists(self) -> list[ListRow]:
        with self.tx("read lists") as conn:
            rows = conn.execute(
                select(*[c for c in t.watchlists.c if c.name != "manifest"]).order_by(
                    t.watchlists.c.list_id
                )
            ).mappings()
            return [ListRow(**r) for r in rows]
