"""manifest.yml is a valid Slack app manifest and matches what the code listens for."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.slack import ids

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA = REPO_ROOT.parent / "shared" / "manifest-schema" / "schemas" / "manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load((REPO_ROOT / "manifest.yml").read_text())


def test_manifest_validates_against_slacks_schema(manifest: dict):
    if not SCHEMA.exists():
        pytest.skip(f"Slack's manifest schema is not beside the project ({SCHEMA})")
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    assert [error.message for error in validator.iter_errors(manifest)] == []


def test_manifest_declares_what_the_listeners_handle(manifest: dict):
    features = manifest["features"]
    assert [c["command"] for c in features["slash_commands"]] == [ids.COMMAND]
    assert features["slash_commands"][0]["should_escape"] is True, "mentions arrive as <@U…>"
    shortcuts = {(s["type"], s["callback_id"]) for s in features["shortcuts"]}
    assert shortcuts == {
        ("global", ids.DECLARE_SHORTCUT),
        ("message", ids.TIMELINE_SHORTCUT),
        ("message", ids.ATTACH_SHORTCUT),
        ("message", ids.FOLLOWUP_SHORTCUT),
    }
    assert all(len(s["name"]) <= 24 for s in features["shortcuts"])
    assert features["app_home"]["home_tab_enabled"] is True
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "channels:join", "files:read", "files:write"} <= scopes


def test_manifest_asks_for_every_scope_the_bot_uses_of_the_fake_slack(manifest: dict):
    """The fake grants DEFAULT_SCOPES, what the bot's calls need: the manifest asks for them all
    (users:read.email and pins:read are the fake's for the tests' own look-ups)."""
    from tests.fakeslack.server import DEFAULT_SCOPES

    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"im:write", "im:history", "channels:history", "groups:history"} <= scopes
    assert DEFAULT_SCOPES - scopes <= {"users:read.email", "pins:read"}
