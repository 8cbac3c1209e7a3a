"""The workspace's people, as the pages pick them by name: a directory read from Slack's
`users.list` (paged by cursor), kept in memory for some minutes and refreshed lazily.

Without Slack (not configured, unreachable, refusing) there is no directory: the pages ask for a
Slack user id instead, which is always understood. Names are presentation: who may hold what is
the domain's to say; this only turns what a person typed into a Slack user id.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.incidents import USER_ID, InvalidInput
from bot.settings import Settings

log = logging.getLogger("bot.web")

# How long a directory read from Slack is used before it is read again (in the background: the
# page that finds it stale is shown with it), and how long after a failure Slack is left alone.
FRESH_FOR = 300.0
RETRY_AFTER = 30.0
# users.list is Tier 2 (20 calls a minute): a page of 200 people at a time, at most this many
# pages (a larger workspace's others are still given by their id).
PAGE_SIZE = 200
PAGES_MAX = 50
# A page waits for Slack this long at most before it is shown without names.
TIMEOUT = 3
# A mention as Slack writes it (<@U123> or <@U123|name>), or the id alone.
_MENTION = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$")


@dataclass(frozen=True)
class Person:
    id: str
    # The name Slack shows: the display name, else the real name, else the handle.
    name: str
    handle: str
    real_name: str

    @property
    def label(self) -> str:
        """What the picker offers and what is typed back: `Bob Builder (@bob)`."""
        return f"{self.name} (@{self.handle})" if self.handle else self.name


def person_of(member: dict[str, object]) -> Person | None:
    """A users.list member as a Person; None for a bot, Slackbot or a deactivated account."""
    user_id = member.get("id")
    if (
        not isinstance(user_id, str)
        or not USER_ID.match(user_id)
        or member.get("deleted")
        or member.get("is_bot")
        or user_id == "USLACKBOT"
    ):
        return None
    profile = member.get("profile")
    profile = profile if isinstance(profile, dict) else {}
    handle = str(member.get("name") or "")
    real = str(profile.get("real_name") or member.get("real_name") or "")
    name = str(profile.get("display_name") or "") or real or handle or user_id
    return Person(user_id, " ".join(name.split()), handle, " ".join(real.split()))


class People:
    """One reading of the directory: everyone, sorted by name, and lookups by id and by name."""

    def __init__(self, everyone: list[Person]) -> None:
        self.everyone = sorted(everyone, key=lambda p: (p.name.casefold(), p.handle, p.id))
        self._by_id = {p.id: p for p in self.everyone}

    def get(self, user_id: str) -> Person | None:
        return self._by_id.get(user_id)

    def named(self, text: str) -> list[Person]:
        """Who `text` names: a picker's label exactly, else a display name, real name or handle
        (with or without its @), case and spacing aside."""
        wanted = " ".join(text.split()).casefold()
        exact = [p for p in self.everyone if p.label.casefold() == wanted]
        if exact:
            return exact
        bare = wanted.removeprefix("@")
        return [
            p
            for p in self.everyone
            if wanted in (p.name.casefold(), p.real_name.casefold()) or p.handle.casefold() == bare
        ]


Fetch = Callable[[], list[Person]]


class Directory:
    """The workspace's people for the pages; `people()` is None while Slack can't say."""

    def __init__(
        self,
        fetch: Fetch | None,
        *,
        fresh_for: float = FRESH_FOR,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
        in_background: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self._fetch = fetch
        self.fresh_for, self.retry_after = fresh_for, retry_after
        self._clock = clock
        self._in_background = in_background or _thread
        self._lock = threading.Lock()
        # Held while the first reading is under way: pages opened meanwhile wait for it rather
        # than each asking Slack for everyone.
        self._first = threading.Lock()
        self._people: People | None = None
        self._read_at = 0.0
        self._failed_at: float | None = None
        self._refreshing = False

    @property
    def configured(self) -> bool:
        return self._fetch is not None

    def people(self) -> People | None:
        """The directory: read from Slack the first time (the page waits), read again in the
        background once stale (the stale one is used meanwhile); None when Slack is not set up
        or could not be read and nothing was read before."""
        if self._fetch is None:
            return None
        now = self._clock()
        with self._lock:
            known, stale = self._people, now - self._read_at >= self.fresh_for
            failed_before = self._failed_at
            resting = self._failed_at is not None and now - self._failed_at < self.retry_after
            if known is not None and (not stale or resting or self._refreshing):
                return known
            if known is None and resting:
                return None
            self._refreshing = known is not None
        if known is not None:
            self._in_background(self._refresh)
            return known
        with self._first:
            if self._people is None and self._failed_at == failed_before:
                self._refresh()
        return self._people

    def name(self, user_id: str | None) -> str | None:
        """A person's name when the directory knows them (never waits for Slack to find out)."""
        people = self._people
        person = people.get(user_id) if people is not None and user_id else None
        return person.name if person else None

    def _refresh(self) -> None:
        assert self._fetch is not None
        try:
            everyone = self._fetch()
        except (SlackApiError, OSError, ValueError) as error:
            answer = getattr(error, "response", None)
            why = answer.get("error") if answer is not None else error
            log.warning("the people directory could not be read from Slack: %s", why)
            with self._lock:
                self._failed_at, self._refreshing = self._clock(), False
            return
        people = People(everyone)
        with self._lock:
            self._people, self._read_at = people, self._clock()
            self._failed_at, self._refreshing = None, False
        log.info("the people directory holds %d people", len(people.everyone))

    def resolve(self, typed: str, *, field: str = "user") -> str:
        """The Slack user id of whom a form names: an id (or a mention) as it is, else a name
        the directory knows one person by. InvalidInput says what to type instead."""
        text = " ".join(typed.split())
        if not text:
            raise InvalidInput("Choose a person: type their name or Slack user id.", field)
        mention = _MENTION.match(text)
        candidate = mention.group(1) if mention else text
        if USER_ID.match(candidate):
            return candidate
        people = self.people()
        if people is None:
            raise InvalidInput(
                f"Names can't be looked up in Slack right now, so {text!r} can't be found: type "
                "the person's Slack user id (U…, in their Slack profile under “Copy member ID”).",
                field,
            )
        found = people.named(text)
        if not found:
            raise InvalidInput(
                f"Nobody in the workspace is called {text!r}: pick a name from the list, or "
                "type a Slack user id.",
                field,
            )
        if len(found) > 1:
            shown = ", ".join(p.label for p in found[:5]) + ("…" if len(found) > 5 else "")
            raise InvalidInput(f"More than one person is called {text!r}: {shown}.", field)
        return found[0].id


def _thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="people-directory", daemon=True).start()


def slack_fetch(settings: Settings, *, page_size: int = PAGE_SIZE) -> Fetch | None:
    """Reading everyone from `users.list` with the bot's token; None without Slack."""
    token = settings.slack_bot_token
    if not token:
        return None
    client = WebClient(token=token, base_url=settings.slack_api_url, timeout=TIMEOUT)

    def fetch() -> list[Person]:
        everyone: list[Person] = []
        cursor = ""
        for _ in range(PAGES_MAX):
            answer = client.users_list(limit=page_size, cursor=cursor or None)
            members = answer.get("members") or []
            everyone += [p for p in map(person_of, members) if p is not None]
            cursor = (answer.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return everyone
        log.warning(
            "the people directory stops at %d pages of users.list (%d people): others are "
            "picked by their Slack user id",
            PAGES_MAX,
            len(everyone),
        )
        return everyone

    return fetch
