"""Offline fake Slack for tests: Web API, files, response_url, Socket Mode, signed requests.

HTTP mode, end to end::

    from tests.fakeslack import FakeSlack, payloads, post_payload, serve_bolt_app
    from tests.fakeslack.defaults import CHANNEL_ID, SIGNING_SECRET

    with FakeSlack() as fake:  # 127.0.0.1:<free port>; fake.api_url is the WebClient base_url
        app = App(client=fake.client(), signing_secret=SIGNING_SECRET)  # auth.test hits the fake
        ...  # register listeners
        with serve_bolt_app(app) as url:
            # fake= issues a real trigger_id and response_url; post_payload signs like Slack
            cmd = payloads.slash_command("/incident", "new DB down", fake=fake)
            status, headers, body = post_payload(url, cmd)
            fake.wait_for_call("views.open")  # work done after ack(): wait, never sleep
            modal = fake.top_view()  # the modal the app opened for the default user
            post_payload(url, payloads.view_submission(modal, {"title": "DB down"}))
            fake.wait_for(lambda: fake.messages(CHANNEL_ID))
        fake.fail("chat.update", error="ratelimited", times=2)  # 429 + Retry-After: 0

Socket Mode::

    with FakeSlack(socket_mode=True) as fake:
        app = App(client=fake.client())  # + listeners, e.g. one that does ack("got it")
        with fake.socket_mode_app(app):  # real SocketModeHandler, connected and hello'd
            eid = fake.socket_mode.send_envelope(None, payloads.slash_command(fake=fake))
            assert fake.socket_mode.wait_ack(eid)["payload"] == {"text": "got it"}

Notes: `FakeSlack.start` adds 127.0.0.1/localhost to NO_PROXY (WebClient would otherwise send
loopback calls to HTTPS_PROXY); `post_signed` never uses a proxy. IDs, tokens and the signing
secret shared by the fake and the builders are in `defaults`. Pseudo-methods ``upload``,
``download`` and ``response_url`` appear in ``fake.calls`` and can be given to ``fake.fail``.
"""

from . import defaults, payloads
from .appserver import serve_bolt_app
from .blockkit import message_text_length, validate_message_blocks, validate_view
from .server import DEFAULT_SCOPES, Call, FakeSlack, Fault, SlackError, ensure_no_proxy
from .signing import post_payload, post_signed, signature_headers
from .socket_mode import FakeSocketMode, envelope_type

__all__ = [
    "DEFAULT_SCOPES",
    "Call",
    "FakeSlack",
    "FakeSocketMode",
    "Fault",
    "SlackError",
    "defaults",
    "ensure_no_proxy",
    "envelope_type",
    "message_text_length",
    "payloads",
    "post_payload",
    "post_signed",
    "serve_bolt_app",
    "signature_headers",
    "validate_message_blocks",
    "validate_view",
]
