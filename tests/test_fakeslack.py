"""The fake Slack behaves like Slack where the app's tests depend on it.

Everything goes through the real slack_sdk WebClient, bolt's App, its WSGI adapter and the
builtin Socket Mode client; nothing here sleeps.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    FixedValueRetryIntervalCalculator,
    RateLimitErrorRetryHandler,
    builtin_handlers,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from tests.fakeslack import (
    FakeSlack,
    SlackError,
    payloads,
    post_payload,
    post_signed,
    serve_bolt_app,
    server,
)
from tests.fakeslack.defaults import (
    APP_TOKEN,
    BOT_USER_ID,
    CHANNEL_ID,
    SIGNING_SECRET,
    USER_ID,
)

TS = re.compile(r"^\d{10}\.\d{6}$")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def api_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return excinfo.value.response["error"]


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def get(url: str, token: str | None = None) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with NO_PROXY.open(urllib.request.Request(url, headers=headers), timeout=5) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def incident_modal(**overrides: Any) -> dict[str, Any]:
    view = {
        "type": "modal",
        "callback_id": "new_incident",
        "title": {"type": "plain_text", "text": "New incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "private_metadata": json.dumps({"channel_id": CHANNEL_ID}),
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "title"},
            },
            {
                "type": "input",
                "block_id": "severity",
                "label": {"type": "plain_text", "text": "Severity"},
                "element": {
                    "type": "static_select",
                    "action_id": "severity",
                    "options": [
                        {"text": {"type": "plain_text", "text": s.upper()}, "value": s}
                        for s in ("sev1", "sev2", "sev3")
                    ],
                },
            },
            {
                "type": "input",
                "block_id": "lead",
                "optional": True,
                "label": {"type": "plain_text", "text": "Lead"},
                "element": {"type": "users_select", "action_id": "lead"},
            },
        ],
    }
    view.update(overrides)
    return view


# ---------------------------------------------------------------------- auth & basics
def test_auth_test_is_consistent_and_tokens_are_checked(fake: FakeSlack) -> None:
    info = fake.client().auth_test()
    assert (info["user_id"], info["bot_id"], info["team_id"]) == (
        fake.bot_user_id,
        fake.bot_id,
        fake.team_id,
    )
    assert info["url"] == fake.base_url + "/"

    with pytest.raises(SlackApiError) as missing:
        fake.client(token=None).chat_postMessage(channel=CHANNEL_ID, text="x")
    assert api_error(missing) == "not_authed"
    with pytest.raises(SlackApiError) as wrong:
        fake.client(token="xoxb-wrong").chat_postMessage(channel=CHANNEL_ID, text="x")
    assert api_error(wrong) == "invalid_auth"
    with pytest.raises(SlackApiError) as app_token:
        fake.client(token=APP_TOKEN).chat_postMessage(channel=CHANNEL_ID, text="x")
    assert api_error(app_token) == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as bot_for_socket:
        fake.client().apps_connections_open(app_token=fake.bot_token)
    assert api_error(bot_for_socket) == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as unknown:
        fake.client().api_call("incidents.frobnicate")
    assert api_error(unknown) == "unknown_method"
    assert [m for m, _ in fake.calls][:2] == ["auth.test", "chat.postMessage"]


def test_get_and_form_bodies_are_parsed(fake: FakeSlack) -> None:
    status, ctype, body = get(f"{fake.api_url}users.info?user={USER_ID}", fake.bot_token)
    assert status == 200 and ctype.startswith("application/json")
    assert json.loads(body)["user"]["id"] == USER_ID
    # Form-encoded with a JSON-string `blocks` field, as older clients send it.
    form = f"channel={CHANNEL_ID}&text=hi&blocks=" + urllib.parse.quote(json.dumps([section("x")]))
    request = urllib.request.Request(
        fake.api_url + "chat.postMessage",
        data=form.encode(),
        headers={"Authorization": f"Bearer {fake.bot_token}"},
    )
    with NO_PROXY.open(request, timeout=5) as resp:
        assert json.loads(resp.read())["ok"] is True
    assert fake.calls_to("chat.postMessage")[0]["blocks"][0]["type"] == "section"


def test_missing_scope_is_reported_like_slack(fake: FakeSlack) -> None:
    fake.scopes.discard("users:read")
    with pytest.raises(SlackApiError) as excinfo:
        fake.client().users_info(user=USER_ID)
    assert excinfo.value.response["error"] == "missing_scope"
    assert excinfo.value.response["needed"] == "users:read"


# ---------------------------------------------------------------------- messages
def test_post_message_threads_and_broadcasts(fake: FakeSlack) -> None:
    client = fake.client()
    parent = client.chat_postMessage(channel=CHANNEL_ID, text="Incident #1 declared")
    reply = client.chat_postMessage(channel=CHANNEL_ID, text="update", thread_ts=parent["ts"])
    loud = client.chat_postMessage(
        channel=CHANNEL_ID, text="resolved", thread_ts=parent["ts"], reply_broadcast=True
    )
    assert TS.match(parent["ts"]) and len({parent["ts"], reply["ts"], loud["ts"]}) == 3
    assert parent["message"]["bot_id"] == fake.bot_id
    assert [m["text"] for m in fake.thread(CHANNEL_ID, parent["ts"])] == ["update", "resolved"]
    # Channel view: the parent plus the broadcast reply, not the quiet one.
    assert [m["text"] for m in fake.messages(CHANNEL_ID)] == ["Incident #1 declared", "resolved"]
    root = fake.message(CHANNEL_ID, parent["ts"])
    assert root is not None and root["reply_count"] == 2 and root["latest_reply"] == loud["ts"]
    link = client.chat_getPermalink(channel=CHANNEL_ID, message_ts=reply["ts"])["permalink"]
    assert link.startswith(fake.base_url) and f"thread_ts={parent['ts']}" in link


def test_channel_states(fake: FakeSlack) -> None:
    client = fake.client()
    fake.add_channel("C0OUTSIDE1", "outside", is_member=False)
    fake.add_channel("C0ARCHIVE1", "old", is_archived=True)
    fake.remove_channel("C0GONE0001")
    for channel, error in [
        ("C0OUTSIDE1", "not_in_channel"),
        ("C0ARCHIVE1", "is_archived"),
        ("C0GONE0001", "channel_not_found"),
        ("no-such-name", "channel_not_found"),
    ]:
        with pytest.raises(SlackApiError) as excinfo:
            client.chat_postMessage(channel=channel, text="x")
        assert api_error(excinfo) == error, channel
    # A user ID opens the bot's DM, as in Slack.
    dm = client.chat_postMessage(channel=USER_ID, text="you are on call")
    assert dm["channel"].startswith("D") and fake.messages(USER_ID)[0]["text"] == "you are on call"
    strict = FakeSlack(strict_channels=True).start()
    try:
        with pytest.raises(SlackApiError, match="channel_not_found"):
            strict.client().chat_postMessage(channel="C0UNKNOWN1", text="x")
    finally:
        strict.stop()


def test_concurrent_posts_get_unique_timestamps(fake: FakeSlack) -> None:
    client = fake.client()
    threads = [
        threading.Thread(
            target=client.chat_postMessage, kwargs={"channel": CHANNEL_ID, "text": str(i)}
        )
        for i in range(30)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = fake.messages(CHANNEL_ID)
    assert len(stored) == 30 and len({m["ts"] for m in stored}) == 30
    assert sorted(m["text"] for m in stored) == sorted(str(i) for i in range(30))


def test_update_and_delete(fake: FakeSlack) -> None:
    client = fake.client()
    ts = client.chat_postMessage(channel=CHANNEL_ID, text="Status: open")["ts"]
    client.chat_update(channel=CHANNEL_ID, ts=ts, text="Status: resolved", blocks=[section("ok")])
    updated = fake.message(CHANNEL_ID, ts)
    assert updated is not None and updated["text"] == "Status: resolved" and "edited" in updated
    with pytest.raises(SlackApiError) as not_found:
        client.chat_update(channel=CHANNEL_ID, ts="1700000000.000001", text="x")
    assert api_error(not_found) == "message_not_found"
    with pytest.raises(SlackApiError) as too_long:
        client.chat_update(channel=CHANNEL_ID, ts=ts, text="x" * 4001)
    assert api_error(too_long) == "msg_too_long"
    human = fake.add_message(CHANNEL_ID, "hello")
    with pytest.raises(SlackApiError) as not_ours:
        client.chat_update(channel=CHANNEL_ID, ts=human["ts"], text="edited")
    assert api_error(not_ours) == "cant_update_message"
    client.chat_delete(channel=CHANNEL_ID, ts=ts)
    assert fake.message(CHANNEL_ID, ts) is None


def test_ephemeral_and_response_url(fake: FakeSlack) -> None:
    fake.client().chat_postEphemeral(channel=CHANNEL_ID, user=USER_ID, text="only you")
    assert fake.ephemeral_messages(CHANNEL_ID, USER_ID)[0]["text"] == "only you"
    url = fake.new_response_url()
    body = json.dumps({"response_type": "ephemeral", "text": "done"}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with NO_PROXY.open(request, timeout=5) as resp:
        assert resp.status == 200
    assert fake.responses(url) == [{"response_type": "ephemeral", "text": "done"}]
    assert fake.calls_to("response_url") == [{"response_type": "ephemeral", "text": "done"}]


# ---------------------------------------------------------------------- incident channels
def test_users_conversations_pages_through_the_bots_channels(fake: FakeSlack) -> None:
    """How the bot finds a channel it made again: only channels it is in, page by page."""
    client = fake.client()
    made = [client.conversations_create(name=f"inc-{i}")["channel"]["id"] for i in range(4)]
    secret = client.conversations_create(name="inc-secret", is_private=True)["channel"]["id"]
    fake.add_channel("C0OUTSIDE1", "outside", is_member=False)
    client.conversations_archive(channel=made[0])
    dm = fake.dm_channel(USER_ID)

    pages: list[list[str]] = []
    cursor = None
    for _ in range(5):  # bounded: a cursor that never ends must fail, not hang
        page = client.users_conversations(limit=2, cursor=cursor)
        pages.append([c["id"] for c in page["channels"]])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
        assert not cursor.isdigit()  # opaque, like Slack's
    # Public channels only by default, archived ones included.
    assert pages == [[CHANNEL_ID, made[0]], made[1:3], made[3:]]
    every = client.users_conversations(
        types="public_channel,private_channel,im", exclude_archived=True
    )
    assert [c["id"] for c in every["channels"]] == [CHANNEL_ID, *made[1:], secret, dm]
    for bad, error in [
        ({"cursor": "bm9wZQ=="}, "invalid_cursor"),
        ({"types": "channels"}, "invalid_types"),
    ]:
        with pytest.raises(SlackApiError) as excinfo:
            client.users_conversations(**bad)
        assert api_error(excinfo) == error


def test_create_private_channels_and_names_that_stay_taken(fake: FakeSlack) -> None:
    """Archived channels keep their names, and a lost create answer still took the name."""
    client = fake.client(timeout=5, retry_handlers=[])
    fake.add_channel("C0OLDINC01", "inc-1-db-down", is_archived=True)
    with pytest.raises(SlackApiError) as taken:
        client.conversations_create(name="inc-1-db-down")
    assert api_error(taken) == "name_taken"

    created = client.conversations_create(name="inc-2-api-slow", is_private=True)["channel"]
    assert created["id"].startswith("G") and created["is_private"] is True
    assert (created["creator"], created["is_member"]) == (BOT_USER_ID, True)
    assert fake.channel_by_name("inc-2-api-slow") == created
    assert fake.channel_by_name("inc-9-nothing") is None

    fake.drop_after("conversations.create")
    with pytest.raises(http.client.RemoteDisconnected):
        client.conversations_create(name="inc-3-lost", is_private=True)
    with pytest.raises(SlackApiError, match="name_taken"):
        client.conversations_create(name="inc-3-lost", is_private=True)
    mine = client.users_conversations(types="private_channel")["channels"]
    assert [c["name"] for c in mine] == ["inc-2-api-slow", "inc-3-lost"]


def test_rename_follows_the_create_name_rules(fake: FakeSlack) -> None:
    client = fake.client()
    channel = client.conversations_create(name="inc-3-triage")["channel"]["id"]
    renamed = client.conversations_rename(channel=channel, name="inc-3-db-down")["channel"]
    assert (renamed["id"], renamed["name"]) == (channel, "inc-3-db-down")
    assert renamed["previous_names"] == ["inc-3-triage"]
    assert fake.channel_by_name("inc-3-triage") is None
    fake.add_channel("C0OUTSIDE1", "outside", is_member=False)
    for channel_id, name, error in [
        (channel, "Inc 3", "invalid_name_specials"),
        (channel, "x" * 81, "invalid_name_maxlength"),
        (channel, "general", "name_taken"),
        ("C0OUTSIDE1", "inc-3-elsewhere", "not_in_channel"),
    ]:
        with pytest.raises(SlackApiError) as excinfo:
            client.conversations_rename(channel=channel_id, name=name)
        assert api_error(excinfo) == error, name


def test_pins_add_list_and_remove(fake: FakeSlack) -> None:
    client = fake.client()
    summary = client.chat_postMessage(channel=CHANNEL_ID, text="Summary: DB down")["ts"]
    client.pins_add(channel=CHANNEL_ID, timestamp=summary)
    assert fake.pinned(CHANNEL_ID) == [summary]
    items = client.pins_list(channel=CHANNEL_ID)["items"]
    assert [(i["type"], i["channel"], i["message"]["ts"]) for i in items] == [
        ("message", CHANNEL_ID, summary)
    ]
    fake.add_channel("C0OUTSIDE1", "outside", is_member=False)
    for channel, ts, error in [
        (CHANNEL_ID, summary, "already_pinned"),
        (CHANNEL_ID, "1700000000.000001", "message_not_found"),
        ("C0OUTSIDE1", summary, "not_in_channel"),
    ]:
        with pytest.raises(SlackApiError) as excinfo:
            client.pins_add(channel=channel, timestamp=ts)
        assert api_error(excinfo) == error
    client.pins_remove(channel=CHANNEL_ID, timestamp=summary)
    assert fake.pinned(CHANNEL_ID) == [] and client.pins_list(channel=CHANNEL_ID)["items"] == []
    with pytest.raises(SlackApiError, match="no_pin"):
        client.pins_remove(channel=CHANNEL_ID, timestamp=summary)
    fake.scopes.discard("pins:read")
    with pytest.raises(SlackApiError, match="missing_scope"):
        client.pins_list(channel=CHANNEL_ID)


def test_usergroup_members(fake: FakeSlack) -> None:
    bob = fake.add_user(name="bob")["id"]
    group = fake.add_usergroup("S0ONCALL01", [USER_ID, bob], handle="db-oncall")
    assert (group["handle"], group["user_count"]) == ("db-oncall", 2)
    client = fake.client()
    assert client.usergroups_users_list(usergroup="S0ONCALL01")["users"] == [USER_ID, bob]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        client.usergroups_users_list(usergroup="S0NOPE0001")


def test_inviting_several_users_is_all_or_nothing_unless_forced(fake: FakeSlack) -> None:
    """One refused user fails the whole call and invites nobody; ``force`` invites the rest."""
    client = fake.client()
    channel = client.conversations_create(name="inc-4-db-down")["channel"]["id"]
    bob = fake.add_user(name="bob")["id"]
    guest = fake.add_user(name="guest", restricted=True)["id"]
    users = [USER_ID, guest, "U0NOBODY01"]
    refusals = [
        {"user": guest, "ok": False, "error": "user_is_restricted"},
        {"user": "U0NOBODY01", "ok": False, "error": "user_not_found"},
    ]
    with pytest.raises(SlackApiError) as refused:
        client.conversations_invite(channel=channel, users=users)
    assert api_error(refused) == "user_is_restricted"
    assert refused.value.response["errors"] == refusals
    assert client.conversations_members(channel=channel)["members"] == [BOT_USER_ID]

    forced = client.conversations_invite(channel=channel, users=users, force=True)
    assert forced["errors"] == refusals
    assert client.conversations_members(channel=channel)["members"] == [BOT_USER_ID, USER_ID]
    for invitees, error in [
        (USER_ID, "already_in_channel"),
        (BOT_USER_ID, "cant_invite_self"),
        ([bob, USER_ID], "already_in_channel"),
    ]:
        with pytest.raises(SlackApiError) as excinfo:
            client.conversations_invite(channel=channel, users=invitees)
        assert api_error(excinfo) == error
    assert "errors" not in client.conversations_invite(channel=channel, users=bob)


def test_topic_is_stored_and_limited_to_250_characters(fake: FakeSlack) -> None:
    client = fake.client()
    client.conversations_setTopic(channel=CHANNEL_ID, topic="SEV1 | DB down | lead: alice")
    topic = client.conversations_info(channel=CHANNEL_ID)["channel"]["topic"]
    assert topic["value"] == fake.topic(CHANNEL_ID) == "SEV1 | DB down | lead: alice"
    assert topic["creator"] == BOT_USER_ID
    with pytest.raises(SlackApiError, match="too_long"):
        client.conversations_setTopic(channel=CHANNEL_ID, topic="x" * 251)
    assert fake.topic(CHANNEL_ID) == "SEV1 | DB down | lead: alice"
    client.conversations_setTopic(channel=CHANNEL_ID, topic="x" * 250)


def test_archived_channels_refuse_posts_invites_and_a_second_archive(fake: FakeSlack) -> None:
    client = fake.client()
    channel = client.conversations_create(name="inc-5-resolved")["channel"]["id"]
    assert fake.is_archived(channel) is False
    client.conversations_archive(channel=channel)
    assert fake.is_archived(channel) is True
    assert client.conversations_info(channel=channel)["channel"]["is_archived"] is True
    attempts: list[tuple[Callable[[], Any], str]] = [
        (lambda: client.chat_postMessage(channel=channel, text="x"), "is_archived"),
        (lambda: client.conversations_invite(channel=channel, users=USER_ID), "is_archived"),
        (lambda: client.conversations_archive(channel=channel), "already_archived"),
    ]
    for attempt, error in attempts:
        with pytest.raises(SlackApiError) as excinfo:
            attempt()
        assert api_error(excinfo) == error


# ---------------------------------------------------------------------- Block Kit
def button(text: str, action_id: str = "a", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": text},
    }


def select_with_value(value: str) -> dict[str, Any]:
    option = {"text": {"type": "plain_text", "text": "x"}, "value": value}
    return {"type": "static_select", "action_id": "s", "options": [option]}


BAD_MESSAGE_BLOCKS = {
    "51 blocks": ([{"type": "divider"}] * 51, "/blocks"),
    "section text 3001": ([section("x" * 3001)], "/blocks/0/text/text"),
    "section field 2001": (
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}],
        "/blocks/0/fields/0/text",
    ),
    "mrkdwn header": (
        [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}],
        "/blocks/0/text/type",
    ),
    "header 151": (
        [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
        "/blocks/0/text/text",
    ),
    "button text 76": (
        [{"type": "actions", "elements": [button("x" * 76)]}],
        "/blocks/0/elements/0/text/text",
    ),
    "option value 151": (
        [section("pick", accessory=select_with_value("v" * 151))],
        "/blocks/0/accessory/options/0/value",
    ),
    "duplicate block_id": (
        [section("a", block_id="same"), section("b", block_id="same")],
        "/blocks/1/block_id",
    ),
    "duplicate action_id": (
        [{"type": "actions", "elements": [button("a", "dup"), button("b", "dup")]}],
        "/blocks/0/elements/1/action_id",
    ),
    "empty text": ([section("")], "/blocks/0/text/text"),
}


@pytest.mark.parametrize("case", sorted(BAD_MESSAGE_BLOCKS))
def test_invalid_message_blocks_are_rejected(fake: FakeSlack, case: str) -> None:
    blocks, pointer = BAD_MESSAGE_BLOCKS[case]
    with pytest.raises(SlackApiError) as excinfo:
        fake.client().chat_postMessage(channel=CHANNEL_ID, text="fallback", blocks=blocks)
    assert api_error(excinfo) == "invalid_blocks"
    messages = excinfo.value.response["response_metadata"]["messages"]
    assert any(m.startswith("[ERROR]") and f"[json-pointer:{pointer}]" in m for m in messages)
    assert fake.messages(CHANNEL_ID) == []


def test_cumulative_block_text_limit(fake: FakeSlack) -> None:
    client = fake.client()
    fine = [section("x" * 2900, block_id=f"b{i}") for i in range(4)]  # 11,600 chars
    client.chat_postMessage(channel=CHANNEL_ID, text="ok", blocks=fine)
    too_long = [*fine, section("x" * 500, block_id="b4")]  # 12,100 chars
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=CHANNEL_ID, text="too long", blocks=too_long)
    assert api_error(excinfo) == "msg_blocks_too_long"


BAD_VIEWS = {
    "title 25": (
        incident_modal(title={"type": "plain_text", "text": "x" * 25}),
        "/view/title/text",
    ),
    "submit 25": (
        incident_modal(submit={"type": "plain_text", "text": "x" * 25}),
        "/view/submit/text",
    ),
    "close 25": (
        incident_modal(close={"type": "plain_text", "text": "x" * 25}),
        "/view/close/text",
    ),
    "inputs without submit": (incident_modal(submit=None), "/view/submit"),
    "private_metadata 3001": (
        incident_modal(private_metadata="x" * 3001),
        "/view/private_metadata",
    ),
    "101 blocks": (incident_modal(blocks=[{"type": "divider"}] * 101), "/view/blocks"),
}


@pytest.mark.parametrize("case", sorted(BAD_VIEWS))
def test_invalid_views_are_rejected(fake: FakeSlack, case: str) -> None:
    view, pointer = BAD_VIEWS[case]
    with pytest.raises(SlackApiError) as excinfo:
        fake.client().views_open(trigger_id=fake.new_trigger_id(), view=view)
    assert api_error(excinfo) == "invalid_arguments"
    messages = excinfo.value.response["response_metadata"]["messages"]
    assert any(f"[json-pointer:{pointer}]" in m for m in messages), messages


def test_view_too_large(fake: FakeSlack) -> None:
    blocks = [section("x" * 2900, block_id=f"b{i}") for i in range(90)]  # ~270 KB
    with pytest.raises(SlackApiError) as excinfo:
        fake.client().views_open(
            trigger_id=fake.new_trigger_id(), view=incident_modal(blocks=blocks)
        )
    assert api_error(excinfo) == "view_too_large"


# ---------------------------------------------------------------------- faults
def test_ratelimited_call_is_retried_after_retry_after(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # slack_sdk sleeps Retry-After + random(); pin the jitter so the test does not wait.
    monkeypatch.setattr(builtin_handlers, "random", types.SimpleNamespace(random=lambda: 0.0))
    ts = fake.client().chat_postMessage(channel=CHANNEL_ID, text="v1")["ts"]
    fake.fail("chat.update", error="ratelimited", status=429, retry_after=0, times=2)

    with pytest.raises(SlackApiError) as excinfo:
        fake.client().chat_update(channel=CHANNEL_ID, ts=ts, text="v2")  # no retry handler
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "0"
    assert excinfo.value.response["error"] == "ratelimited"

    retrying = fake.client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    retrying.chat_update(channel=CHANNEL_ID, ts=ts, text="v2")
    assert len(fake.calls_to("chat.update")) == 3
    message = fake.message(CHANNEL_ID, ts)
    assert message is not None and message["text"] == "v2"


def test_server_errors_and_clear_faults(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=500, times=1)
    handler = ServerErrorRetryHandler(
        max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.0)
    )
    fake.client(retry_handlers=[handler]).chat_postMessage(channel=CHANNEL_ID, text="x")
    assert len(fake.calls_to("chat.postMessage")) == 2

    fake.fail("*", error="fatal_error", times=None)
    with pytest.raises(SlackApiError, match="fatal_error"):
        fake.client().users_info(user=USER_ID)
    fake.clear_faults()
    fake.client().users_info(user=USER_ID)


def test_fail_ratio_is_reproducible() -> None:
    def pattern(seed: int) -> list[bool]:
        with FakeSlack() as server:
            server.fail_ratio(0.5, ["users.info"], seed=seed, error="internal_error")
            client = server.client()
            outcome = []
            for _ in range(20):
                try:
                    client.users_info(user=USER_ID)
                    outcome.append(True)
                except SlackApiError:
                    outcome.append(False)
            client.auth_test()  # other methods are unaffected
            return outcome

    first = pattern(7)
    assert first == pattern(7)
    assert 3 <= first.count(False) <= 17


def test_delay_makes_the_client_time_out(fake: FakeSlack) -> None:
    fake.delay("conversations.info", seconds=2.0, times=1)
    client = fake.client(timeout=0.2, retry_handlers=[])
    with pytest.raises(TimeoutError):
        client.conversations_info(channel=CHANNEL_ID)
    assert client.conversations_info(channel=CHANNEL_ID)["channel"]["id"] == CHANNEL_ID


def test_wait_for_times_out_with_context(fake: FakeSlack) -> None:
    fake.client().auth_test()
    with pytest.raises(AssertionError, match=r"auth\.test"):
        fake.wait_for_call("chat.postMessage", timeout=0.05)


def test_custom_handler(fake: FakeSlack) -> None:
    def reactions_add(params: dict[str, Any]) -> dict[str, Any]:
        if params["name"] == "nope":
            raise SlackError("invalid_name")
        return {}

    fake.set_handler("reactions.add", reactions_add)
    fake.client().reactions_add(channel=CHANNEL_ID, timestamp="1.1", name="eyes")
    with pytest.raises(SlackApiError, match="invalid_name"):
        fake.client().reactions_add(channel=CHANNEL_ID, timestamp="1.1", name="nope")


# ---------------------------------------------------------------------- delivery bookkeeping
def test_metadata_is_read_back_only_when_asked_for(fake: FakeSlack) -> None:
    client = fake.client()
    tag = {"event_type": "incident_post", "event_payload": {"incident_id": 7, "kind": "declared"}}
    parent = client.chat_postMessage(channel=CHANNEL_ID, text="declared", metadata=tag)["ts"]
    # Form-encoded, metadata is a JSON string that Slack decodes.
    reply_tag = {"event_type": "incident_post", "event_payload": {"kind": "update"}}
    form = {"channel": CHANNEL_ID, "text": "u", "thread_ts": parent}
    client.api_call("chat.postMessage", data={**form, "metadata": json.dumps(reply_tag)})
    resolved = {"event_type": "incident_post", "event_payload": {"kind": "resolved"}}
    client.chat_update(channel=CHANNEL_ID, ts=parent, text="resolved", metadata=resolved)

    history = client.conversations_history(channel=CHANNEL_ID)["messages"]
    replies = client.conversations_replies(channel=CHANNEL_ID, ts=parent)["messages"]
    assert len(history) == 1 and len(replies) == 2
    assert not any("metadata" in m for m in history + replies)
    history = client.conversations_history(channel=CHANNEL_ID, include_all_metadata=True)
    replies = client.conversations_replies(channel=CHANNEL_ID, ts=parent, include_all_metadata=True)
    assert history["messages"][0]["metadata"] == resolved
    assert [m["metadata"] for m in replies["messages"]] == [resolved, reply_tag]


def test_history_and_replies_time_windows_and_limits(fake: FakeSlack) -> None:
    client = fake.client()
    a, b, c = (client.chat_postMessage(channel=CHANNEL_ID, text=t)["ts"] for t in "abc")
    r1, r2, r3 = (
        client.chat_postMessage(channel=CHANNEL_ID, text=t, thread_ts=a)["ts"]
        for t in ("r1", "r2", "r3")
    )

    def history(**kwargs: Any) -> list[str]:
        answer = client.conversations_history(channel=CHANNEL_ID, **kwargs)
        return [m["ts"] for m in answer["messages"]]

    def replies(**kwargs: Any) -> list[str]:
        answer = client.conversations_replies(channel=CHANNEL_ID, ts=a, **kwargs)
        return [m["ts"] for m in answer["messages"]]

    assert history() == [c, b, a] and history(oldest=a) == [c, b]
    assert history(oldest=a, latest=c, inclusive=True) == [c, b, a]
    assert history(latest="10000000000") == [c, b, a]  # numeric, not string, comparison
    limited = client.conversations_history(channel=CHANNEL_ID, limit=1)
    assert [m["ts"] for m in limited["messages"]] == [c] and limited["has_more"] is True

    # The parent always comes first; the window and limit apply to the replies.
    assert replies() == [a, r1, r2, r3] and replies(oldest=r1) == [a, r2, r3]
    assert replies(latest=r2, inclusive=True) == [a, r1, r2]
    limited = client.conversations_replies(channel=CHANNEL_ID, ts=a, limit=1)
    assert [m["ts"] for m in limited["messages"]] == [a, r1] and limited["has_more"] is True


def test_answer_late_performs_the_call_before_answering(fake: FakeSlack) -> None:
    fake.answer_late("chat.postMessage", 2.0)
    client = fake.client(timeout=0.2, retry_handlers=[])
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel=CHANNEL_ID, text="declared")
    # The client gave up, yet the post exists and can be found.
    history = client.conversations_history(channel=CHANNEL_ID)["messages"]
    assert [m["text"] for m in history] == ["declared"]
    client.chat_postMessage(channel=CHANNEL_ID, text="next")  # times=1: answered at once


def test_drop_after_closes_the_connection_after_the_call(fake: FakeSlack) -> None:
    fake.drop_after("chat.postMessage")
    with pytest.raises(http.client.RemoteDisconnected):
        fake.client(timeout=5, retry_handlers=[]).chat_postMessage(channel=CHANNEL_ID, text="a")
    assert [m["text"] for m in fake.messages(CHANNEL_ID)] == ["a"]
    # slack_sdk's ConnectionErrorRetryHandler (on by default) resends: the post lands twice.
    fake.drop_after("chat.postMessage")
    retrying = ConnectionErrorRetryHandler(
        interval_calculator=FixedValueRetryIntervalCalculator(0.0)
    )
    fake.client(timeout=5, retry_handlers=[retrying]).chat_postMessage(channel=CHANNEL_ID, text="b")
    assert [m["text"] for m in fake.messages(CHANNEL_ID)] == ["a", "b", "b"]


def test_after_call_runs_between_the_call_and_the_answer(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str, bool]] = []

    def kill_bot(method: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        seen.append((method, params["text"], fake.message(CHANNEL_ID, response["ts"]) is not None))
        raise RuntimeError("bot killed")

    fake.after_call("chat.postMessage", kill_bot)
    with caplog.at_level(logging.ERROR):
        answer = fake.client(retry_handlers=[]).chat_postMessage(channel=CHANNEL_ID, text="x")
    assert answer["ok"] is True and seen == [("chat.postMessage", "x", True)]
    assert "bot killed" in caplog.text
    fake.client().chat_postMessage(channel=CHANNEL_ID, text="y")  # times=1
    assert len(seen) == 1


def test_visibility_delay_hides_fresh_messages_from_reads(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Move the fake's clock instead of sleeping.
    clock = types.SimpleNamespace(time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(server, "time", clock)
    client = fake.client()
    fake.visibility_delay = 60.0
    parent = client.chat_postMessage(channel=CHANNEL_ID, text="old")["ts"]
    clock.monotonic = lambda: time.monotonic() + 61
    posted = client.chat_postMessage(channel=CHANNEL_ID, text="fresh", thread_ts=parent)
    fresh = client.chat_postMessage(channel=CHANNEL_ID, text="fresh top")["ts"]

    history = client.conversations_history(channel=CHANNEL_ID)["messages"]
    assert [m["text"] for m in history] == ["old"]
    replies = client.conversations_replies(channel=CHANNEL_ID, ts=parent)["messages"]
    assert [m["text"] for m in replies] == ["old"]
    with pytest.raises(SlackApiError, match="thread_not_found"):
        client.conversations_replies(channel=CHANNEL_ID, ts=fresh)
    assert len(fake.messages(CHANNEL_ID, include_replies=True)) == 3  # stored all the same

    clock.monotonic = lambda: time.monotonic() + 122
    history = client.conversations_history(channel=CHANNEL_ID)["messages"]
    replies = client.conversations_replies(channel=CHANNEL_ID, ts=parent)["messages"]
    assert [m["text"] for m in history + replies] == ["fresh top", "old", "old", "fresh"]
    # The bookkeeping behind this never shows up in a message.
    returned = [*history, *replies, posted["message"], *fake.thread(CHANNEL_ID, parent)]
    assert not any(key.startswith("_") for m in returned for key in m)


def test_posts_are_rate_limited_per_channel(fake: FakeSlack) -> None:
    fake.rate_limit_posts(per_channel_per_second=0.5, burst=2)
    client = fake.client(retry_handlers=[])
    before = time.monotonic()
    first = client.chat_postMessage(channel=CHANNEL_ID, text="1")["ts"]
    posted_at = fake.posted_at(CHANNEL_ID, first)
    assert posted_at is not None and before <= posted_at <= time.monotonic()
    client.chat_postMessage(channel=CHANNEL_ID, text="2")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=CHANNEL_ID, text="3")
    assert refused.value.response.status_code == 429
    assert refused.value.response["error"] == "ratelimited"
    assert refused.value.response.headers["Retry-After"] == "2"  # a token every 2 s
    client.chat_postMessage(channel="C0OTHER001", text="elsewhere")  # a bucket of its own
    assert [m["text"] for m in fake.messages(CHANNEL_ID)] == ["1", "2"]
    assert len(fake.calls_to("chat.postMessage")) == 4
    fake.clear_rate_limits()
    client.chat_postMessage(channel=CHANNEL_ID, text="4")


# ---------------------------------------------------------------------- views
def test_trigger_ids_are_single_use_and_expire(fake: FakeSlack) -> None:
    client = fake.client()
    trigger = fake.new_trigger_id(USER_ID)
    opened = client.views_open(trigger_id=trigger, view=incident_modal())["view"]
    assert opened["id"].startswith("V") and opened["root_view_id"] == opened["id"]
    shown = fake.top_view(USER_ID)
    assert shown is not None and shown["callback_id"] == "new_incident"
    for trigger_id, error in [
        (trigger, "exchanged_trigger_id"),
        ("123.456.unknown", "invalid_trigger_id"),
        (fake.new_trigger_id(age=3.5), "expired_trigger_id"),
    ]:
        with pytest.raises(SlackApiError) as excinfo:
            client.views_open(trigger_id=trigger_id, view=incident_modal())
        assert api_error(excinfo) == error


def test_view_push_update_and_publish(fake: FakeSlack) -> None:
    client = fake.client()
    root = client.views_open(trigger_id=fake.new_trigger_id(), view=incident_modal())["view"]
    for _ in range(2):
        client.views_push(trigger_id=fake.new_trigger_id(), view=incident_modal())
    with pytest.raises(SlackApiError, match="push_limit_reached"):
        client.views_push(trigger_id=fake.new_trigger_id(), view=incident_modal())
    assert len(fake.views[USER_ID]) == 3

    updated = client.views_update(
        view_id=root["id"], hash=root["hash"], view=incident_modal(callback_id="v2")
    )["view"]
    assert updated["id"] == root["id"] and updated["hash"] != root["hash"]
    with pytest.raises(SlackApiError, match="hash_conflict"):
        client.views_update(view_id=root["id"], hash=root["hash"], view=incident_modal())
    with pytest.raises(SlackApiError, match="not_found"):
        client.views_update(view_id="V0NOPE0001", view=incident_modal())

    home = {"type": "home", "blocks": [section("Open incidents: 0")]}
    client.views_publish(user_id=USER_ID, view=home)
    assert fake.home_views[USER_ID]["blocks"][0]["text"]["text"] == "Open incidents: 0"


# ---------------------------------------------------------------------- files
def test_file_download_needs_the_bot_token(fake: FakeSlack) -> None:
    meta = fake.add_file("screen.png", b"\x89PNG-bytes", "image/png", user=USER_ID)
    assert meta["url_private_download"].startswith(fake.base_url)
    info = fake.client().files_info(file=meta["id"])["file"]
    assert info["size"] == len(b"\x89PNG-bytes") and info["mimetype"] == "image/png"

    status, ctype, body = get(meta["url_private_download"], fake.bot_token)
    assert (status, ctype, body) == (200, "image/png", b"\x89PNG-bytes")
    for token in (None, "xoxb-wrong"):
        status, ctype, body = get(meta["url_private_download"], token)
        assert status == 200 and ctype.startswith("text/html") and b"Sign in" in body
    assert fake.downloads == [(meta["id"], True), (meta["id"], False), (meta["id"], False)]

    fake.fail("download", status=500)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        get(meta["url_private"], fake.bot_token)
    assert excinfo.value.code == 500

    chunked = fake.add_file("big.log", b"line\n" * 10_000, chunked=True)
    status, ctype, body = get(chunked["url_private_download"], fake.bot_token)
    assert body == b"line\n" * 10_000 and ctype.startswith("text/plain")

    fake.scopes.discard("files:read")
    assert get(meta["url_private_download"], fake.bot_token)[1].startswith("text/html")


def test_files_upload_v2_round_trip(fake: FakeSlack) -> None:
    client = fake.client()
    parent = client.chat_postMessage(channel=CHANNEL_ID, text="incident")["ts"]
    resp = client.files_upload_v2(
        channel=CHANNEL_ID,
        thread_ts=parent,
        content=b"timeline bytes",
        filename="timeline.txt",
        title="Timeline",
        initial_comment="Postmortem timeline",
    )
    file_id = resp["file"]["id"]
    assert [m for m, _ in fake.calls][-3:] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    info = client.files_info(file=file_id)["file"]
    assert info["title"] == "Timeline" and info["user"] == BOT_USER_ID
    assert CHANNEL_ID in info["shares"]["public"] and info["channels"] == [CHANNEL_ID]
    assert get(info["url_private_download"], fake.bot_token)[2] == b"timeline bytes"
    reply = fake.thread(CHANNEL_ID, parent)[0]
    assert reply["text"] == "Postmortem timeline" and reply["files"][0]["id"] == file_id
    with pytest.raises(SlackApiError, match="file_not_found"):
        client.files_completeUploadExternal(files=[{"id": "F0NOPE0001", "title": "x"}])


# ---------------------------------------------------------------------- payload builders
def test_payload_encodings_match_slack() -> None:
    command = payloads.slash_command("/incident", "new DB down")
    body, ctype = payloads.encode(command)
    assert ctype == payloads.FORM and "command=%2Fincident" in body and "text=new+DB+down" in body

    body, ctype = payloads.encode(payloads.global_shortcut("declare"))
    assert ctype == payloads.FORM and body.startswith("payload=%7B")
    decoded = json.loads(urllib.parse.parse_qs(body)["payload"][0])
    assert decoded["type"] == "shortcut" and decoded["callback_id"] == "declare"

    event = payloads.event_callback(payloads.file_shared_event("F0FILE0001"))
    body, ctype = payloads.encode(event)
    assert ctype == payloads.JSON and json.loads(body)["event"]["file"] == {"id": "F0FILE0001"}
    assert event["event_id"].startswith("Ev") and event["authorizations"][0]["is_bot"] is True


def test_member_joined_channel_event() -> None:
    joined = payloads.event_callback(
        payloads.member_joined_channel_event(USER_ID, channel="G0PRIVATE1", inviter=BOT_USER_ID)
    )
    assert joined["type"] == "event_callback" and joined["event_id"].startswith("Ev")
    event = joined["event"]
    assert (event["type"], event["user"], event["channel"]) == (
        "member_joined_channel",
        USER_ID,
        "G0PRIVATE1",
    )
    assert (event["channel_type"], event["inviter"]) == ("G", BOT_USER_ID)
    assert TS.match(event["event_ts"])
    assert "inviter" not in payloads.member_joined_channel_event(USER_ID)
    assert payloads.member_joined_channel_event(USER_ID)["channel_type"] == "C"


def test_reaction_added_event_reaches_a_bolt_listener(fake: FakeSlack) -> None:
    """Bolt finds the channel in ``item``, so ``say`` answers where the reaction was added."""
    event = payloads.reaction_added_event(
        USER_ID, "white_check_mark", CHANNEL_ID, "1700000000.000100", item_user=BOT_USER_ID
    )
    assert event == {
        "type": "reaction_added",
        "user": USER_ID,
        "reaction": "white_check_mark",
        "item_user": BOT_USER_ID,
        "item": {"type": "message", "channel": CHANNEL_ID, "ts": "1700000000.000100"},
        "event_ts": event["event_ts"],
    }
    assert TS.match(event["event_ts"])
    assert "item_user" not in payloads.reaction_added_event(USER_ID, "eyes", CHANNEL_ID, "1.2")

    app = App(client=fake.client(), signing_secret=SIGNING_SECRET)

    @app.event("reaction_added")
    def reacted(event: dict[str, Any], say: Any) -> None:
        say(f"{event['reaction']} on {event['item']['ts']}")

    with serve_bolt_app(app) as url:
        assert post_payload(url, payloads.event_callback(event))[0] == 200
        fake.wait_for(lambda: fake.messages(CHANNEL_ID))
    assert fake.messages(CHANNEL_ID)[0]["text"] == "white_check_mark on 1700000000.000100"


def test_state_values_and_block_actions_from_stored_surfaces(fake: FakeSlack) -> None:
    view = fake.client().views_open(trigger_id=fake.new_trigger_id(), view=incident_modal())["view"]
    submission = payloads.view_submission(view, {"title": "DB down", "severity": "sev1"})
    values = submission["view"]["state"]["values"]
    assert values["title"]["title"] == {"type": "plain_text_input", "value": "DB down"}
    assert values["severity"]["severity"]["selected_option"]["value"] == "sev1"
    assert values["lead"]["lead"] == {"type": "users_select", "selected_user": None}
    assert submission["view"]["id"] == view["id"] and submission["view"]["hash"] == view["hash"]
    with pytest.raises(ValueError):
        payloads.view_submission(view, {"severity": "sev9"})

    actions = {
        "type": "actions",
        "block_id": "incident_actions",
        "elements": [button("Resolve", "resolve", "INC-1")],
    }
    msg = fake.client().chat_postMessage(channel=CHANNEL_ID, text="INC-1", blocks=[actions])
    click = payloads.block_actions_from(msg["message"], "resolve", channel_id=CHANNEL_ID)
    assert click["container"] == {
        "type": "message",
        "message_ts": msg["ts"],
        "channel_id": CHANNEL_ID,
        "is_ephemeral": False,
    }
    assert click["actions"][0]["value"] == "INC-1"
    assert click["actions"][0]["block_id"] == "incident_actions"


# ---------------------------------------------------------------------- bolt, HTTP mode
def make_app(fake: FakeSlack) -> App:
    app = App(client=fake.client(), signing_secret=SIGNING_SECRET)

    @app.command("/incident")
    def incident(ack: Ack, body: dict[str, Any], client: Any, respond: Any) -> None:
        ack("got it")
        client.views_open(trigger_id=body["trigger_id"], view=incident_modal())
        respond("Fill in the form")  # bolt's respond() posts to the fake's response_url

    @app.view("new_incident")
    def submitted(ack: Ack, view: dict[str, Any], client: Any) -> None:
        values = view["state"]["values"]
        if not values["title"]["title"]["value"]:
            ack(response_action="errors", errors={"title": "Required"})
            return
        ack()
        channel = json.loads(view["private_metadata"])["channel_id"]
        client.chat_postMessage(channel=channel, text=values["title"]["title"]["value"])

    return app


def test_bolt_http_mode_with_signed_requests(fake: FakeSlack) -> None:
    app = make_app(fake)
    with serve_bolt_app(app) as url:
        command = payloads.slash_command("/incident", "new", fake=fake)
        status, _, body = post_payload(url, command)
        assert (status, body) == (200, "got it")

        body_text, ctype = payloads.encode(command)
        assert post_signed(url, body_text, ctype, "wrong-secret")[0] == 401
        stale = post_signed(url, body_text, ctype, SIGNING_SECRET, timestamp=1_000_000_000)
        assert stale[0] == 401

        fake.wait_for_call("views.open")
        fake.wait_for(lambda: fake.responses(command["response_url"]))
        assert fake.responses(command["response_url"])[0]["text"] == "Fill in the form"
        modal = fake.top_view(USER_ID)
        assert modal is not None
        status, _, body = post_payload(url, payloads.view_submission(modal, {"title": ""}))
        assert status == 200
        assert json.loads(body) == {"response_action": "errors", "errors": {"title": "Required"}}

        status, _, _ = post_payload(url, payloads.view_submission(modal, {"title": "DB down"}))
        assert status == 200
        fake.wait_for(lambda: fake.messages(CHANNEL_ID))
        assert fake.messages(CHANNEL_ID)[0]["text"] == "DB down"


def test_bolt_http_mode_url_verification_and_retry_headers(fake: FakeSlack) -> None:
    app = App(client=fake.client(), signing_secret=SIGNING_SECRET)
    seen: list[Any] = []

    @app.event("app_home_opened")
    def home(event: dict[str, Any], request: Any) -> None:
        seen.append((event["user"], request.headers.get("x-slack-retry-num")))

    with serve_bolt_app(app) as url:
        status, _, body = post_payload(url, payloads.url_verification("abc"))
        assert (status, json.loads(body)) == (200, {"challenge": "abc"})
        event = payloads.event_callback(payloads.app_home_opened_event(USER_ID))
        assert post_payload(url, event, retry_num=1, retry_reason="http_timeout")[0] == 200
    assert seen == [(USER_ID, ["1"])]


# ---------------------------------------------------------------------- bolt, Socket Mode
def test_bolt_socket_mode_acks_with_payload() -> None:
    with FakeSlack(socket_mode=True) as fake:
        assert fake.socket_mode is not None
        app = App(client=fake.client())
        retries: list[Any] = []

        @app.command("/incident")
        def incident(ack: Ack) -> None:
            ack("got it")

        @app.event("app_mention")
        def mention(request: Any) -> None:
            retries.append(request.headers.get("x-slack-retry-num"))

        with fake.socket_mode_app(app):
            envelope_id = fake.socket_mode.send_envelope(
                "slash_commands", payloads.slash_command("/incident", "", fake=fake)
            )
            ack = fake.socket_mode.wait_ack(envelope_id)
            assert ack == {"envelope_id": envelope_id, "payload": {"text": "got it"}}

            event = payloads.event_callback(payloads.app_mention_event(f"<@{BOT_USER_ID}> hi"))
            eid = fake.socket_mode.send_envelope(
                None, event, retry_attempt=2, retry_reason="timeout"
            )
            assert "payload" not in fake.socket_mode.wait_ack(eid)
            fake.wait_for(lambda: retries, timeout=5)
            assert retries == [["2"]]

            # Slack asks clients to reconnect; slack_sdk calls apps.connections.open again.
            fake.socket_mode.disconnect("refresh_requested")
            fake.socket_mode.wait_connected(count=2)
            assert len(fake.calls_to("apps.connections.open")) == 2
            eid = fake.socket_mode.send_envelope(None, payloads.slash_command("/incident", "x"))
            assert fake.socket_mode.wait_ack(eid)["payload"] == {"text": "got it"}
