"""The benchmarks' yardstick: a bare Bolt app with Bolt's defaults and an `/incident` listener
that only acks, run as its own process like the bot.

    python -m bench.bare_app http PORT     # waitress on PORT, /slack/events
    python -m bench.bare_app socket        # Socket Mode

Reads SLACK_API_URL, SLACK_BOT_TOKEN, SLACK_APP_TOKEN and SLACK_SIGNING_SECRET.
"""

from __future__ import annotations

import os
import sys

import waitress
from slack_bolt import Ack, App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient


def main() -> None:
    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = App(client=client, signing_secret=os.environ.get("SLACK_SIGNING_SECRET") or None)

    @app.command("/incident")
    def only_ack(ack: Ack) -> None:
        ack()

    if sys.argv[1] == "socket":
        handler = SocketModeHandler(app, os.environ["SLACK_APP_TOKEN"])
        handler.client.proxy = None  # loopback only
        handler.start()
    else:
        print("serving", flush=True)
        waitress.serve(SlackRequestHandler(app), host="127.0.0.1", port=int(sys.argv[2]), threads=8)


if __name__ == "__main__":
    main()
