"""The Slack surface: it parses what Slack sends, asks the domain, and renders the answer.

It holds no rules and runs no SQL (tests/test_architecture.py checks): every change goes through
the domain (bot.incidents) in one short transaction before the ack, and every Slack side effect of
a change through the outbox (bot.delivery).

    app.py        create_app(settings, sessions, client, work, deliverer): the Bolt app
    services.py   what listeners need (settings, sessions, outbox, work queue), handed over once
    listeners/    module-level handlers by surface: commands, views, actions, shortcuts, events,
                  options; common.py holds the request path (save, press, later)
    grammar.py    the /incident command language
    blocks/       all Block Kit: text, messages (card, thread, digest), modals, ephemeral + Home
    ids.py        callback, action and block ids (the wire values, shared with manifest.yml)
    files.py      downloading Slack files safely
    http.py       HTTP mode's front door: size, signature, body parsing, shape
    timing.py     TimedApp: Bolt's App, timing each ack for incident_bot_ack_seconds
"""
