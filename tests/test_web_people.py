"""The pages' directory of the workspace's people (bot.web.people): read from the fake Slack's
users.list page by page, kept for a while, read again lazily, and given up gracefully when Slack
can't answer; names typed in a form turned into Slack user ids."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from bot import incidents
from bot.settings import Settings
from bot.web.people import Directory, slack_fetch
from tests.fakeslack import FakeSlack, defaults
from tests.slackbot import bot_settings, free_port

BOB, SAM1, SAM2 = "U0BOB00001", "U0SAM00001", "U0SAM00002"


@pytest.fixture
def fake() -> FakeSlack:
    with FakeSlack() as fake:
        fake.add_user(BOB, "bob", real_name="Bob Builder")
        fake.add_user(SAM1, "sam.a", real_name="Sam Alpha", display_name="Sam")
        fake.add_user(SAM2, "sam.b", real_name="Sam Beta", display_name="Sam")
        fake.add_user("U0GONE0001", "gone", real_name="Gone Person", deleted=True)
        fake.add_user("U0ROBOT001", "robot", real_name="Some Bot", is_bot=True)
        yield fake


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def directory(settings: Settings, clock: Clock, **kwargs: object) -> Directory:
    def inline(work: Callable[[], None]) -> None:
        work()

    return Directory(
        slack_fetch(settings, page_size=2),
        fresh_for=300,
        retry_after=30,
        clock=clock,
        in_background=inline,
        **kwargs,  # type: ignore[arg-type]
    )


def test_everyone_is_read_page_by_page_sorted_by_name_without_bots_or_deactivated(
    fake: FakeSlack,
):
    people = directory(bot_settings(fake), Clock()).people()

    assert people is not None
    assert [(p.name, p.id) for p in people.everyone] == [
        ("Alice Example", defaults.USER_ID),
        ("Bob Builder", BOB),
        ("Sam", SAM1),
        ("Sam", SAM2),
    ]
    calls = fake.calls_to("users.list")
    # Seven users (the bot's own, a bot and a deactivated one among them), two a page.
    assert len(calls) == 4
    assert "cursor" not in calls[0] and all(c["cursor"] for c in calls[1:])
    assert people.get(SAM1).label == "Sam (@sam.a)"


def test_it_is_kept_for_a_while_then_read_again_lazily(fake: FakeSlack):
    clock = Clock()
    people = directory(bot_settings(fake), clock)
    people.people()
    reads = len(fake.calls_to("users.list"))

    clock.now += 299
    assert people.name(BOB) == "Bob Builder"
    people.people()
    assert len(fake.calls_to("users.list")) == reads  # still fresh

    fake.add_user("U0NEW00001", "newbie", real_name="New Person")
    clock.now += 2
    people.people()  # stale: read again (here at once; in the bot in the background)
    assert len(fake.calls_to("users.list")) == 2 * reads
    assert people.name("U0NEW00001") == "New Person"


def test_a_failure_keeps_what_was_read_and_leaves_slack_alone_a_while(fake: FakeSlack):
    clock = Clock()
    people = directory(bot_settings(fake), clock)
    assert people.people() is not None
    reads = len(fake.calls_to("users.list"))

    fake.fail("users.list", error="ratelimited", times=None)
    clock.now += 301
    assert people.people() is not None  # the stale directory, not nothing
    assert people.name(BOB) == "Bob Builder"
    failed = len(fake.calls_to("users.list"))
    clock.now += 10
    people.people()
    assert len(fake.calls_to("users.list")) == failed  # resting after the failure
    assert failed > reads


def test_without_slack_or_when_slack_is_unreachable_there_is_no_directory(fake: FakeSlack):
    nothing = Directory(slack_fetch(Settings.from_env({})))
    assert not nothing.configured and nothing.people() is None

    unreachable = replace(bot_settings(fake), slack_api_url=f"http://127.0.0.1:{free_port()}/api/")
    clock = Clock()
    people = directory(unreachable, clock)
    assert people.configured and people.people() is None
    assert people.name(BOB) is None


@pytest.mark.parametrize(
    "typed, user_id",
    [
        ("Bob Builder", BOB),
        ("  bob   builder ", BOB),
        ("@bob", BOB),
        ("bob", BOB),
        ("Sam (@sam.b)", SAM2),
        ("Sam Alpha", SAM1),
        (BOB, BOB),
        ("U0NOTINDIR1", "U0NOTINDIR1"),
        (f"<@{BOB}>", BOB),
        (f"<@{BOB}|bob>", BOB),
    ],
)
def test_a_name_or_an_id_is_a_user_id(fake: FakeSlack, typed: str, user_id: str):
    assert directory(bot_settings(fake), Clock()).resolve(typed) == user_id


@pytest.mark.parametrize(
    "typed, message",
    [
        ("", "Choose a person"),
        ("Sam", "More than one person is called 'Sam': Sam (@sam.a), Sam (@sam.b)."),
        ("Carol", "Nobody in the workspace is called 'Carol'"),
        ("Gone Person", "Nobody in the workspace is called 'Gone Person'"),
    ],
)
def test_a_name_that_is_nobody_or_several_people_is_refused(
    fake: FakeSlack, typed: str, message: str
):
    with pytest.raises(incidents.InvalidInput) as refused:
        directory(bot_settings(fake), Clock()).resolve(typed)
    assert message in str(refused.value)
    assert refused.value.field == "user"


def test_without_a_directory_only_ids_are_understood(fake: FakeSlack):
    fake.fail("users.list", error="missing_scope", times=None)
    people = directory(bot_settings(fake), Clock())
    assert people.resolve(BOB) == BOB
    with pytest.raises(incidents.InvalidInput) as refused:
        people.resolve("Bob Builder")
    assert "type the person's Slack user id" in str(refused.value)


def test_pages_opened_during_the_first_reading_wait_for_it(fake: FakeSlack):
    people = directory(bot_settings(fake), Clock())
    fake.delay("users.list", seconds=0.5, times=1)
    found: list[object] = []
    readers = [threading.Thread(target=lambda: found.append(people.people())) for _ in range(3)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=10)
    assert len(found) == 3 and all(f is not None for f in found)
    assert len(fake.calls_to("users.list")) == 4  # one reading: four pages of two
