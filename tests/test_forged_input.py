"""Signed requests carrying values no Slack client would send, and careless input.

Button values and private_metadata are the bot's own, echoed back by Slack; view state is
filled in by a client. Each forged or broken value is refused with a clear message, or handled;
none gives a 500, a silent 404 or "Something went wrong".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from sqlalchemy import Engine, event, select

from db.models import Delivery, EventKind, Incident, IncidentEvent, Status
from tests.fakeslack import defaults, payloads
from tests.slackbot import ADMIN_ID, Bot
from tests.test_slack_interactions import (
    declare,
    events,
    load,
    notices,
    open_declare,
    open_from_card,
    open_timeline_modal,
    submit,
)

USER = defaults.USER_ID
CHANNEL = defaults.CHANNEL_ID
GENERIC = ("Something went wrong", "nothing was changed")


def press(
    bot: Bot, action_id: str, value: Any, *, user_id: str = USER
) -> tuple[int, str, str | None]:
    """A button with `value` (JSON-encoded unless it is a string); status, body, response_url."""
    raw = value if isinstance(value, str) else json.dumps(value)
    payload = payloads.block_actions(
        payloads.action(action_id, block_id="forged", value=raw),
        fake=bot.fake,
        channel_id=CHANNEL,
        user_id=user_id,
    )
    status, _, body = bot.post(payload)
    return status, body, payload.get("response_url")


def told(bot: Bot, user_id: str, seen: int) -> str:
    """The next thing told to `user_id` (ephemeral or DM) after the first `seen`."""
    bot.fake.wait_for(lambda: len(notices(bot.fake, user_id)) > seen)
    text = notices(bot.fake, user_id)[seen]
    assert not any(phrase in text for phrase in GENERIC), text
    return text


def answered(bot: Bot, response_url: str | None) -> str:
    assert response_url is not None
    posts = bot.fake.wait_for(lambda: bot.fake.responses(response_url))
    text = str(posts[0]["text"])
    assert not any(phrase in text for phrase in GENERIC), text
    return text


def notes(bot: Bot) -> list[str | None]:
    with bot.sessions() as session:
        return list(
            session.scalars(select(IncidentEvent.text).where(IncidentEvent.kind == EventKind.NOTE))
        )


@pytest.fixture
def incident(slackbot: Bot) -> int:
    return declare(slackbot, "Checkout is failing", "SEV2")


# --- Button values -----------------------------------------------------------------------------

FORGED_IDS = [
    "not json",
    "[1]",
    '"INC-1"',
    {"id": [1]},
    {"id": {"number": 1}},
    {"id": True},
    {"id": 99_999_999_999},
    {"id": -1},
    {"id": None},
    {"id": "1; DROP TABLE incidents"},
    {},
]


@pytest.mark.parametrize("value", FORGED_IDS, ids=str)
@pytest.mark.parametrize(
    "action_id", ["incident_status:mitigated", "incident_add_note", "incident_edit"]
)
def test_a_card_button_with_a_forged_incident_id_gets_a_clear_message(
    slackbot: Bot, incident: int, action_id: str, value: Any
) -> None:
    before = load(slackbot, incident).updated_at
    seen = len(notices(slackbot.fake, USER))
    forms = len(slackbot.fake.calls_to("views.open"))

    status, body, _ = press(slackbot, action_id, value)

    assert (status, body) == (200, "")
    assert "is not an incident id" in told(slackbot, USER, seen)
    assert load(slackbot, incident).updated_at == before
    assert len(slackbot.fake.calls_to("views.open")) == forms  # no form opened


def test_a_status_button_whose_seen_status_is_forged_still_changes_the_status(
    slackbot: Bot, incident: int
) -> None:
    seen = len(notices(slackbot.fake, USER))
    status, _, _ = press(slackbot, "incident_status:mitigated", {"id": incident, "status": [1]})
    assert status == 200
    slackbot.fake.wait_for(lambda: load(slackbot, incident).status == Status.MITIGATED)
    assert len(notices(slackbot.fake, USER)) == seen  # nothing went wrong to tell


@pytest.mark.parametrize("minutes", ["abc", 10**30, -5, 0, None, [60]], ids=str)
def test_a_snooze_button_with_a_forged_length_is_refused(
    slackbot: Bot, incident: int, minutes: Any
) -> None:
    seen = len(notices(slackbot.fake, USER))
    status, _, _ = press(
        slackbot, "incident_snooze_reminders:60", {"id": incident, "minutes": minutes}
    )
    assert status == 200
    assert "snoozed for a minute to a week" in told(slackbot, USER, seen)
    assert [e.kind for e in events(slackbot, incident)] == [EventKind.CREATED]


@pytest.mark.parametrize("page", ["x", 10**30, [2], None], ids=str)
def test_a_list_page_button_with_a_forged_page_lists_the_first_page(
    slackbot: Bot, incident: int, page: Any
) -> None:
    status, _, response_url = press(slackbot, "incident_list_page:next", {"q": "all", "page": page})
    assert status == 200
    text = answered(slackbot, response_url)
    assert text == "1 incident"


def test_a_list_page_button_with_a_negative_page_gets_a_clear_message(
    slackbot: Bot, incident: int
) -> None:
    status, _, response_url = press(slackbot, "incident_list_page:prev", {"q": "all", "page": -4})
    assert status == 200
    assert answered(slackbot, response_url) == "Pages are numbered from 1 to 10,000,000."


def test_a_list_page_button_with_a_forged_filter_gets_a_clear_message(
    slackbot: Bot, incident: int
) -> None:
    status, _, response_url = press(
        slackbot, "incident_list_page:next", {"q": "service:a\x00b", "page": 2}
    )
    assert status == 200
    assert "NUL" in answered(slackbot, response_url)


@pytest.mark.parametrize("note", ["abc", [1], None, 10**30], ids=str)
def test_a_note_delete_button_with_a_forged_note_id_is_refused(
    slackbot: Bot, incident: int, note: Any
) -> None:
    status, _, response_url = press(
        slackbot, "incident_delete_note", {"id": incident, "note": note}
    )
    assert status == 200
    assert answered(slackbot, response_url) == "That is not a note of any incident."


@pytest.mark.parametrize("shot", ["abc", {"id": 1}, None], ids=str)
def test_a_screenshot_delete_button_with_a_forged_id_is_refused(
    slackbot: Bot, incident: int, shot: Any
) -> None:
    status, _, response_url = press(
        slackbot, "incident_delete_screenshot", {"id": incident, "screenshot": shot}
    )
    assert status == 200
    assert "not a screenshot" in answered(slackbot, response_url)


def test_an_admin_delete_naming_the_incident_as_inc_n_reports_its_success(
    slackbot: Bot, incident: int
) -> None:
    status, _, response_url = press(
        slackbot, "incident_delete", {"id": f"INC-{incident}"}, user_id=ADMIN_ID
    )

    assert status == 200
    assert answered(slackbot, response_url) == f"Deleted INC-{incident} (Checkout is failing)."
    with slackbot.sessions() as session:
        assert session.get(Incident, incident) is None


def test_a_delete_button_with_a_forged_id_deletes_nothing(slackbot: Bot, incident: int) -> None:
    status, _, response_url = press(
        slackbot, "incident_delete", {"id": [incident]}, user_id=ADMIN_ID
    )
    assert status == 200
    assert "is not an incident id" in answered(slackbot, response_url)
    assert load(slackbot, incident).title == "Checkout is failing"


# --- Forms: private_metadata and state values --------------------------------------------------


def forged(view: dict[str, Any], metadata: Any) -> dict[str, Any]:
    raw = metadata if isinstance(metadata, str) else json.dumps(metadata)
    return {**view, "private_metadata": raw}


@pytest.mark.parametrize(
    "metadata", ["not json", "[]", {"id": [1]}, {"id": None}, {"id": "nine"}], ids=str
)
def test_a_note_form_with_forged_metadata_is_refused_inline(
    slackbot: Bot, incident: int, metadata: Any
) -> None:
    modal = open_from_card(slackbot, incident, "incident_add_note")

    answer = submit(slackbot, forged(modal, metadata), {"note": "Rolled back"})

    assert answer is not None and answer["response_action"] == "errors"
    assert "is not an incident id" in answer["errors"]["note"]
    assert notes(slackbot) == []


@pytest.mark.parametrize("shown", [[1, 2], {"title": 5}, "title", {"title": None}], ids=str)
def test_an_edit_form_with_forged_metadata_is_refused_inline(
    slackbot: Bot, incident: int, shown: Any
) -> None:
    modal = open_from_card(slackbot, incident, "incident_edit")
    metadata = {**json.loads(modal["private_metadata"]), "h": shown}

    answer = submit(slackbot, forged(modal, metadata), {"title": "Changed title"})

    assert answer is not None and answer["response_action"] == "errors"
    assert "not valid any more" in " ".join(answer["errors"].values())
    assert load(slackbot, incident).title == "Checkout is failing"


def test_an_edit_form_naming_a_field_that_cannot_be_edited_is_refused_inline(
    slackbot: Bot, incident: int
) -> None:
    modal = open_from_card(slackbot, incident, "incident_edit")
    metadata = {**json.loads(modal["private_metadata"]), "h": {"reporter": "x"}}

    answer = submit(slackbot, forged(modal, metadata), {})

    assert answer is not None and "can't be edited" in " ".join(answer["errors"].values())


@pytest.mark.parametrize(
    "change", [{"to": 5}, {"to": "sideways"}, {"status": [1], "to": "resolved"}], ids=str
)
def test_a_resolve_form_with_forged_metadata_is_refused_or_handled(
    slackbot: Bot, incident: int, change: dict[str, Any]
) -> None:
    modal = open_from_card(slackbot, incident, "incident_status:resolved")
    metadata = {**json.loads(modal["private_metadata"]), **change}

    answer = submit(slackbot, forged(modal, metadata), {"resolution": "Rolled back"})

    if change.get("to") == "resolved":  # only the status it was drawn with is forged: ignored
        assert answer is None
        slackbot.fake.wait_for(lambda: load(slackbot, incident).status == Status.RESOLVED)
    else:
        assert answer is not None and "Unknown status" in " ".join(answer["errors"].values())
        assert load(slackbot, incident).status == Status.OPEN


@pytest.mark.parametrize(
    "ts",
    ["1e11", "99999999999.000000", "nan", "inf", "1.5", "0000000001.000000", "-1", ""],
)
def test_a_timeline_note_with_a_forged_message_time_is_refused_inline(
    slackbot: Bot, incident: int, ts: str
) -> None:
    modal = open_timeline_modal(slackbot, slackbot.fake.add_message(CHANNEL, "It is back"))
    metadata = {**json.loads(modal["private_metadata"]), "ts": ts}

    answer = submit(slackbot, forged(modal, metadata), {"incident_picker": str(incident)})

    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["note"]
    assert notes(slackbot) == []


def test_a_timeline_note_at_a_real_message_time_is_kept(slackbot: Bot, incident: int) -> None:
    said = slackbot.fake.add_message(CHANNEL, "It is back")
    modal = open_timeline_modal(slackbot, said)
    assert submit(slackbot, modal, {"incident_picker": str(incident)}) is None
    slackbot.fake.wait_for(lambda: notes(slackbot) == ["It is back"])


@pytest.mark.parametrize("channel", [USER, "D0DMCHAN001", "<!channel>", "C0nope!"])
def test_a_declare_form_naming_a_person_or_a_dm_as_the_channel_is_refused(
    slackbot: Bot, channel: str
) -> None:
    modal = open_declare(slackbot)
    answer = submit_values(
        slackbot,
        modal,
        {"title": "Checkout is failing", "severity": "SEV2"},
        {"channel": {"type": "conversations_select", "selected_conversation": channel}},
    )

    assert answer is not None and list(answer["errors"]) == ["channel"]
    assert count(slackbot, Incident) == 0
    assert slackbot.fake.messages(channel) == []


@pytest.mark.parametrize("owner", ["<!channel>", "<!here>", "@everyone", "U0BOB|x"])
def test_a_declare_form_whose_owner_is_not_a_person_is_refused(slackbot: Bot, owner: str) -> None:
    modal = open_declare(slackbot)
    answer = submit_values(
        slackbot,
        modal,
        {"title": "Checkout is failing", "severity": "SEV2"},
        {"owner": {"type": "users_select", "selected_user": owner}},
    )

    assert answer is not None and list(answer["errors"]) == ["owner"]
    assert "must be a person" in answer["errors"]["owner"]
    assert count(slackbot, Incident) == 0


@pytest.mark.parametrize("state", ["just a string", ["a"], None, 5], ids=str)
def test_a_declare_form_whose_state_has_the_wrong_shape_is_refused_inline(
    slackbot: Bot, state: Any
) -> None:
    modal = open_declare(slackbot)
    answer = submit_values(slackbot, modal, {"severity": "SEV2"}, {"title": state})

    assert answer is not None and "Title must be at least 3 characters" in answer["errors"]["title"]
    assert count(slackbot, Incident) == 0


def test_an_attach_form_whose_files_are_forged_is_refused_inline(
    slackbot: Bot, incident: int
) -> None:
    said = slackbot.fake.add_message(CHANNEL, "graph", files=[{"id": "F0GRAPH0001"}])
    previous = slackbot.fake.top_view(USER)
    slackbot.post(
        payloads.message_shortcut(
            "attach_screenshots", said, fake=slackbot.fake, channel_id=CHANNEL
        )
    )
    modal = slackbot.fake.wait_for(
        lambda: (v := slackbot.fake.top_view(USER)) is not None and v != previous and v
    )
    metadata = {**json.loads(modal["private_metadata"]), "files": "F0GRAPH0001"}

    answer = submit(slackbot, forged(modal, metadata), {"incident_picker": str(incident)})

    assert answer is not None and "not valid any more" in " ".join(answer["errors"].values())
    assert slackbot.fake.calls_to("files.info") == []


def submit_values(
    bot: Bot, view: dict[str, Any], inputs: dict[str, Any], raw: dict[str, Any]
) -> dict[str, Any] | None:
    """Submit with some state values replaced by `raw` (keyed by block_id, as the element)."""
    payload = payloads.view_submission(view, inputs, fake=bot.fake)
    for block_id, value in raw.items():
        payload["view"]["state"]["values"][block_id] = (
            {block_id: value} if isinstance(value, dict) else value
        )
    status, _, body = bot.post(payload)
    assert status == 200, body
    return json.loads(body) if body else None


def count(bot: Bot, model: type) -> int:
    with bot.sessions() as session:
        return len(session.scalars(select(model)).all())


# --- NUL in searches, filters and the type-ahead ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("list checkout\x00down", "The search contains a NUL character"),
        ("list service:pay\x00ments", "The service filter contains a NUL character"),
        ("list category:out\x00age", "The category filter contains a NUL character"),
    ],
)
def test_a_nul_in_a_list_command_gets_a_clear_message(
    slackbot: Bot, incident: int, text: str, says: str
) -> None:
    command = payloads.slash_command("/incident", text, fake=slackbot.fake)
    assert slackbot.post(command)[0] == 200
    posts = slackbot.fake.wait_for(lambda: slackbot.fake.responses(command["response_url"]))
    assert says in posts[0]["text"]
    assert not any(phrase in posts[0]["text"] for phrase in GENERIC)


def test_a_nul_in_the_incident_pickers_type_ahead_offers_nothing(
    slackbot: Bot, incident: int
) -> None:
    modal = open_timeline_modal(slackbot, slackbot.fake.add_message(CHANNEL, "It is back"))
    status, _, body = slackbot.post(
        payloads.block_suggestion("incident_picker", "check\x00out", view=modal)
    )
    assert (status, json.loads(body)) == (200, {"options": []})


# --- A database error after the commit never claims that nothing changed -----------------------


@pytest.fixture
def deliveries_fail(engine: Engine) -> Iterator[None]:
    """The database drops the outbox worker's claim, as a server restart would mid-request."""

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM deliveries" in statement and "SKIP LOCKED" in statement:
            raise psycopg2.OperationalError("server closed the connection unexpectedly")

    event.listen(engine, "before_cursor_execute", fail)
    yield
    event.remove(engine, "before_cursor_execute", fail)


def test_a_database_error_after_a_note_command_was_saved_is_not_reported_as_nothing_saved(
    slackbot: Bot, incident: int, deliveries_fail: None, caplog: pytest.LogCaptureFixture
) -> None:
    command = payloads.slash_command(
        "/incident", f"note {incident} Rolled back", fake=slackbot.fake
    )
    status, _, body = slackbot.post(command)

    assert (status, body) == (200, f"Note added to INC-{incident}.")
    assert notes(slackbot) == ["Rolled back"]
    slackbot.fake.wait_for(lambda: "its Slack updates wait for the delivery worker" in caplog.text)
    # The thread reply waits in the outbox for the delivery worker; the user was not told otherwise.
    with slackbot.sessions() as session:
        waiting = session.scalars(
            select(Delivery).where(
                Delivery.incident_id == incident, Delivery.delivered_at.is_(None)
            )
        ).all()
    assert waiting
    assert [n for n in notices(slackbot.fake, USER) if "⚠️" in n] == []


def test_a_database_error_after_a_note_form_was_saved_closes_the_form_quietly(
    slackbot: Bot, incident: int, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    modal = open_from_card(slackbot, incident, "incident_add_note")
    seen = len(notices(slackbot.fake, USER))

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM deliveries" in statement and "SKIP LOCKED" in statement:
            raise psycopg2.OperationalError("server closed the connection unexpectedly")

    event.listen(engine, "before_cursor_execute", fail)
    try:
        assert submit(slackbot, modal, {"note": "Rolled back"}) is None
        assert notes(slackbot) == ["Rolled back"]  # saved before the ack
        slackbot.fake.wait_for(
            lambda: "its Slack updates wait for the delivery worker" in caplog.text
        )
    finally:
        event.remove(engine, "before_cursor_execute", fail)
    assert notices(slackbot.fake, USER)[seen:] == []


def test_a_database_error_before_the_commit_says_the_change_may_not_be_saved(
    slackbot: Bot, incident: int, engine: Engine
) -> None:
    seen = len(notices(slackbot.fake, USER))

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO incident_events"):
            raise psycopg2.OperationalError("server closed the connection unexpectedly")

    event.listen(engine, "before_cursor_execute", fail)
    try:
        command = payloads.slash_command(
            "/incident", f"note {incident} Rolled back", fake=slackbot.fake
        )
        status, _, text = slackbot.post(command)
    finally:
        event.remove(engine, "before_cursor_execute", fail)

    assert status == 200  # answered in the ack: the change was not confirmed
    assert len(notices(slackbot.fake, USER)) == seen
    assert "may not have been saved" in text
    assert "nothing was changed" not in text
    assert notes(slackbot) == []
