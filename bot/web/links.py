"""Links the web surface hands out in answers and documents (the API's `url` and `Location`,
post-mortems): absolute only from PUBLIC_URL, relative to this site otherwise."""

from __future__ import annotations

from typing import Any

from flask import url_for

from bot.web.auth import services


def link(endpoint: str, **values: Any) -> str:
    """Where `endpoint` is. Never built from the request's Host header: whoever sends the
    request chooses it, and a post-mortem pasted into a wiki would link to their host."""
    path = url_for(endpoint, **values)
    public = services().settings.public_url
    return public + path if public else path
