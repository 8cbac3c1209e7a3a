"""Who is asking: people signed in with Slack (OpenID Connect) or locally, and API tokens.

People's sessions are rows in the database (`bot.incidents.signins`) whose random id rides in a
signed cookie (Flask's, keyed by SESSION_SECRET): signing out ends the row, so a copy of the
cookie is refused afterwards. A session belongs to a Slack user id, so INCIDENT_ADMINS and every
permission are the ones they have in Slack. Forms carry a CSRF token kept in the cookie.
Machines send `Authorization: Bearer itk_...`.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from apiflask import APIBlueprint, HTTPTokenAuth, abort
from flask import abort as flask_abort
from flask import current_app, g, redirect, render_template, request, session, url_for
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot.incidents import LOCAL_ADMIN, Actor, signins, tokens
from bot.web.services import WebServices

log = logging.getLogger("bot.web")

bp = APIBlueprint("auth", __name__, enable_openapi=False)


class _TokenOrSession(HTTPTokenAuth):
    # Flask-HTTPAuth skips the callback when no Bearer token is sent, which is exactly how a
    # signed-in browser calls the API: the callback gets "" and looks at the session instead.
    def authenticate(self, auth: Any, stored_password: Any) -> Any:
        return self.verify_token_callback(getattr(auth, "token", None) or "")


api_auth = _TokenOrSession(
    scheme="Bearer",
    description="An API token (`python -m bot token create --name <name>`), or a signed-in "
    "browser session; a session's writes need the X-CSRF-Token header.",
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def services() -> WebServices:
    return current_app.extensions["incident_tracker"]


# --- Who is asking ------------------------------------------------------------------------------


SESSION_ID = "sid"
LOCAL_LINK_HINT = (
    "Run `python -m bot link` on the bot's machine for a new one: each link works once, within "
    f"{signins.LOCAL_LINK_MINUTES} minutes."
)
_VIEWER = "incident_tracker_viewer"


def session_actor() -> Actor | None:
    """The person signed in with this browser, if any: its session's row decides, not the
    cookie alone (looked up once per request)."""
    if _VIEWER not in g:
        sid = session.get(SESSION_ID)
        user_id = None
        if isinstance(sid, str):
            with services().read() as db:
                user_id = signins.session_user(db, sid)
        actor = None
        if user_id == LOCAL_ADMIN.user_id:
            actor = LOCAL_ADMIN
        elif user_id is not None:
            actor = services().person(user_id)
        setattr(g, _VIEWER, actor)
    return g.get(_VIEWER)


def _start_session(db: Session, user_id: str, name: str) -> None:
    sid = signins.start_session(db, user_id)
    session.clear()
    session.permanent = True
    session[SESSION_ID] = sid
    # Kept beside the id for the log lines and the header; the row alone says who is in.
    session["user_id"] = user_id
    session["name"] = name


@api_auth.verify_token
def _verify(token: str) -> Actor | None:
    # "" when no Bearer token came (see _TokenOrSession): a browser session, if any.
    if token:
        with services().read() as db:
            actor = tokens.authenticate(db, token)
            if db.dirty:  # its last use, written at most once a minute
                db.commit()
            return actor
    actor = session_actor()
    if actor is not None and request.method not in SAFE_METHODS and not _csrf_ok():
        return None
    return actor


@api_auth.error_processor
def _unauthorized(error: Any) -> tuple[dict[str, Any], int]:
    return {
        "message": "Sign in, or send an API token as `Authorization: Bearer itk_...` (a browser "
        f"session's writes also need the {CSRF_HEADER} header).",
        "detail": {},
    }, 401


def current_actor() -> Actor:
    actor = api_auth.current_user
    assert isinstance(actor, Actor), "route is missing @auth_required(api_auth)"
    return actor


# --- CSRF --------------------------------------------------------------------------------------


def csrf_token() -> str:
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    return isinstance(expected, str) and secrets.compare_digest(sent.encode(), expected.encode())


def check_csrf() -> None:
    """Refuse a form post that does not carry this session's token (403)."""
    if request.method not in SAFE_METHODS and not _csrf_ok():
        abort(403, "This form has expired or did not come from this site. Reload and try again.")


# --- Signing in --------------------------------------------------------------------------------


def _redirect_uri() -> str:
    # PUBLIC_URL only (slack_sign_in needs it): a Host header would be the sender's to choose.
    return f"{services().settings.public_url}{url_for('auth.slack_callback')}"


# Browsers drop tabs and newlines from a URL ("/\t/evil" is "//evil") and read "\" as "/".
_NOT_IN_A_LOCAL_PATH = re.compile(r"[\x00-\x20\x7f\\]")


def safe_next(target: str | None) -> str:
    # Only a path on this site: an open redirect would hand a signed-in session to a phisher.
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or _NOT_IN_A_LOCAL_PATH.search(target)
    ):
        return url_for("pages.incident_list")
    return target


@bp.get("/auth/slack")
def slack_sign_in() -> Response:
    web = services()
    if not web.slack_sign_in:
        abort(404, "Sign in with Slack needs SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and PUBLIC_URL.")
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    session["oidc"] = {"state": state, "nonce": nonce, "next": safe_next(request.args.get("next"))}
    api = urlsplit(web.settings.slack_api_url)
    query = urlencode(
        {
            "response_type": "code",
            "scope": "openid profile",
            "client_id": web.settings.slack_client_id,
            "state": state,
            "nonce": nonce,
            "redirect_uri": _redirect_uri(),
            "team": web.team_id,
        }
    )
    # On the host of SLACK_API_URL, so GovSlack (slack-gov.com) signs its people in.
    return redirect(f"{api.scheme}://{api.netloc}/openid/connect/authorize?{query}")


@bp.get("/auth/slack/callback")
def slack_callback() -> Response:
    web = services()
    pending = session.pop("oidc", None)
    state = request.args.get("state", "")
    if not web.slack_sign_in or not isinstance(pending, dict):
        abort(400, "This sign-in link has expired. Start again from the sign-in page.")
    if not secrets.compare_digest(state.encode(), str(pending.get("state")).encode()):
        abort(400, "This sign-in answer does not belong to this browser. Start again.")
    if request.args.get("error"):
        abort(403, f"Slack did not sign you in ({request.args['error'][:100]}).")
    claims = _exchange(web, request.args.get("code", ""), str(pending.get("nonce")))
    user_id = claims.get("https://slack.com/user_id")
    team_id = claims.get("https://slack.com/team_id")
    if team_id != web.team_id or not isinstance(user_id, str):
        log.warning("sign-in refused: %s of team %s is not of this workspace", user_id, team_id)
        abort(403, "Only members of this Slack workspace can sign in here.")
    with web.change() as db:
        _start_session(db, user_id, str(claims.get("name") or user_id)[:80])
    log.info("%s signed in with Slack", user_id)
    return redirect(safe_next(pending.get("next")))


def _exchange(web: WebServices, code: str, nonce: str) -> dict[str, Any]:
    """Trade the code for tokens (`openid.connect.token`), check the id token's audience and
    nonce, and read who it is (`openid.connect.userInfo`)."""
    client = WebClient(base_url=web.settings.slack_api_url, timeout=web.settings.slack_timeout)
    try:
        answer = client.openid_connect_token(
            client_id=web.settings.slack_client_id or "",
            client_secret=web.settings.slack_client_secret or "",
            code=code,
            redirect_uri=_redirect_uri(),
        )
        id_token = _id_token_claims(str(answer.get("id_token", "")))
        if id_token.get("aud") != web.settings.slack_client_id or id_token.get("nonce") != nonce:
            abort(403, "Slack's answer was not meant for this sign-in. Start again.")
        info = client.openid_connect_userInfo(token=str(answer["access_token"]))
    except SlackApiError as error:
        log.warning("sign-in failed: Slack said %s", error.response.get("error"))
        abort(403, f"Slack refused the sign-in ({error.response.get('error')}). Start again.")
    except OSError as error:
        log.warning("sign-in failed: Slack unreachable: %s", error)
        abort(503, "Slack could not be reached to sign you in. Try again in a minute.")
    return dict(info.data) if isinstance(info.data, dict) else {}


def _id_token_claims(id_token: str) -> dict[str, Any]:
    # Straight from Slack's token endpoint over TLS, so OpenID Connect lets the client trust its
    # signature (Core 3.1.3.7, item 6); its claims are checked, not merely decoded.
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        abort(403, "Slack's answer held no usable id token. Start again.")
    return claims if isinstance(claims, dict) else {}


@bp.get("/auth/local")
def local_sign_in() -> Response:
    web = services()
    if not web.local_sign_in:
        abort(403, "Sign in with Slack: local sign-in links are for running without Slack.")
    with web.change() as db:
        used = signins.use_local_link(db, request.args.get("token", ""))
        if used:
            _start_session(db, LOCAL_ADMIN.user_id, "local admin")
    if not used:
        log.warning("local sign-in refused: the link expired, was used already or is wrong")
        abort(403, f"This sign-in link expired, was used already or is wrong. {LOCAL_LINK_HINT}")
    log.info("signed in as the local admin")
    return redirect(url_for("pages.incident_list"))


@bp.post("/auth/sign-out")
def sign_out() -> Response:
    check_csrf()
    sid = session.get(SESSION_ID)
    if isinstance(sid, str):
        with services().change() as db:
            signins.end_session(db, sid)
        log.info("%s signed out", session.get("user_id"))
    session.clear()
    return redirect(url_for("auth.sign_in_page"))


@bp.get("/sign-in")
def sign_in_page() -> str:
    web = services()
    return render_template(
        "sign_in.html",
        slack_sign_in=web.slack_sign_in,
        local=web.local_sign_in,
        local_link_hint=LOCAL_LINK_HINT,
        next=safe_next(request.args.get("next")),
    )


def page_actor() -> Actor:
    """The signed-in person for a page; anyone else is sent to sign in and brought back."""
    actor = session_actor()
    if actor is None:
        flask_abort(redirect(url_for("auth.sign_in_page", next=request.full_path.rstrip("?"))))
    return actor
