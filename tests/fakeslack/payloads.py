"""Builders for the requests Slack sends *to* the app, in Slack's real shapes.

Every builder returns a plain dict: the form fields of a slash command, the JSON
``payload`` of an interaction, or an Events API envelope. The same dict is the
``payload`` of a Socket Mode envelope. `encode` turns it into the exact HTTP body and
content type Slack would use; `signing.post_payload` encodes, signs and sends it.

Pass ``fake=`` to have ``trigger_id`` and ``response_url`` issued by a running
`FakeSlack`, so that ``views.open`` and ``respond()`` work. Without it the trigger_id is
unknown to any fake and the response_url points at a closed loopback port.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from . import defaults

if TYPE_CHECKING:
    from .server import FakeSlack

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

INTERACTIVE_TYPES = frozenset(
    {
        "block_actions",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
        "block_suggestion",
        "interactive_message",
        "dialog_submission",
    }
)

Payload = dict[str, Any]


# ---------------------------------------------------------------------- small helpers
def escape(text: str) -> str:
    """Escape ``&``, ``<``, ``>`` the way Slack delivers user text in events and echoes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ts() -> str:
    micros = int(time.time() * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{seconds}.{fraction:06d}"


def _trigger_id(fake: FakeSlack | None, user_id: str, trigger_id: str | None) -> str:
    if trigger_id is not None:
        return trigger_id
    if fake is not None:
        return fake.new_trigger_id(user_id)
    return f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def _response_url(fake: FakeSlack | None, kind: str, response_url: str | None, team_id: str) -> str:
    if response_url is not None:
        return response_url
    if fake is not None:
        return fake.new_response_url(kind)
    # Port 9 (discard) is closed on loopback: respond() fails fast instead of leaving the machine.
    return f"http://127.0.0.1:9/{kind}/{team_id}/{secrets.randbelow(10**12)}/{secrets.token_urlsafe(18)}"


def _team(team_id: str, enterprise_id: str | None) -> dict[str, Any]:
    team: dict[str, Any] = {"id": team_id, "domain": defaults.TEAM_DOMAIN}
    if enterprise_id:
        team.update(enterprise_id=enterprise_id, enterprise_name="Fake Org")
    return team


def _user(user_id: str, user_name: str, team_id: str) -> dict[str, Any]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def _enterprise(enterprise_id: str | None) -> dict[str, Any] | None:
    return {"id": enterprise_id, "name": "Fake Org"} if enterprise_id else None


# ---------------------------------------------------------------------- encoding
def encode(payload: Payload) -> tuple[str, str]:
    """``(body, content_type)`` exactly as Slack would POST ``payload`` over HTTP."""
    if "command" in payload:
        return encode_form(payload), FORM
    if payload.get("type") in INTERACTIVE_TYPES:
        return encode_interactive(payload), FORM
    return encode_json(payload), JSON


def encode_form(fields: Mapping[str, Any]) -> str:
    """Slash-command style flat form (``/`` becomes ``%2F``, spaces ``+``)."""
    return urlencode({k: _form_value(v) for k, v in fields.items() if v is not None})


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_interactive(payload: Payload) -> str:
    """Interactivity style: a single ``payload`` form field holding URL-encoded JSON."""
    return urlencode({"payload": json.dumps(payload)})


def encode_json(payload: Payload) -> str:
    return json.dumps(payload)


# ---------------------------------------------------------------------- slash commands
def slash_command(
    command: str = "/incident",
    text: str = "",
    *,
    fake: FakeSlack | None = None,
    user_id: str = defaults.USER_ID,
    user_name: str = defaults.USER_NAME,
    channel_id: str = defaults.CHANNEL_ID,
    channel_name: str = defaults.CHANNEL_NAME,
    team_id: str = defaults.TEAM_ID,
    team_domain: str = defaults.TEAM_DOMAIN,
    api_app_id: str = defaults.APP_ID,
    trigger_id: str | None = None,
    response_url: str | None = None,
    enterprise_id: str | None = None,
) -> dict[str, str]:
    """Form fields of a slash command invocation (``text`` is everything after the command)."""
    fields = {
        "token": defaults.VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": _response_url(fake, "commands", response_url, team_id),
        "trigger_id": _trigger_id(fake, user_id, trigger_id),
    }
    if enterprise_id:
        fields.update(enterprise_id=enterprise_id, enterprise_name="Fake Org")
    return fields


# ---------------------------------------------------------------------- Block Kit state
_VALUE_KEYS: dict[str, str] = {
    "plain_text_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "number_input": "value",
    "static_select": "selected_option",
    "external_select": "selected_option",
    "radio_buttons": "selected_option",
    "overflow": "selected_option",
    "multi_static_select": "selected_options",
    "multi_external_select": "selected_options",
    "checkboxes": "selected_options",
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "rich_text_input": "rich_text_value",
    "file_input": "files",
}
_INITIAL_KEYS = {
    "value": "initial_value",
    "selected_option": "initial_option",
    "selected_options": "initial_options",
    "selected_user": "initial_user",
    "selected_users": "initial_users",
    "selected_conversation": "initial_conversation",
    "selected_conversations": "initial_conversations",
    "selected_channel": "initial_channel",
    "selected_channels": "initial_channels",
    "selected_date": "initial_date",
    "selected_time": "initial_time",
    "selected_date_time": "initial_date_time",
    "rich_text_value": "initial_value",
}


def _all_options(element: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += group.get("options") or []
    return options


def _option(element: Mapping[str, Any], value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    options = _all_options(element)
    if not options:  # external selects: the test supplies the value, we supply a label
        return {
            "text": {"type": "plain_text", "text": str(value), "emoji": True},
            "value": str(value),
        }
    for option in options:
        if option.get("value") == value:
            return option
    raise ValueError(f"no option with value {value!r} in {element.get('action_id')!r}")


def element_value(element: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """The value keys Slack reports for ``element`` set to ``value`` (None: unset).

    ``value`` is given naturally: a string for text inputs, option *values* for selects,
    IDs for user/conversation pickers, "YYYY-MM-DD" for datepickers, a list of Slack
    file objects for file_input. A dict is taken as an already-shaped option.
    """
    kind = element.get("type", "")
    key = _VALUE_KEYS.get(kind)
    if key is None:
        raise ValueError(f"element type {kind!r} has no value")
    plural = key.endswith("s")
    if value is None:
        initial = element.get(_INITIAL_KEYS.get(key, ""))
        if initial is not None:
            return {key: initial}
        return {key: [] if plural else None}
    if key in ("selected_option", "selected_options"):
        many = value if isinstance(value, (list, tuple)) else [value]
        chosen = [_option(element, v) for v in many]
        return {key: chosen if key == "selected_options" else chosen[0]}
    if key == "rich_text_value" and isinstance(value, str):
        value = {
            "type": "rich_text",
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": value}]}
            ],
        }
    if plural and not isinstance(value, (list, tuple)):
        value = [value]
    return {key: list(value) if plural else value}


def iter_elements(blocks: Iterable[Mapping[str, Any]]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """Yield ``(block_type, block_id, element)`` for every element that has an action_id."""
    for block in blocks:
        kind, block_id = block.get("type", ""), block.get("block_id", "")
        candidates = []
        if kind == "input":
            candidates = [block.get("element")]
        elif kind == "actions":
            candidates = list(block.get("elements") or [])
        elif kind == "section":
            candidates = [block.get("accessory")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id"):
                yield kind, block_id, element


def _find(blocks: Iterable[Mapping[str, Any]], key: str) -> tuple[str, str, dict[str, Any]]:
    found = [e for e in iter_elements(blocks) if e[2].get("action_id") == key]
    if not found:
        found = [e for e in iter_elements(blocks) if e[1] == key]
    if len(found) != 1:
        problem = "no element" if not found else "several elements"
        raise ValueError(f"{problem} with action_id or block_id {key!r}")
    return found[0]


def state_values(
    blocks: Iterable[Mapping[str, Any]], inputs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``state.values`` for a surface: every input block (initial or None) plus ``inputs``.

    ``inputs`` maps an action_id (or the block_id of a one-element block) to a natural
    value, see `element_value`. Elements outside input blocks are included only if named.
    """
    blocks = list(blocks)
    values: dict[str, dict[str, Any]] = {}
    for kind, block_id, element in iter_elements(blocks):
        if kind == "input" and element.get("type") in _VALUE_KEYS:
            values.setdefault(block_id, {})[element["action_id"]] = {
                "type": element["type"],
                **element_value(element, None),
            }
    for key, value in (inputs or {}).items():
        _, block_id, element = _find(blocks, key)
        values.setdefault(block_id, {})[element["action_id"]] = {
            "type": element["type"],
            **element_value(element, value),
        }
    return values


def _complete_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """A view as Slack echoes it; fills in server fields if given a bare definition."""
    out: dict[str, Any] = json.loads(json.dumps(view))
    view_id = out.get("id") or defaults.new_id("V")
    server_fields: dict[str, Any] = {
        "id": view_id,
        "team_id": defaults.TEAM_ID,
        "private_metadata": "",
        "callback_id": "",
        "state": {"values": {}},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "clear_on_close": False,
        "notify_on_close": False,
        "close": None,
        "submit": None,
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": defaults.APP_ID,
        "external_id": "",
        "app_installed_team_id": defaults.TEAM_ID,
        "bot_id": defaults.BOT_ID,
    }
    for key, value in server_fields.items():
        out.setdefault(key, value)
    return out


# ---------------------------------------------------------------------- interactivity
def action(
    action_id: str,
    *,
    block_id: str,
    type: str = "button",  # Slack's field name
    value: Any = None,
    text: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One entry of ``actions[]``; ``value`` is natural (see `element_value`) except for buttons."""
    act: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": type}
    if type == "button":
        act["text"] = {"type": "plain_text", "text": text or "Button", "emoji": True}
        if value is not None:
            act["value"] = value
    elif value is not None or type in _VALUE_KEYS:
        act.update(element_value({"type": type, "action_id": action_id}, value))
    act.update(fields)
    act["action_ts"] = _ts()
    return act


def block_actions(
    actions: dict[str, Any] | list[dict[str, Any]],
    *,
    fake: FakeSlack | None = None,
    message: Mapping[str, Any] | None = None,
    view: Mapping[str, Any] | None = None,
    channel_id: str = defaults.CHANNEL_ID,
    channel_name: str = defaults.CHANNEL_NAME,
    is_ephemeral: bool = False,
    state: Mapping[str, Any] | None = None,
    user_id: str = defaults.USER_ID,
    user_name: str = defaults.USER_NAME,
    team_id: str = defaults.TEAM_ID,
    api_app_id: str = defaults.APP_ID,
    trigger_id: str | None = None,
    response_url: str | None = None,
    enterprise_id: str | None = None,
) -> Payload:
    """A ``block_actions`` payload from a view (``view=``) or otherwise from a message.

    ``state`` is ``state.values`` (default: computed from the view's / message's inputs).
    """
    payload: Payload = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": defaults.VERIFICATION_TOKEN,
        "container": {},
        "trigger_id": _trigger_id(fake, user_id, trigger_id),
        "team": _team(team_id, enterprise_id),
        "enterprise": _enterprise(enterprise_id),
        "is_enterprise_install": False,
    }
    if view is not None:
        full = _complete_view(view)
        full["state"] = {
            "values": dict(state) if state is not None else state_values(full.get("blocks", []))
        }
        payload["container"] = {"type": "view", "view_id": full["id"]}
        payload["view"] = full
    else:
        msg: dict[str, Any] = (
            json.loads(json.dumps(message))
            if message is not None
            else {
                "type": "message",
                "text": "",
                "ts": _ts(),
                "user": defaults.BOT_USER_ID,
                "bot_id": defaults.BOT_ID,
            }
        )
        payload["container"] = {
            "type": "message",
            "message_ts": msg["ts"],
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        payload["channel"] = {"id": channel_id, "name": channel_name}
        if not is_ephemeral:
            payload["message"] = msg
        payload["state"] = {
            "values": dict(state) if state is not None else state_values(msg.get("blocks") or [])
        }
        payload["response_url"] = _response_url(fake, "actions", response_url, team_id)
    payload["actions"] = actions if isinstance(actions, list) else [actions]
    return payload


def block_actions_from(
    source: Mapping[str, Any],
    action_id: str,
    value: Any = None,
    *,
    channel_id: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Payload:
    """Click / choose the element ``action_id`` found in a stored message or view.

    ``source`` is what the app posted (``fake.messages(ch)[-1]``) or opened
    (``fake.top_view()``): the action's block_id, type, button value and text come from
    it, so a test exercises the exact element the app rendered. ``value`` selects an
    option/user/date etc. for non-button elements. For messages pass ``channel_id``.
    """
    is_view = "type" in source and source.get("type") in ("modal", "home")
    blocks = list(source.get("blocks") or [])
    _, block_id, element = _find(blocks, action_id)
    kind = element["type"]
    if kind == "button":
        act = action(
            action_id,
            block_id=block_id,
            type="button",
            value=element.get("value"),
            text=(element.get("text") or {}).get("text"),
        )
        if element.get("style"):
            act["style"] = element["style"]
    else:
        act = action(action_id, block_id=block_id, type=kind)
        act.update(element_value(element, value))
    if is_view:
        return block_actions(act, view=source, state=state_values(blocks, inputs), **kwargs)
    if channel_id is None:
        raise ValueError("block_actions_from(message, ...) needs channel_id=")
    return block_actions(
        act, message=source, channel_id=channel_id, state=state_values(blocks, inputs), **kwargs
    )


def view_submission(
    view: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    values: Mapping[str, Any] | None = None,
    fake: FakeSlack | None = None,
    user_id: str = defaults.USER_ID,
    user_name: str = defaults.USER_NAME,
    team_id: str = defaults.TEAM_ID,
    api_app_id: str = defaults.APP_ID,
    trigger_id: str | None = None,
    response_urls: list[dict[str, Any]] | None = None,
    enterprise_id: str | None = None,
) -> Payload:
    """A ``view_submission`` for ``view`` (ideally ``fake.top_view()``), with ``inputs`` filled in.

    ``inputs``: ``{"title": "DB down", "severity": "sev1"}`` keyed by action_id, values
    natural (see `element_value`). ``values``: raw ``state.values`` entries merged on top.
    """
    full = _complete_view(view)
    state = state_values(full.get("blocks", []), inputs)
    for block_id, by_action in (values or {}).items():
        state.setdefault(block_id, {}).update(by_action)
    full["state"] = {"values": state}
    return {
        "type": "view_submission",
        "team": _team(team_id, enterprise_id),
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": defaults.VERIFICATION_TOKEN,
        "trigger_id": _trigger_id(fake, user_id, trigger_id),
        "view": full,
        "response_urls": list(response_urls or []),
        "is_enterprise_install": False,
        "enterprise": _enterprise(enterprise_id),
    }


def view_closed(
    view: Mapping[str, Any],
    *,
    is_cleared: bool = False,
    user_id: str = defaults.USER_ID,
    user_name: str = defaults.USER_NAME,
    team_id: str = defaults.TEAM_ID,
    api_app_id: str = defaults.APP_ID,
) -> Payload:
    """``view_closed`` (Slack sends it only for views with ``notify_on_close: true``)."""
    return {
        "type": "view_closed",
        "team": _team(team_id, None),
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": defaults.VERIFICATION_TOKEN,
        "view": _complete_view(view),
        "is_cleared": is_cleared,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def global_shortcut(
    callback_id: str,
    *,
    fake: FakeSlack | None = None,
    user_id: str = defaults.USER_ID,
    user_name: str = defaults.USER_NAME,
    team_id: str = defaults.TEAM_ID,
    trigger_id: str | None = None,
    enterprise_id: str | None = None,
) -> Payload:
    """A global shortcut (``type: "shortcut"``): no channel and no response_url."""
    return {
        "type": "shortcut",
        "token": defaults.VERIFICATION_TOKEN,
        "action_ts": _ts(),
        "team": _team(team_id, enterprise_id),
        "user": {"id": user_id, "username": user_name, "team_id": team_id},
        "is_enterprise_install": False,
        "enterprise": _enterprise(enterprise_id),
        "callback_id": callback_id,
        "trigger_id": _trigger_id(fake, user_id, trigger_id),
    }


def message_shortcut(
    callback_id: str,
    message: Mapping[str, Any],
    *,
    fake: FakeSlack | None = None,
    channel_id: str = defaults.CHANNEL_ID,
    channel_name: str = defaults.CHANNEL_NAME,
    user_id: str = defaults.USER_ID,
    user_name: str = defaults.USER_NAME,
    team_id: str = defaults.TEAM_ID,
    trigger_id: str | None = None,
    response_url: str | None = None,
) -> Payload:
    """A message shortcut (``type: "message_action"``) run on ``message``.

    ``message`` is typically one seeded with `FakeSlack.add_message`.
    """
    msg = json.loads(json.dumps(message))
    return {
        "type": "message_action",
        "token": defaults.VERIFICATION_TOKEN,
        "action_ts": _ts(),
        "team": _team(team_id, None),
        "user": {"id": user_id, "name": user_name},
        "channel": {"id": channel_id, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": _trigger_id(fake, user_id, trigger_id),
        "message_ts": msg["ts"],
        "message": msg,
        "response_url": _response_url(fake, "app", response_url, team_id),
    }


def block_suggestion(
    action_id: str,
    value: str,
    *,
    block_id: str | None = None,
    view: Mapping[str, Any] | None = None,
    channel_id: str = defaults.CHANNEL_ID,
    user_id: str = defaults.USER_ID,
    user_name: str = defaults.USER_NAME,
    team_id: str = defaults.TEAM_ID,
    api_app_id: str = defaults.APP_ID,
) -> Payload:
    """An options load for an external select; ``value`` is what the user typed."""
    if block_id is None and view is not None:
        block_id = _find(view.get("blocks") or [], action_id)[1]
    payload: Payload = {
        "type": "block_suggestion",
        "user": _user(user_id, user_name, team_id),
        "container": {},
        "api_app_id": api_app_id,
        "token": defaults.VERIFICATION_TOKEN,
        "action_id": action_id,
        "block_id": block_id or "",
        "value": value,
        "team": _team(team_id, None),
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        full = _complete_view(view)
        payload["container"] = {"type": "view", "view_id": full["id"]}
        payload["view"] = full
    else:
        payload["container"] = {
            "type": "message",
            "message_ts": _ts(),
            "channel_id": channel_id,
            "is_ephemeral": False,
        }
        payload["channel"] = {"id": channel_id, "name": defaults.CHANNEL_NAME}
    return payload


# ---------------------------------------------------------------------- events
def event_callback(
    event: dict[str, Any],
    *,
    team_id: str = defaults.TEAM_ID,
    api_app_id: str = defaults.APP_ID,
    event_id: str | None = None,
    event_time: int | None = None,
    bot_user_id: str = defaults.BOT_USER_ID,
    enterprise_id: str | None = None,
    is_ext_shared_channel: bool = False,
) -> Payload:
    """The Events API envelope around ``event`` (``authorizations`` name the bot user)."""
    envelope: Payload = {
        "token": defaults.VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or defaults.new_id("Ev"),
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": is_ext_shared_channel,
        "event_context": f"4-{secrets.token_urlsafe(24)}",
    }
    if enterprise_id:
        envelope["enterprise_id"] = enterprise_id
    return envelope


def url_verification(challenge: str | None = None) -> Payload:
    return {
        "token": defaults.VERIFICATION_TOKEN,
        "challenge": challenge or secrets.token_urlsafe(36),
        "type": "url_verification",
    }


def _rich_text(text: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_urlsafe(3)[:4],
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


def message_event(
    text: str,
    *,
    channel: str = defaults.CHANNEL_ID,
    user: str = defaults.USER_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    subtype: str | None = None,
    bot_id: str | None = None,
    files: list[dict[str, Any]] | None = None,
    channel_type: str = "channel",
    team_id: str = defaults.TEAM_ID,
) -> dict[str, Any]:
    """A ``message`` event. ``text`` is used as given: run user text through `escape` first."""
    ts = ts or _ts()
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "user": user,
        "ts": ts,
        "team": team_id,
    }
    if bot_id or subtype == "bot_message":
        event.update(subtype="bot_message", bot_id=bot_id or defaults.BOT_ID)
    elif subtype:
        event["subtype"] = subtype
    else:
        event["client_msg_id"] = str(uuid.uuid4())
    if files:
        event.update(subtype="file_share", files=files, upload=False, display_as_bot=False)
    event["blocks"] = _rich_text(text)
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = parent_user_id or user
    event.update(channel=channel, event_ts=ts, channel_type=channel_type)
    return event


def app_mention_event(
    text: str,
    *,
    channel: str = defaults.CHANNEL_ID,
    user: str = defaults.USER_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    team_id: str = defaults.TEAM_ID,
) -> dict[str, Any]:
    """An ``app_mention`` event; include ``<@BOT_USER_ID>`` in ``text`` like Slack does."""
    ts = ts or _ts()
    event = {
        "client_msg_id": str(uuid.uuid4()),
        "type": "app_mention",
        "text": text,
        "user": user,
        "ts": ts,
        "blocks": _rich_text(text),
        "team": team_id,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def app_home_opened_event(
    user: str = defaults.USER_ID,
    *,
    tab: str = "home",
    channel: str | None = None,
    view: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``app_home_opened``; ``view`` is present only once the app has published one."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user,
        "channel": channel or defaults.new_id("D"),
        "tab": tab,
        "event_ts": _ts(),
    }
    if view is not None:
        event["view"] = _complete_view(view)
    return event


def file_shared_event(
    file_id: str,
    *,
    user_id: str = defaults.USER_ID,
    channel_id: str = defaults.CHANNEL_ID,
) -> dict[str, Any]:
    """``file_shared``: only the file ID is included; apps call files.info for the rest."""
    return {
        "type": "file_shared",
        "channel_id": channel_id,
        "file_id": file_id,
        "user_id": user_id,
        "file": {"id": file_id},
        "event_ts": _ts(),
    }


def member_joined_channel_event(
    user: str,
    *,
    channel: str = defaults.CHANNEL_ID,
    inviter: str | None = None,
    channel_type: str | None = None,
    team_id: str = defaults.TEAM_ID,
) -> dict[str, Any]:
    """``member_joined_channel``; wrap it with `event_callback` like the other events.

    ``channel_type`` is ``"C"`` (public) or ``"G"`` (private), by default from the channel ID.
    ``inviter`` is included only when given: Slack does not always send it.
    """
    event = {
        "type": "member_joined_channel",
        "user": user,
        "channel": channel,
        "channel_type": channel_type or ("G" if channel.startswith("G") else "C"),
        "team": team_id,
        "event_ts": _ts(),
    }
    if inviter:
        event["inviter"] = inviter
    return event


def reaction_added_event(
    user: str, reaction: str, channel: str, ts: str, *, item_user: str | None = None
) -> dict[str, Any]:
    """``reaction_added``: ``user`` reacted with ``reaction`` (no colons) to message ``ts``.

    ``item_user``, the message's author, is left out unless given, as Slack does for messages
    no user wrote. Slack's event has no team field, unlike `member_joined_channel_event`.
    """
    event: dict[str, Any] = {"type": "reaction_added", "user": user, "reaction": reaction}
    if item_user:
        event["item_user"] = item_user
    event["item"] = {"type": "message", "channel": channel, "ts": ts}
    event["event_ts"] = _ts()
    return event


def app_uninstalled_event() -> dict[str, Any]:
    return {"type": "app_uninstalled", "event_ts": _ts()}


def tokens_revoked_event(bot_user_ids: Iterable[str] = (defaults.BOT_USER_ID,)) -> dict[str, Any]:
    return {
        "type": "tokens_revoked",
        "tokens": {"oauth": [], "bot": list(bot_user_ids)},
        "event_ts": _ts(),
    }
