"""Large byte strings into PostgreSQL without psycopg2's hex detour.

psycopg2 sends a `bytes` parameter as a hex literal: the statement is over twice the value's size
and is built in memory next to it. A binary `COPY ... FROM STDIN` streams the bytes as they are,
from a view of the caller's buffer, so the only copy in memory is the caller's. They land in a
temporary staging table of the transaction, from which one INSERT ... SELECT moves them inside
the server.
"""

from __future__ import annotations

import struct

from sqlalchemy import LargeBinary, TableClause, column, table, text
from sqlalchemy.orm import Session

# PostgreSQL's binary COPY framing: signature, flags, header extension length; per row the field
# count and each field's length; -1 as the field count ends the data.
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_TRAILER = struct.pack("!h", -1)
CHUNK = 1024 * 1024

STAGED = table("staged_bytes", column("content", LargeBinary))


class BinaryCopy:
    """A file-like stream of one row holding `data`, read in chunks without copying it whole."""

    def __init__(self, data: bytes) -> None:
        self._parts = [_SIGNATURE + struct.pack("!hi", 1, len(data)), memoryview(data), _TRAILER]

    def read(self, size: int = CHUNK) -> bytes:
        while self._parts:
            part = self._parts[0]
            if len(part) > size:
                self._parts[0] = part[size:]
                return bytes(part[:size])
            self._parts.pop(0)
            if len(part):
                return bytes(part)
        return b""


def stage_bytes(session: Session, data: bytes) -> TableClause:
    """Put `data` as the one row of this transaction's staging table (`STAGED`), emptied first;
    the table goes away with the transaction."""
    created = session.execute(text("SELECT to_regclass('pg_temp.staged_bytes') IS NULL")).scalar()
    if created:
        session.execute(text("CREATE TEMPORARY TABLE staged_bytes (content bytea) ON COMMIT DROP"))
        # Staged bytes are read once, by the INSERT that stores them (and compresses them if
        # they compress): trying to compress them here too would be work done twice.
        session.execute(text("ALTER TABLE staged_bytes ALTER COLUMN content SET STORAGE EXTERNAL"))
    else:
        session.execute(text("DELETE FROM staged_bytes"))
    cursor = session.connection().connection.cursor()
    try:
        cursor.copy_expert(
            "COPY staged_bytes (content) FROM STDIN (FORMAT binary)", BinaryCopy(data), CHUNK
        )
    finally:
        cursor.close()
    return STAGED
