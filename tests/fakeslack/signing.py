"""Signing and sending inbound requests exactly as Slack does.

Slack signs ``"v0:" + timestamp + ":" + raw_body`` with the signing secret; the body
must be sent byte for byte as signed, so these helpers never re-serialise it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from . import defaults
from .payloads import encode

# An opener without proxy support: requests to the app under test stay on loopback even
# when HTTP(S)_PROXY is set in the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def signature_headers(
    body: str | bytes, secret: str = defaults.SIGNING_SECRET, timestamp: int | str | None = None
) -> dict[str, str]:
    """``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    # Over the bytes as sent: slack_sdk's generator decodes them first, so it cannot sign a
    # body that is not UTF-8, which a test of the bot's refusal of one needs.
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


def post_signed(
    url: str,
    body: str | bytes,
    content_type: str,
    secret: str = defaults.SIGNING_SECRET,
    headers: Mapping[str, str] | None = None,
    timestamp: int | str | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], str]:
    """POST ``body`` signed with ``secret``; returns ``(status, headers, body_text)``.

    Header names in the result are lower-cased. Non-2xx statuses are returned, not raised.
    ``timestamp`` lets a test send stale requests (Slack's replay window is 5 minutes).
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    all_headers = {
        "Content-Type": content_type,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        **signature_headers(raw, secret, timestamp),
        **dict(headers or {}),
    }
    request = urllib.request.Request(url, data=raw, headers=all_headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return (
                resp.status,
                {k.lower(): v for k, v in resp.headers.items()},
                resp.read().decode("utf-8"),
            )
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode("utf-8")


def post_payload(
    url: str,
    payload: dict[str, Any],
    secret: str = defaults.SIGNING_SECRET,
    *,
    headers: Mapping[str, str] | None = None,
    timestamp: int | str | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], str]:
    """Encode a `payloads` dict the way Slack would (form / payload= / JSON), sign and POST it.

    ``retry_num``/``retry_reason`` add ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason`` like an
    Events API redelivery (reasons: http_timeout, http_error, connection_failed, ...).
    """
    body, content_type = encode(payload)
    extra = dict(headers or {})
    if retry_num is not None:
        extra["X-Slack-Retry-Num"] = str(retry_num)
        extra["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    return post_signed(url, body, content_type, secret, extra, timestamp, timeout)
