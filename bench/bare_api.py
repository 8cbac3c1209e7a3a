"""The API benchmark's yardstick: the same answers from hand-written SQL on a raw psycopg2
connection, serialised with json, served by waitress like the bot. No validation, no auth, no
framework: what the bot's API costs is measured against this.

    python -m bench.bare_api PORT    # reads DATABASE_URL
"""

from __future__ import annotations

import json
import os
import queue
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import psycopg2
import waitress

from bench.incidents import page_sql

GET_SQL = (
    "SELECT id, title, description, service, severity, status, category, reporter, owner, "
    "assignee, cause, resolution, created_at, updated_at, acknowledged_at, mitigated_at, "
    "resolved_at, closed_at, own_channel_id FROM incidents WHERE id = %s"
)


def _where(args: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
    clauses, params = ["TRUE"], {}
    for name, column in (("status", "status"), ("severity", "severity")):
        if name in args:
            clauses.append(f"{column} = ANY(%({name})s)")
            params[name] = args[name][0].split(",")
    if "service" in args:
        clauses.append("lower(service) = ANY(%(service)s)")
        params["service"] = args["service"][0].split(",")
    return " AND ".join(clauses), params


def make_app(database_url: str) -> Callable[..., Iterable[bytes]]:
    pool: queue.Queue[Any] = queue.Queue()
    for _ in range(8):
        pool.put(psycopg2.connect(database_url))

    @contextmanager
    def cursor() -> Iterator[Any]:
        connection = pool.get()
        try:
            with connection.cursor() as cur:
                yield cur
            connection.rollback()
        finally:
            pool.put(connection)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        args = parse_qs(environ.get("QUERY_STRING", ""))
        with cursor() as cur:
            if path == "/api/v1/incidents":
                where, params = _where(args)
                order = "updated_at DESC, id DESC" if "sort" in args else "created_at DESC, id DESC"
                cur.execute(page_sql(where, order), params)
                rows = cur.fetchall()
                names = [c.name for c in cur.description]
                items = [dict(zip(names[:-1], row[:-1], strict=True)) for row in rows[:20]]
                body: Any = {"items": items, "total": rows[0][-1] if rows else 0}
            else:
                cur.execute(GET_SQL, (int(path.rsplit("/", 1)[1]),))
                row = cur.fetchone()
                body = dict(zip([c.name for c in cur.description], row, strict=True))
        data = json.dumps(body, default=str).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    return app


def main() -> None:
    app = make_app(os.environ["DATABASE_URL"].replace("postgresql+psycopg2:", "postgresql:"))
    print("serving", flush=True)
    waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=8)


if __name__ == "__main__":
    main()
