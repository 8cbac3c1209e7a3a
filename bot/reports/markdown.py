"""Markdown for documents that leave the site (post-mortems): people's text shown as typed, and
links only where we chose to make one.

Everything people typed is shown literally: Markdown's markup characters are escaped, so a title
such as `# hi | x` or a note holding `[link](javascript:...)` can't add headings, tables or
links to the document.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_MARKUP = re.compile(r"([\\`*_\[\]#|<>])")
# What, at the start of a line, would open a list or a code fence, or make a rule or a heading
# of the line before.
_BLOCK_MARKER = re.compile(r"^(?:[-+=](?:\s|$)|[-=][-=\s]*$|~)")
_ORDERED_MARKER = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
# A link we make from a stored URL (a tracker's ticket, a Slack message): http(s) only, and
# nothing that could end CommonMark's `<...>` destination.
_SAFE_URL = re.compile(r"^https?://[^\s<>\\]+$")


def escape(text: str) -> str:
    """Text shown as typed. Parentheses are left alone: with `[` and `]` escaped they can't
    form a link, and escaping them would make every aside unreadable in the raw file."""
    return _MARKUP.sub(r"\\\1", text)


def inline(text: str) -> str:
    """User text on one line (a title, a name, a caption)."""
    return escape(" ".join(text.split()))


def _escape_line(line: str) -> str:
    # Stripped: four leading spaces would make the line code.
    escaped = escape(line.strip())
    if _BLOCK_MARKER.match(escaped):
        return "\\" + escaped
    ordered = _ORDERED_MARKER.match(escaped)
    if ordered:
        return f"{ordered.group(1)}\\{ordered.group(2)}{escaped[ordered.end() :]}"
    return escaped


def paragraphs(text: str) -> list[str]:
    """Multi-line user text as lines of Markdown: its line breaks kept (a trailing backslash is
    CommonMark's hard break), runs of blank lines as one paragraph break."""
    lines: list[str] = []
    for raw in text.strip().splitlines():
        line = _escape_line(raw)
        if line:
            if lines and lines[-1]:
                lines[-1] += "\\"
            lines.append(line)
        elif lines and lines[-1]:
            lines.append("")
    return lines


def link(label: str, url: str | None) -> str:
    """`[label](<url>)` for an http(s) URL; the label alone for anything else (a stored URL is
    data: `javascript:` or a URL breaking out of the link must not become one). `label` is
    Markdown already."""
    if url and _SAFE_URL.match(url):
        return f"[{label}](<{url}>)"
    return label


def at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
