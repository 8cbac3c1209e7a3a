"""Payload reading and replying shared by the listeners."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from bot import incidents, logs
from bot.delivery import Problem, Recipient, queue_tell
from bot.incidents import IncidentError
from bot.slack import blocks
from bot.slack.services import Services
from db.models import Status

log = logging.getLogger(__name__)


# Payloads are Slack's, verified; the values in them that the bot wrote itself (button values,
# private_metadata) or that a client fills in (view state) are still read by type, never trusted
# to have one: a wrong type reads as missing, and the domain says what is missing.


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def string(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


# Bounded so that arithmetic on it (pages, minutes) stays inside PostgreSQL's and Python's types.
_INT_LIMIT = 2**31


def integer(data: dict[str, Any], key: str) -> int | None:
    """An int, or a string of ASCII digits; None for anything else or beyond ±2**31."""
    value = data.get(key)
    # isdigit() is also true of other scripts' digits, and of "²", which int() refuses.
    digits = value.strip().lstrip("-") if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(value) < 12:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < _INT_LIMIT:
        return value
    return None


def known_status(value: str | None) -> Status | None:
    """The status a button or form was drawn with, if it names one."""
    return Status(value) if value in {status.value for status in Status} else None


def element(values: dict[str, Any], block_id: str, action_id: str | None = None) -> dict[str, Any]:
    """The state of one input element of a submitted view."""
    return as_dict(as_dict(values.get(block_id)).get(action_id or block_id))


def checked(values: dict[str, Any], block_id: str, value: str = "yes") -> bool:
    """Whether a checkboxes element of a submitted view has `value` ticked."""
    options = element(values, block_id).get("selected_options")
    return isinstance(options, list) and any(as_dict(o).get("value") == value for o in options)


def text_value(values: dict[str, Any], block_id: str) -> str | None:
    """A plain_text_input's value, as typed (view state text is not mrkdwn-escaped)."""
    return string(element(values, block_id), "value")


def selected_value(
    values: dict[str, Any], block_id: str, action_id: str | None = None
) -> str | None:
    return string(as_dict(element(values, block_id, action_id).get("selected_option")), "value")


def read_metadata(view: dict[str, Any]) -> dict[str, Any]:
    return _json_dict(view.get("private_metadata"))


def read_value(action: dict[str, Any]) -> dict[str, Any]:
    return _json_dict(action.get("value"))


def _json_dict(raw: Any) -> dict[str, Any]:
    try:
        return as_dict(json.loads(raw)) if isinstance(raw, str) and raw else {}
    except (ValueError, RecursionError):
        return {}


def modal_errors(view: dict[str, Any], field: str | None, message: str) -> dict[str, str]:
    """`response_action: errors` keyed on the input block the error is about (or the first)."""
    blocks = view.get("blocks") if isinstance(view.get("blocks"), list) else []
    input_blocks = [
        string(block, "block_id") for block in map(as_dict, blocks) if block.get("type") == "input"
    ]
    block_id = field if field in input_blocks else (input_blocks or [field])[0]
    return {str(block_id): message}


def _where(body: dict[str, Any]) -> str | None:
    """The channel a button was clicked in (a message's), if any."""
    return string(as_dict(body.get("channel")), "id") or string(
        as_dict(body.get("container")), "channel_id"
    )


def _below(body: dict[str, Any]) -> Recipient:
    """An answer below the (ephemeral) message the button was on, through its response_url."""
    return Recipient(body["user"]["id"], _where(body), string(body, "response_url"))


def bind(services: Services, handler: Callable[..., Any]) -> Callable[..., Any]:
    """`handler` with `services` given: the module-level handlers take it first, and Bolt fills
    in the rest (ack, body, client...) by name."""
    bound = functools.partial(handler, services)
    bound.__name__ = handler.__name__  # type: ignore[attr-defined]  # Bolt's logs name listeners
    return bound


# --- The request path: validate and commit, ack, then the rest as work ---------------------------

BUSY = "The incident bot is busy right now. Please try again in a moment."


T = TypeVar("T")


class Refusal(Exception):
    """The change was not made; `str()` is the sentence to show, `field` the form input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def save(services: Services, change: Callable[[Session], T]) -> T:
    """Validate and commit `change` before the ack that confirms it (acked means saved).

    `change` returns plain values (ids, text), read before the commit. A rule that says no, a
    busy incident or an unreachable database becomes a Refusal with the sentence to show.
    """
    try:
        with services.change() as session:
            return change(session)
    except IncidentError as error:
        raise Refusal(str(error), getattr(error, "field", None)) from error
    except OperationalError as error:
        log.warning("a change was not saved: %s", error)
        raise Refusal(database_trouble(error)) from error


def press(
    services: Services,
    ack: Ack,
    change: Callable[[Session], T],
    to: Recipient,
    *,
    refused_blocks: Callable[[Refusal], list[dict[str, Any]] | None] | None = None,
) -> T | None:
    """A button's change: saved, then acked (Slack ignores the body of a button's ack); None
    when it was refused.

    The refusal is told to `to`, escaped, as an outbox row written before the ack: the refused
    change committed nothing for the row to join, so it gets a short transaction of its own
    (bounded like the change's), and a bot that dies right after the ack still tells it. A
    confirmation is the change's own business: `change` queues it in its transaction.
    `refused_blocks` may lay the refusal out with a button (the close rule's "Close anyway")."""
    try:
        result = save(services, change)
    except Refusal as refusal:
        text = blocks.escape(str(refusal))
        shown = refused_blocks(refusal) if refused_blocks is not None else None
        row = told(services, to, text, blocks=shown, bounded=True)
        ack()
        services.work.submit(send_told, services, to, text, row)
        return None
    ack()
    return result


def database_trouble(error: OperationalError) -> str:
    if incidents.is_busy(error):  # the ack path's timeouts (Services.change)
        return str(incidents.Busy())
    # The failure may have come during the commit: never claim that nothing changed, or a
    # resubmission would store the change twice.
    return (
        "The incident database stopped answering, so that may not have been saved. "
        "Check with `/incident show <id>` before you try again."
    )


def failure_message(error: Exception) -> str:
    """What to tell a person whose request failed in an unexpected way (it is logged)."""
    if isinstance(error, SlackApiError):
        return (
            f"Slack refused a step of that ({error.response.get('error')}). Anything you "
            "had already saved is kept; please try again."
        )
    if isinstance(error, OperationalError):
        return database_trouble(error)
    return (
        "Something went wrong on our side (it is logged). `/incident show <id>` shows what "
        "was saved."
    )


def later(
    services: Services,
    client: WebClient,
    user_id: str,
    channel_id: str | None,
    job: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> bool:
    """Run `job(services, client, *args, **kwargs)` after the ack, on the work queue; a failure
    is told to the person. False when the queue is full: the caller's ack says the bot is busy.
    """

    @functools.wraps(job)
    def run() -> None:
        try:
            job(services, client, *args, **kwargs)
        except Exception as error:
            name = getattr(job, "__name__", type(job).__name__)
            log.error("%s for %s failed: %r", name, user_id, error, exc_info=error)
            tell_user(services, user_id, channel_id, f"⚠️ {blocks.escape(failure_message(error))}")

    return services.work.submit(run)


def deliver_later(
    services: Services,
    client: WebClient,
    incident_id: int | None,
    user_id: str,
    channel_id: str | None,
) -> None:
    """Send a committed change's Slack updates after the ack. With the work queue full, the
    delivery worker sends them: the rows are in the outbox either way."""
    logs.bind(incident_id=incident_id)
    later(
        services,
        client,
        user_id,
        channel_id,
        deliver_and_report,
        incident_id,
        user_id,
        channel_id,
    )


def tell_user(
    services: Services,
    user_id: str,
    channel_id: str | None,
    text: str,
    *,
    incident_id: int | None = None,
) -> None:
    """Tell the person (mrkdwn `text`) ephemerally where they are, or else by a DM from the app;
    from work that follows the ack: queued in the outbox, then sent at once."""
    to = Recipient(user_id, channel_id)
    send_told(services, to, text, told(services, to, text, incident_id=incident_id))


def told(
    services: Services,
    to: Recipient,
    text: str,
    *,
    incident_id: int | None = None,
    bounded: bool = False,
    blocks: list[dict[str, Any]] | None = None,
) -> int | None:
    """The outbox row that tells `to`, committed in a transaction of its own; None when the
    database can't take it (`bounded`: within the ack path's time limits)."""
    try:
        with services.change() if bounded else services.sessions.begin() as session:
            return queue_tell(session, to, text, blocks=blocks, incident_id=incident_id).id
    except SQLAlchemyError as error:
        log.warning("could not queue what %s is told: %s", to.user_id, error)
        return None


def send_told(services: Services, to: Recipient, text: str, row: int | None) -> None:
    """Send the row now (the delivery worker, woken, sends it if this can't). Without a row the
    database is what failed, and may be what the person is told: then Slack is told directly,
    at least once."""
    if row is None:
        tell_directly(services.deliverer.client, to.user_id, to.channel_id, text)
        return
    services.deliverer.wake()
    try:
        # Two steps at most: an ephemeral message Slack can't show becomes a DM, due at once.
        services.deliverer.drain(delivery_id=row, limit=2)
    except SQLAlchemyError as error:
        log.warning("what %s is told waits for the delivery worker: %s", to.user_id, error)


def tell_directly(client: WebClient, user_id: str, channel_id: str | None, text: str) -> None:
    """An ephemeral message where the user is, or a DM from the app when that is not possible."""
    if channel_id:
        try:
            client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)
            return
        except SlackApiError as error:
            log.info("ephemeral to %s in %s failed (%s); sending a DM", user_id, channel_id, error)
    try:
        client.chat_postMessage(channel=user_id, text=text)
    except SlackApiError as error:
        log.warning("could not tell %s: %s (%s)", user_id, text, error.response.get("error"))


def explain_problems(problems: list[Problem]) -> str | None:
    """One message for what the user may need to know about undelivered updates."""
    lines = list(dict.fromkeys(p.explain() for p in problems))
    return "\n".join(f"⚠️ {line}" for line in lines) or None


def deliver_now(services: Services, incident_id: int | None) -> str | None:
    """Send the incident's queued Slack updates now; what the user must know, if anything.

    Runs after the change was committed: a database failure here loses nothing (the delivery worker
    sends the rows later) and must not reach the error handler, which could not tell the user
    that the change itself was saved.
    """
    logs.bind(incident_id=incident_id)
    try:
        result = services.deliverer.drain(incident_id=incident_id)
    except SQLAlchemyError as error:
        log.warning(
            "INC-%s: saved, but its Slack updates wait for the delivery worker: %s",
            incident_id,
            error,
        )
        return None
    return explain_problems(result.problems)


def deliver_and_report(
    services: Services,
    client: WebClient,
    incident_id: int | None,
    user_id: str,
    channel_id: str | None,
) -> None:
    """Send the incident's queued Slack updates now; tell the user if any did not go through."""
    message = deliver_now(services, incident_id)
    if message:
        tell_user(services, user_id, channel_id, message, incident_id=incident_id)


def unescaped(text: str | None) -> str:
    return blocks.unescape(text or "")


def permalink_of(client: WebClient, channel: str | None, ts: str | None) -> str | None:
    """A message's permalink from Slack (never built by hand: hosts differ on Grid, GovSlack)."""
    if not channel or not ts:
        return None
    try:
        return client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
    except SlackApiError as error:
        log.info("no permalink for %s/%s: %s", channel, ts, error.response.get("error"))
        return None
