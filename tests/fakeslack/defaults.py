"""Identifiers and secrets shared by the fake server and the payload builders.

Every value is shaped like a real Slack one (upper-case letters and digits after
the type prefix) so that the app's ID validation (``^[UW][A-Z0-9]+$`` ...) accepts it.
"""

from __future__ import annotations

import itertools
import threading

TEAM_ID = "T0TEAM0001"
TEAM_DOMAIN = "fakeslack"
TEAM_NAME = "Fake Slack"
ENTERPRISE_ID = "E0ENT00001"  # only used by builders when asked for Enterprise Grid shapes
APP_ID = "A0APP00001"
BOT_ID = "B0BOT00001"
BOT_USER_ID = "U0BOT00001"
BOT_NAME = "incident-bot"
USER_ID = "U0USER0001"  # the default human who runs commands / clicks buttons
USER_NAME = "alice"
CHANNEL_ID = "C0CHAN0001"
CHANNEL_NAME = "general"

BOT_TOKEN = "xoxb-0000000001-0000000001-fakeslackbottoken"
APP_TOKEN = "xapp-1-A0APP00001-0000000001-fakeslackapptoken"
SIGNING_SECRET = "fakeslack-signing-secret-0123456789abcdef"
VERIFICATION_TOKEN = (
    "fakeslack-legacy-verification-token"  # legacy `token` field; apps must ignore it
)

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def new_id(prefix: str) -> str:
    """Return a fresh, process-unique Slack-style ID such as ``C00000000A7``."""
    with _counter_lock:
        n = next(_counter)
    digits = ""
    while True:  # base36, upper-case, like Slack's IDs
        n, rem = divmod(n, 36)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[rem] + digits
        if n == 0:
            break
    return prefix + digits.rjust(10, "0")
