"""db.staging: bytes into PostgreSQL by binary COPY, exactly as they were, whatever their size."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db import staging


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\r\n\\x00 PGCOPY",  # bytes that look like framing or escapes
        bytes(range(256)) * (staging.CHUNK // 256),  # exactly one chunk
        b"\x89PNG" + bytes(staging.CHUNK * 2 + 7),  # chunks and a remainder
    ],
    ids=["empty", "framing-lookalikes", "one-chunk", "several-chunks"],
)
def test_staged_bytes_are_the_bytes(session: Session, data: bytes):
    staged = staging.stage_bytes(session, data)
    length, digest = session.execute(
        select(func.length(staged.c.content), func.sha256(staged.c.content))
    ).one()
    assert (length, bytes(digest)) == (len(data), hashlib.sha256(data).digest())


def test_staging_twice_in_one_transaction_keeps_only_the_last(session: Session):
    staging.stage_bytes(session, b"first")
    staged = staging.stage_bytes(session, b"second")
    assert session.scalars(select(staged.c.content)).all() == [b"second"]


def test_the_staging_table_goes_with_the_transaction(session: Session):
    staging.stage_bytes(session, b"gone at commit")
    session.commit()  # a savepoint here: the table stays until the outer transaction ends
    assert session.scalar(select(func.to_regclass("pg_temp.staged_bytes"))) is not None


def test_a_stream_is_read_in_chunks_never_whole():
    data = bytes(staging.CHUNK * 3)
    stream = staging.BinaryCopy(data)
    sizes = []
    while chunk := stream.read(staging.CHUNK):
        sizes.append(len(chunk))
    assert max(sizes) <= staging.CHUNK
    assert sum(sizes) == len(data) + 19 + 2 + 6  # signature and header, row header, trailer
