"""Weekly charts as PNG bytes: incidents declared per week stacked by severity, the mean time
to resolve per week by severity, and follow-ups opened and completed per week.

matplotlib's object API (a Figure on its own Agg canvas), never pyplot: pyplot keeps global
state that threads serving requests at once would share. matplotlib is imported on the first
chart, so starting the bot and acking Slack never pay for loading it, and under a lock: two
threads importing it at once (a page's two charts) each see the other's half-initialised
modules, and the failed import leaves matplotlib broken until a restart.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from bot.incidents import SEVERITY_LABELS, WeekRow
from bot.incidents.followup_stats import FollowUpWeek
from db.models import Severity

from .numbers import Period

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH, HEIGHT, DPI = 800, 400, 100
# The web pages' severity colours (base.html).
COLOURS = {
    Severity.SEV1: "#b00020",
    Severity.SEV2: "#e65100",
    Severity.SEV3: "#b8860b",
    Severity.SEV4: "#546e7a",
}
# More week labels than this overlap; the others are left out.
MAX_LABELS = 12


_IMPORT_LOCK = threading.Lock()


def _load_matplotlib() -> None:
    with _IMPORT_LOCK:
        import matplotlib.backends.backend_agg
        import matplotlib.figure
        import matplotlib.ticker  # noqa: F401


def _figure(title: str, period: Period) -> tuple[Figure, Axes]:
    _load_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    mondays = period.mondays
    step = math.ceil(len(mondays) / MAX_LABELS)
    shown = list(range(0, len(mondays), step))
    axes.set_xticks(shown, _week_labels([mondays[i] for i in shown]))
    axes.tick_params(labelsize="small")
    axes.set_xlim(-0.6, len(mondays) - 0.4)
    axes.set_xlabel(f"Week starting (UTC), {period.describe()}")
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    return figure, axes


def _week_labels(mondays: list[date]) -> list[str]:
    """`14 Sep`, with the year under the first label and wherever the year changes."""
    labels, year = [], None
    for monday in mondays:
        labels.append(f"{monday:%d %b}" if monday.year == year else f"{monday:%d %b}\n{monday:%Y}")
        year = monday.year
    return labels


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _by_week(rows: Sequence[WeekRow], period: Period) -> dict[tuple[date, Severity], WeekRow]:
    weeks = set(period.mondays)
    return {(row.week, row.severity): row for row in rows if row.week in weeks}


def _legend(axes: Axes, handles: list[Any]) -> None:
    # Beside the plot, never over a bar or a point.
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")


def _no_data(axes: Axes, message: str) -> None:
    axes.set_ylim(0, 1)
    axes.set_yticks([])
    axes.text(0.5, 0.5, message, transform=axes.transAxes, ha="center", va="center")


def incidents_chart(rows: Sequence[WeekRow], period: Period) -> bytes:
    """Incidents declared per week, stacked by severity (SEV1 at the bottom)."""
    figure, axes = _figure("Incidents declared per week", period)
    from matplotlib.ticker import MaxNLocator

    found = _by_week(rows, period)
    bottoms = [0] * period.weeks
    handles = []
    for severity in Severity:
        counts = [
            found[(monday, severity)].declared if (monday, severity) in found else 0
            for monday in period.mondays
        ]
        handles.append(
            axes.bar(
                range(period.weeks),
                counts,
                bottom=bottoms,
                color=COLOURS[severity],
                label=f"{severity.value} ({SEVERITY_LABELS[severity]})",
            )
        )
        bottoms = [b + c for b, c in zip(bottoms, counts, strict=True)]
    if any(bottoms):
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylim(0, max(bottoms) * 1.1)
        axes.set_ylabel("incidents")
        _legend(axes, handles)
    else:
        _no_data(axes, "No incidents were declared in this period.")
    return _png(figure)


def mttr_chart(rows: Sequence[WeekRow], period: Period) -> bytes:
    """Mean hours from declaration to resolution, per week of declaration and severity; weeks
    without a resolved incident of a severity leave a gap in its line."""
    figure, axes = _figure("Mean time to resolve, by week declared", period)
    found = _by_week(rows, period)
    handles = []
    for severity in Severity:
        hours = []
        for monday in period.mondays:
            row = found.get((monday, severity))
            mean = row.mean_time_to_resolve if row else None
            hours.append(math.nan if mean is None else mean / 3600)
        if all(math.isnan(h) for h in hours):
            continue
        (line,) = axes.plot(
            range(period.weeks),
            hours,
            color=COLOURS[severity],
            marker="o",
            label=f"{severity.value} ({SEVERITY_LABELS[severity]})",
        )
        handles.append(line)
    if handles:
        axes.margins(y=0.1)
        axes.set_ylim(bottom=0)
        axes.set_ylabel("hours")
        _legend(axes, handles)
    else:
        _no_data(axes, "No incident declared in this period is resolved yet.")
    return _png(figure)


FOLLOWUP_COLOURS = {"opened": "#1565c0", "completed": "#2e7d32"}


def followups_chart(weeks: Sequence[FollowUpWeek], period: Period, overdue_now: int) -> bytes:
    """Follow-ups opened and completed per week, side by side; how many are overdue now in the
    title, the number a weekly review starts from."""
    figure, axes = _figure(f"Follow-ups per week ({overdue_now} overdue now)", period)
    from matplotlib.ticker import MaxNLocator

    found = {week.week: week for week in weeks}
    width = 0.4
    handles, highest = [], 0
    for offset, key in ((-width / 2, "opened"), (width / 2, "completed")):
        counts = [getattr(found[m], key) if m in found else 0 for m in period.mondays]
        highest = max(highest, *counts)
        handles.append(
            axes.bar(
                [n + offset for n in range(period.weeks)],
                counts,
                width=width,
                color=FOLLOWUP_COLOURS[key],
                label=key,
            )
        )
    if highest:
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylim(0, highest * 1.1)
        axes.set_ylabel("follow-ups")
        _legend(axes, handles)
    else:
        _no_data(axes, "No follow-up was opened or completed in this period.")
    return _png(figure)
