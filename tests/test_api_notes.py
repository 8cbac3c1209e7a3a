"""The REST API's notes and timeline (/api/v1/incidents/{id}/notes, /timeline)."""

from __future__ import annotations

import pytest

from tests.slackbot import ADMIN_ID, Bot
from tests.test_api import Caller, error_of, person_caller, token_caller


@pytest.fixture
def tool(slackbot: Bot) -> Caller:
    return token_caller(slackbot)


def test_notes_are_added_listed_oldest_first_and_attributed(slackbot: Bot, tool: Caller):
    number = tool.declare()["id"]
    person = person_caller(slackbot)
    added = tool.post(f"/incidents/INC-{number}/notes", json={"text": "  Rolled back v42  "})
    assert added.status_code == 201
    note = added.get_json()
    assert (note["text"], note["incident_id"], note["actor"]) == (
        "Rolled back v42",
        number,
        tool.actor,
    )
    assert note["actor_label"] == f"API token {tool.actor.removeprefix('token:')}"
    assert person.post(f"/incidents/{number}/notes", json={"text": "Watching"}).status_code == 201
    listed = tool.get(f"/incidents/{number}/notes").get_json()["items"]
    assert [(n["text"], n["actor"], n["actor_label"]) for n in listed] == [
        ("Rolled back v42", tool.actor, note["actor_label"]),
        ("Watching", person.actor, None),
    ]
    assert listed[0] == note


BAD_NOTES: list[tuple[dict[str, object], str]] = [
    ({}, "text"),
    ({"text": "   "}, "A note needs some text."),
    ({"text": "n" * 3_001}, "Note is too long"),
    ({"text": "a\x00b"}, "NUL"),
    ({"text": "ok", "pinned": True}, "Unknown field"),
    ({"text": 5}, "Not a valid string"),
]


def test_a_bad_note_is_refused_and_not_kept(tool: Caller):
    number = tool.declare()["id"]
    for body, says in BAD_NOTES:
        answer = tool.post(f"/incidents/{number}/notes", json=body)
        assert answer.status_code == 422, body
        assert says in str(answer.get_json()), body
    assert tool.get(f"/incidents/{number}/notes").get_json()["items"] == []
    # Notes of a missing incident.
    assert tool.get("/incidents/INC-999999/notes").status_code == 404
    assert tool.post("/incidents/999999/notes", json={"text": "hello"}).status_code == 404
    assert tool.get("/incidents/999999/timeline").status_code == 404
    assert tool.delete("/incidents/999999/notes/1").status_code == 404


def test_a_note_is_deleted_by_its_author_or_an_admin_only(slackbot: Bot, tool: Caller):
    number = tool.declare()["id"]
    other = token_caller(slackbot)
    admin = person_caller(slackbot, ADMIN_ID)
    first = tool.post(f"/incidents/{number}/notes", json={"text": "first"}).get_json()["id"]
    second = tool.post(f"/incidents/{number}/notes", json={"text": "second"}).get_json()["id"]
    refused = other.delete(f"/incidents/{number}/notes/{first}")
    assert refused.status_code == 403
    assert error_of(refused) == "Only the note's author or an incident admin can delete it."
    assert tool.delete(f"/incidents/{number}/notes/{first}").status_code == 204
    assert admin.delete(f"/incidents/{number}/notes/{second}").status_code == 204
    assert tool.get(f"/incidents/{number}/notes").get_json()["items"] == []
    gone = tool.delete(f"/incidents/{number}/notes/{first}")
    assert gone.status_code == 404 and "already deleted" in error_of(gone)
    assert tool.delete(f"/incidents/{number}/notes/999999").status_code == 404
    assert tool.delete(f"/incidents/{number}/notes/99999999999999999999").status_code == 404
    assert tool.delete(f"/incidents/{number}/notes/abc").status_code == 404
    # The timeline keeps that they existed, and who removed them.
    events = tool.get(f"/incidents/{number}/timeline").get_json()["items"]
    notes = [e for e in events if e["kind"] == "note"]
    assert [(n["text"], n["deleted_by"]) for n in notes] == [(None, tool.actor), (None, ADMIN_ID)]
    assert all(n["deleted_at"] for n in notes)
    # Only through its own incident.
    mine, other = number, tool.declare()["id"]
    note = tool.post(f"/incidents/{other}/notes", json={"text": "on the other one"}).get_json()
    wrong = tool.delete(f"/incidents/{mine}/notes/{note['id']}")
    assert wrong.status_code == 404
    assert error_of(wrong) == f"INC-{mine} has no note {note['id']}."
    assert tool.get(f"/incidents/{other}/notes").get_json()["items"] == [note]
    kinds = [e["kind"] for e in tool.get(f"/incidents/{other}/timeline").get_json()["items"]]
    assert kinds == ["created", "note"]


def test_the_timeline_has_every_event_oldest_first_with_who(slackbot: Bot, tool: Caller):
    number = tool.declare()["id"]
    person = person_caller(slackbot)
    tool.post(f"/incidents/{number}/status", json={"status": "investigating", "note": "on it"})
    person.patch(f"/incidents/{number}", json={"service": "checkout"})
    events = tool.get(f"/incidents/INC-{number}/timeline").get_json()["items"]
    label = f"API token {tool.actor.removeprefix('token:')}"
    assert [(e["kind"], e["actor"], e["actor_label"]) for e in events] == [
        ("created", tool.actor, label),
        ("status_changed", tool.actor, label),
        ("field_changed", person.actor, None),
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert events[1]["text"] == "on it"
    assert (events[2]["field"], events[2]["from_value"], events[2]["to_value"]) == (
        "service",
        None,
        "checkout",
    )
