"""`python -m bot postmortem INC-12 [--inline-images] [--out DIR]`: the post-mortem from the
command line. The Markdown alone goes to stdout (or DIR/INC-12-postmortem.md); with
`--inline-images`, a folder (DIR, by default ./INC-12-postmortem) holds the Markdown and an
images/ folder it links to, for a wiki that can't reach the site."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import screenshots
from bot.settings import Settings

from .bundle import Bundle, bundle, write_folder
from .postmortem import filename, postmortem_facts, postmortem_markdown


def postmortem(
    args: argparse.Namespace, sessions: sessionmaker[Session], settings: Settings
) -> int:
    """Links to the site only with PUBLIC_URL (a document leaves the site); people as their
    Slack ids (the CLI asks Slack nothing)."""
    public_url, role_rules = settings.public_url, settings.role_rules
    made: str | Bundle
    with sessions() as session:
        try:
            facts = postmortem_facts(session, args.incident, rules=role_rules)
        except incidents.IncidentError as error:
            print(error, file=sys.stderr)
            return 1
        incident_id = facts.incident.id
        site = f"{public_url}/incidents/{incident_id}" if public_url else None
        if args.inline_images:
            made = bundle(facts, page_url=site)
        else:
            made = postmortem_markdown(
                facts,
                page_url=site,
                screenshot_url=(lambda _, shot: f"{site}/screenshots/{shot}") if site else None,
            )
    try:
        return _write(args, sessions, incident_id, made)
    except OSError as error:  # a folder that can't be made, a file in the way, a full disk
        print(f"Can't write the post-mortem: {error}", file=sys.stderr)
        return 1


def _write(
    args: argparse.Namespace,
    sessions: sessionmaker[Session],
    incident_id: int,
    made: str | Bundle,
) -> int:
    ref = incidents.format_incident_id(incident_id)
    if isinstance(made, str):
        if args.out is None:
            sys.stdout.write(made)
            return 0
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / filename(incident_id)
        target.write_text(made, encoding="utf-8")
        print(target)
        print(f"Wrote the post-mortem of {ref} to {target}.", file=sys.stderr)
        return 0

    def read_image(screenshot_id: int) -> bytes:
        with sessions() as session:  # one image in memory at a time
            return screenshots.stored_image(session, screenshot_id)[1]

    folder = Path(args.out) if args.out else Path(f"{ref}-postmortem")
    written = write_folder(made, folder, read_image)
    for path in written:
        print(path)
    print(
        f"Wrote the post-mortem of {ref} and its {len(made.images)} image(s) to {folder}.",
        file=sys.stderr,
    )
    return 0


def export_screenshots(args: argparse.Namespace, sessions: sessionmaker[Session]) -> int:
    """`python -m bot export-screenshots INC-12 FOLDER`: the stored images, one file each."""
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    with sessions() as session:
        try:
            incident = incidents.get_incident(session, args.incident)
        except incidents.IncidentError as error:
            print(error, file=sys.stderr)
            return 1
        ids = [s.id for s in screenshots.list_screenshots(session, incident.id)]
    written: set[str] = set()
    for screenshot_id in ids:
        with sessions() as session:  # one image in memory at a time
            filename, content = screenshots.stored_image(session, screenshot_id)
        path = folder / _unique_name(screenshot_id, filename, written)
        path.write_bytes(content)
        print(path)
    ref = incidents.format_incident_id(incident.id)
    print(f"Wrote {len(ids)} screenshot(s) of {ref} to {folder}.", file=sys.stderr)
    return 0


def _unique_name(screenshot_id: int, filename: str, taken: set[str]) -> str:
    # Names come from Slack users: keep only the last path part, and never overwrite a sibling.
    name = Path(filename.replace("\\", "/")).name.lstrip(".") or f"screenshot-{screenshot_id}"
    if name in taken:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem}-{screenshot_id}.{ext}" if dot else f"{name}-{screenshot_id}"
    taken.add(name)
    return name
