"""The domain's refusals as HTTP errors, for the API's JSON and the pages alike."""

from __future__ import annotations

from apiflask import HTTPError

from bot import incidents

# The domain's refusals and the status each gets.
_DOMAIN_STATUS: dict[type[incidents.IncidentError], int] = {
    incidents.NotFound: 404,
    incidents.PermissionDenied: 403,
    incidents.TransitionNotAllowed: 409,
    incidents.Conflict: 409,
    incidents.InvalidInput: 422,
    incidents.Busy: 503,
}
# A busy incident is usually free again within a lock timeout or two.
RETRY_AFTER_BUSY = "2"


def domain_error(error: incidents.IncidentError) -> HTTPError:
    """A domain refusal as an HTTP error: its sentence, the right status and the field."""
    status = next((s for kind, s in _DOMAIN_STATUS.items() if isinstance(error, kind)), 400)
    field = getattr(error, "field", None)
    headers = {"Retry-After": RETRY_AFTER_BUSY} if isinstance(error, incidents.Busy) else None
    return HTTPError(status, str(error), detail={"field": field} if field else {}, headers=headers)
