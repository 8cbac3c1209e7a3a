"""Loopback fakes of the trackers the bot exports follow-ups to: GitHub (github.FakeGitHub)
and Jira Cloud (jira.FakeJira), with faults in the manner of tests/fakeslack."""
