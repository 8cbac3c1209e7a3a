"""Incident Tracker for Slack.

incidents/    the domain: knows nothing of Slack or HTTP
slack/        the Slack surface
server.py     the WSGI app on PORT (/slack/events, /healthz, /readyz, /metrics) on waitress
metrics.py    every Prometheus metric, and the state read at scrape time
delivery.py   the outbox worker: sends queued Slack side effects
inbox.py      Slack's events, acted on once
work.py       the bounded queue of work that follows acks
scheduler.py  background jobs under a leader lock
settings.py   one typed Settings object, read from the environment once
seed.py, __main__.py (the CLI)
"""
