"""Sign in with Slack's client id in the environment or `.env` leaves the Slack app as it is.

Bolt reads SLACK_CLIENT_ID and SLACK_CLIENT_SECRET from the process environment by itself and,
seeing them, switches to its OAuth installation store and drops the bot token; the bot's own
settings must decide instead. Tests that build settings from a dict never see that, so this one
starts the real process as a user would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.fakeslack import FakeSlack, defaults, payloads, post_payload
from tests.test_run import OutputReader, bot_process, free_port, wait_until_healthy

SIGN_IN = {
    "SLACK_CLIENT_ID": "1234567890.0987654321",
    "SLACK_CLIENT_SECRET": "not-a-real-client-secret",
    "SESSION_SECRET": "s" * 40,
}


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_slack_works_with_sign_in_with_slack_configured(
    where: str,
    tmp_path: Path,
    database_url: str,
    committing_sessions: sessionmaker[Session],
):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    sign_in = {**SIGN_IN, "PUBLIC_URL": base_url}
    in_env = sign_in
    if where == ".env":
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in sign_in.items()))
        in_env = {}
    with FakeSlack() as fake, _bot(fake, tmp_path, port, database_url, in_env) as process:
        output = OutputReader(process)
        wait_until_healthy(process, base_url)
        events = f"{base_url}/slack/events"

        # A command answered after its ack, through response_url.
        status, _, _ = post_payload(events, payloads.slash_command("/incident", "list", fake=fake))
        assert status == 200
        fake.wait_for(lambda: fake.calls_to("response_url"), timeout=10)
        assert fake.calls_to("response_url")[0]["text"].endswith("incidents")

        # A form: the declare modal, submitted.
        post_payload(events, payloads.slash_command("/incident", "Checkout is failing", fake=fake))
        view = fake.wait_for(lambda: fake.top_view(defaults.USER_ID), timeout=10)
        assert view["callback_id"] == "incident_declare"
        submission = payloads.view_submission(
            view, {"title": "Checkout is failing", "severity": "SEV3"}, fake=fake
        )
        status, _, body = post_payload(events, submission)
        assert (status, body) == (200, "")

        def card() -> dict | None:
            for message in fake.messages(defaults.CHANNEL_ID):
                if "Checkout is failing" in json.dumps(message.get("blocks")):
                    return message
            return None

        posted = fake.wait_for(card, timeout=10)

        # A button on the card.
        click = payloads.block_actions_from(
            posted, "incident_status:investigating", channel_id=defaults.CHANNEL_ID, fake=fake
        )
        assert post_payload(events, click)[0] == 200

        def reply() -> bool:
            return any(
                m.get("thread_ts") == posted["ts"] and "nvestigating" in m.get("text", "")
                for m in fake.messages(defaults.CHANNEL_ID, include_replies=True)
            )

        fake.wait_for(reply, timeout=10)
        # A few sweeps of the scheduler go by, and are not each logged.
        output.wait_for("this process is the leader")
        time.sleep(2.5)
        log = output.stop()
    assert "AuthorizeResult" not in log
    assert "Failed to authorize" not in log
    assert "executed successfully" not in log and "Running job" not in log


def _bot(fake: FakeSlack, cwd: Path, port: int, database_url: str, env: dict[str, str]):
    settings = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": defaults.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": defaults.SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "INCIDENT_CHANNEL": defaults.CHANNEL_ID,
        "PORT": str(port),
        "SCHEDULER_INTERVAL": "1s",
        **env,
    }
    return bot_process(cwd, **settings)
