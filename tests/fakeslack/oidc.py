"""Sign in with Slack (OpenID Connect), faked: the authorize page, `openid.connect.token` and
`openid.connect.userInfo`, with Slack's claim names.

The authorize page signs in whoever the test chose (`fake.oidc.sign_in_as(...)`, by default the
default user of the fake's team) at once, as a browser that is already signed in to Slack and
clicks "Allow" would see it.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakeslack import defaults

CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "fakeslack-client-secret-0123456789"
ISSUER = "https://slack.com"
METHODS = ("openid.connect.token", "openid.connect.userInfo")


class OidcError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass
class _Grant:
    claims: dict[str, Any]
    redirect_uri: str
    client_id: str


@dataclass
class OidcProvider:
    team_id: str
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    # Who the authorize page signs in next: (user id, team id, name).
    person: tuple[str, str, str] = ("", "", "")
    # Set to e.g. "access_denied" to have the authorize page send the person back with an error.
    deny_with: str | None = None
    # Set to make the id token carry this nonce instead of the one asked for (a replay).
    forged_nonce: str | None = None
    authorized: list[dict[str, str]] = field(default_factory=list)
    _codes: dict[str, _Grant] = field(default_factory=dict)
    _access: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.person[0]:
            self.person = (defaults.USER_ID, self.team_id, "Alice Example")

    def sign_in_as(self, user_id: str, *, team_id: str | None = None, name: str = "") -> None:
        self.person = (user_id, team_id or self.team_id, name or user_id)

    # --- the authorize page (GET /openid/connect/authorize) -----------------------------------

    def authorize(self, query: str) -> tuple[int, dict[str, str], bytes]:
        args = {k: v[-1] for k, v in parse_qs(query).items()}
        with self._lock:
            self.authorized.append(args)
        if args.get("client_id") != self.client_id:
            return 400, {}, b"<html><body>Invalid client_id</body></html>"
        redirect_uri = args.get("redirect_uri", "")
        if not urlsplit(redirect_uri).scheme.startswith("http"):
            return 400, {}, b"<html><body>Invalid redirect_uri</body></html>"
        if args.get("response_type") != "code" or "openid" not in args.get("scope", "").split():
            return 400, {}, b"<html><body>Invalid request</body></html>"
        state = args.get("state", "")
        if self.deny_with:
            target = f"{redirect_uri}?{urlencode({'error': self.deny_with, 'state': state})}"
            return 302, {"Location": target}, b""
        user_id, team_id, name = self.person
        claims = {
            "iss": ISSUER,
            "sub": user_id,
            "aud": self.client_id,
            "nonce": self.forged_nonce or args.get("nonce", ""),
            "https://slack.com/user_id": user_id,
            "https://slack.com/team_id": team_id,
            "name": name,
        }
        code = secrets.token_hex(12)
        with self._lock:
            self._codes[code] = _Grant(claims, redirect_uri, self.client_id)
        target = f"{redirect_uri}?{urlencode({'code': code, 'state': state})}"
        return 302, {"Location": target}, b""

    # --- Web API methods ------------------------------------------------------------------------

    def token(self, params: dict[str, Any], basic_auth: tuple[str, str] | None) -> dict[str, Any]:
        client_id, secret = basic_auth or (params.get("client_id"), params.get("client_secret"))
        if client_id != self.client_id or secret != self.client_secret:
            raise OidcError(
                "invalid_client_id" if client_id != self.client_id else "bad_client_secret"
            )
        with self._lock:
            grant = self._codes.pop(str(params.get("code", "")), None)
        if grant is None:
            raise OidcError("invalid_code")
        if params.get("redirect_uri") and params["redirect_uri"] != grant.redirect_uri:
            raise OidcError("bad_redirect_uri")
        access = "xoxp-" + secrets.token_hex(16)
        with self._lock:
            self._access[access] = grant.claims
        header = _b64({"alg": "RS256", "kid": "fake", "typ": "JWT"})
        id_token = f"{header}.{_b64(grant.claims)}.{secrets.token_hex(16)}"
        return {"access_token": access, "token_type": "Bearer", "id_token": id_token}

    def user_info(self, token: str | None) -> dict[str, Any]:
        with self._lock:
            claims = self._access.get(token or "")
        if claims is None:
            raise OidcError("invalid_auth")
        return {
            key: value for key, value in claims.items() if key not in ("aud", "nonce", "iss")
        } | {"email_verified": False, "locale": "en-US"}
