"""The outbox: every Slack side effect of a change (and a follow-up's export to its tracker),
sent after the change's commit.

outbox.py    Deliverer: claim a row (most severe incident first), post or edit, record; tags
             posts with their row id so an unknown outcome is looked up, never re-posted blind
worker.py    DeliveryWorker: threads that send what is due (retries, rate limits lifting)
problems.py  what Slack's refusals mean, and the words for the person who made the change
tell.py      what a person is told after the ack: ephemeral, a response_url answer, or a DM
outcomes.py  what came of a call, recorded on its row: delivered, waiting, retried, given up
exports.py   follow-ups exported to GitHub or Jira (github.py, jira.py, trackers.py), exactly
             once as far as each allows, and the tickets' state polled without a webhook
"""

from .calls import TAG_EVENT_TYPE, tag
from .outbox import Deliverer
from .problems import ACTION_NEEDED_ERRORS, PERMANENT_ERRORS, DrainResult, Problem, undelivered
from .tell import Recipient, queue_tell
from .worker import DeliveryWorker

__all__ = [
    "ACTION_NEEDED_ERRORS",
    "PERMANENT_ERRORS",
    "TAG_EVENT_TYPE",
    "Deliverer",
    "DeliveryWorker",
    "DrainResult",
    "Problem",
    "Recipient",
    "queue_tell",
    "tag",
    "undelivered",
]
