"""What tests say fixed an incident they resolve: the domain asks every surface for one."""

from __future__ import annotations

from bot import incidents
from db.models import Status

FIXED = "Rolled back the deploy."


def resolution(status: str | Status) -> str | None:
    """The resolution to send with a move to `status` (None where a move there resolves
    nothing)."""
    return FIXED if incidents.parse_status(status) in (Status.RESOLVED, Status.CLOSED) else None
