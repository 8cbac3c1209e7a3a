"""Fetch a file from Slack safely: the bot token only ever goes to Slack's own file host.

The download address comes from a payload, so it is checked against the host configured in
SLACK_API_URL before the token is attached (and again on every redirect), and the body is read in
chunks with a hard size cap.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import urljoin, urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
MAX_REDIRECTS = 3


class FileRefused(Exception):
    """The file was not fetched; `str()` says why, for the person who attached it."""

    def __init__(self, reason: str, name: str | None = None) -> None:
        super().__init__(reason)
        self.name = name


@dataclass
class SlackFile:
    id: str | None
    name: str
    data: bytes


def file_hosts(api_url: str) -> set[tuple[str, str]]:
    """(scheme, host[:port]) pairs that may receive the bot token for a download.

    Slack serves files from `files.<api host>` (files.slack.com, files.slack-gov.com); a test
    server on loopback serves both from one address.
    """
    api = urlsplit(api_url)
    allowed = {(api.scheme, api.netloc)}
    host = api.hostname or ""
    try:
        ip_address(host)
    except ValueError:
        allowed.add((api.scheme, f"files.{api.netloc}"))
    return allowed


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would copy the Authorization header to wherever a redirect points.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def download(url: str, *, token: str, api_url: str, max_bytes: int, timeout: float = 30) -> bytes:
    allowed = file_hosts(api_url)
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) not in allowed:
            log.warning("refused to send the bot token to %s://%s", parts.scheme, parts.netloc)
            raise FileRefused(
                f"its download address is not on Slack's file host ({parts.netloc or url!r}), "
                "so it was not fetched"
            )
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                return _read_capped(response, max_bytes)
        except urllib.error.HTTPError as error:
            if error.code in (301, 302, 303, 307, 308) and error.headers.get("Location"):
                url = urljoin(url, error.headers["Location"])
                continue
            raise FileRefused(f"Slack answered HTTP {error.code} to the download") from None
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise FileRefused(f"the download failed ({error})") from None
    raise FileRefused("too many redirects")


def _read_capped(response: Any, max_bytes: int) -> bytes:
    content_type = (response.headers.get("Content-Type") or "").lower()
    if content_type.startswith("text/html"):
        # What Slack sends instead of the file when the token lacks files:read.
        raise FileRefused(
            "Slack sent its login page instead of the file: the app needs the files:read "
            "scope (reinstall it from manifest.yml)"
        )
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FileRefused(_too_big(int(declared), max_bytes))
    buffer = bytearray()
    while chunk := response.read(CHUNK):
        buffer += chunk
        if len(buffer) > max_bytes:
            raise FileRefused(_too_big(None, max_bytes))
    return bytes(buffer)


def _too_big(size: int | None, max_bytes: int) -> str:
    limit = f"{max_bytes / 1024 / 1024:g} MiB"
    if size is None:
        return f"it is larger than the {limit} limit"
    return f"it is {size / 1024 / 1024:.1f} MiB, over the {limit} limit"


def fetch(client: WebClient, file: dict[str, Any], *, api_url: str, max_bytes: int) -> SlackFile:
    """Download a file given its Slack object (as in payloads) or just its id."""
    file_id = file.get("id")
    partial = file.get("file_access") == "check_file_info"
    if file_id and (partial or not file.get("url_private_download")):
        # Payload copies can be partial ("file_access": "check_file_info"); ask for fresh data.
        try:
            file = client.files_info(file=file_id)["file"]
        except SlackApiError as error:
            raise FileRefused(
                f"Slack would not describe it ({error.response.get('error')})"
            ) from None
    name = str(file.get("name") or file.get("title") or file_id or "file")
    try:
        size = file.get("size")
        if isinstance(size, int) and size > max_bytes:
            raise FileRefused(_too_big(size, max_bytes))
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            raise FileRefused("Slack gave no download address for it")
        data = download(url, token=client.token or "", api_url=api_url, max_bytes=max_bytes)
    except FileRefused as refused:
        refused.name = name  # the file's real name, now that Slack has described it
        raise
    return SlackFile(id=file_id, name=name, data=data)
