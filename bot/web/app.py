"""The web surface's WSGI app: the REST API (/api/v1), the pages and signing in.

APIFlask (Flask with marshmallow and apispec): requests are validated by the same schemas that
generate the OpenAPI document, and it is plain WSGI, so waitress serves it beside Slack's
endpoint in one process.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any

from apiflask import APIFlask, HTTPError
from flask import Response, render_template, request, session
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from bot import incidents, logs
from bot.incidents import signins
from bot.server import WEB_MAX_BODY_BYTES, body_limit
from bot.web.errors import domain_error
from bot.web.services import WebServices, close_request_session

log = logging.getLogger("bot.web")

API_PREFIX = "/api/v1"


class AsciiIntegerConverter(IntegerConverter):
    """Werkzeug's `int` matches `\\d`, any script's digits, and int() reads them: a fullwidth
    1 (U+FF11) would be note 1. Ids are ASCII digits, as incidents.parse_incident_id reads."""

    regex = "[0-9]+"


def create_web_app(web: WebServices) -> APIFlask:
    app = APIFlask(
        "bot.web",
        title="Incident Tracker",
        version="1",
        spec_path=f"{API_PREFIX}/openapi.json",
        # The interactive docs load their scripts from a CDN; the document itself is enough.
        docs_path=None,
    )
    settings = web.settings
    secret = settings.session_secret
    if secret is None:
        secret = secrets.token_hex(32)
        log.warning(
            "SESSION_SECRET is not set: web sign-ins end when the bot restarts, and replicas "
            "would not share them"
        )
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="incident_tracker_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.public_url and settings.public_url.startswith("https")),
        # The cookie lasts as long as its session's row.
        PERMANENT_SESSION_LIFETIME=signins.SESSION_LIFETIME,
        MAX_FORM_MEMORY_SIZE=WEB_MAX_BODY_BYTES,
        VALIDATION_ERROR_STATUS_CODE=422,
    )
    # Answers keep their fields in the schemas' order, and `roles` the roles' (the lead first,
    # then INCIDENT_ROLES): Flask sorts keys by default (JSON_SORT_KEYS is no longer read).
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["incident_tracker"] = web
    app.url_map.converters["int"] = AsciiIntegerConverter

    from bot.web import api, auth, pages, reports, webhooks

    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(reports.api_bp)
    app.register_blueprint(webhooks.bp)

    @app.errorhandler(incidents.IncidentError)
    def _domain(error: incidents.IncidentError) -> Any:
        return _render_error(domain_error(error))

    @app.error_processor
    def _error(error: HTTPError) -> Any:
        return _render_error(error)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        return _render_error(HTTPError(error.code or 500, error.description))

    app.teardown_appcontext(close_request_session)

    @app.before_request
    def _limit_body() -> None:
        # The server refused larger announced bodies already; this holds for any WSGI server.
        request.max_content_length = body_limit(settings, request.path)

    @app.before_request
    def _log_ids() -> None:
        # Every line this request logs names it and who is signed in (never what it sent).
        user_id = session.get("user_id")
        logs.start_request(
            logs.request_id(request.headers.get("X-Request-ID")),
            user_id=user_id if isinstance(user_id, str) else None,
        )
        ref = (request.view_args or {}).get("incident_id")
        if ref is not None:
            with contextlib.suppress(incidents.IncidentError):  # the route says what is wrong
                logs.bind(incident_id=incidents.parse_incident_id(ref))

    @app.before_request
    def _named_parts() -> None:
        # Werkzeug reads a part whose name it can't parse (one ending in a backslash) as named
        # None, which no form field matches and no error message can be keyed by.
        if request.mimetype == "multipart/form-data" and (
            None in request.form or None in request.files
        ):
            raise HTTPError(400, "A part of the form has a name that can't be read.")

    @app.after_request
    def _not_kept(response: Response) -> Response:
        # Pages and answers show incidents and who is signed in: a shared browser or a proxy must
        # not keep them. Screenshots and charts say how long they may be kept themselves.
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.after_request
    def _not_framed(response: Response) -> Response:
        # Another site framing a page could trick a signed-in person into pressing its buttons
        # (clickjacking); X-Frame-Options for browsers that predate frame-ancestors.
        headers = response.headers
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        policy = headers.get("Content-Security-Policy")
        if policy is None:
            headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        elif "frame-ancestors" not in policy:
            headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
        return response

    @app.context_processor
    def _template_globals() -> dict[str, Any]:
        return {
            "csrf_token": auth.csrf_token,
            "viewer": auth.session_actor(),
            "incidents": incidents,
        }

    return app


def _render_error(error: HTTPError) -> Any:
    body = {"message": error.message, "detail": error.detail}
    if request.path.startswith(API_PREFIX):
        return body, error.status_code, error.headers
    return (
        render_template("error.html", status=error.status_code, message=error.message),
        error.status_code,
        error.headers,
    )
