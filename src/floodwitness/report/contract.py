"""The report's contract (``floodwitness.report/1``): its schema name, the fields every report has, and the check
and loading of a saved report. The analysis writes it; the renderers, ``report`` and ``mitigate`` read it through
here. Fields are added, never renamed or removed (the README's "The JSON report" lists them; the latest added:
``verdict.impact``, ``verdict.attempt`` and ``incidents[].impact``, see :mod:`floodwitness.analysis.impact`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from floodwitness.errors import UsageError

SCHEMA = "floodwitness.report/1"
#: the top-level fields every report of this schema has
REQUIRED = ("schema", "tool", "verdict", "incidents", "findings", "inputs", "timeline")
#: ``incidents[].behaviour`` (added for #20): what the incident's hostile sources did. ``kind``: ``scan``,
#: ``brute_force``, ``scrape``, ``mixed`` (several together), ``flood`` (an attack's volume), ``none``; ``sources`` and
#: ``requests`` of the sources showing it (a flood: its suspected attackers, requests null); ``share`` of the
#: incident's requests; ``findings``: the ids that show it; ``summary``: in words; ``also``: behaviours shown by fewer
#: sources, each ``{kind, finding, sources, requests}``. The verdict kind ``abuse`` is such behaviour that denied no
#: service.
INCIDENT_BEHAVIOUR = ("kind", "sources", "requests", "share", "findings", "summary", "also")
#: the fields of ``incidents[].outage`` (null when the incident ended in no collapse of traffic) and of each entry of
#: ``log_gaps`` (present only when a collapse falls exactly between two input files): added for outages (#20)
OUTAGE_FIELDS = ("began", "ended", "minutes", "served", "expected", "depth", "significance_log10", "burst_size",
                 "same_time_earlier_days", "networks", "before", "recovery", "log_ends", "file_boundaries", "cause",
                 "cause_kind", "cause_note", "query", "clock_jump")
_WRITE_IT = "Give the file written by `floodwitness analyze LOGS --json FILE`."


def check_report(report: Any, required: tuple[str, ...] = REQUIRED) -> dict[str, Any]:
    """``report`` if it is a floodwitness report this version reads, with the ``required`` fields, else a UsageError
    saying what is wrong."""
    if not isinstance(report, dict):
        raise UsageError("not a floodwitness report: the JSON is not an object", hint=_WRITE_IT)
    if report.get("schema") != SCHEMA:
        raise UsageError(f"not a floodwitness report: schema is {report.get('schema')!r}, expected {SCHEMA!r}",
                         hint=_WRITE_IT)
    missing = [key for key in required if key not in report]
    if missing:
        raise UsageError(f"the report lacks {', '.join(missing)}",
                         hint="Write it again with `floodwitness analyze LOGS --json FILE`.")
    return report


def load_report(path: str, required: tuple[str, ...] = REQUIRED) -> dict[str, Any]:
    """The report saved in ``path``, checked (``required``: the fields the reader needs, by default every one a
    report has); a UsageError naming the file when it cannot be read, is not JSON or not a report."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}", hint=_WRITE_IT) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not JSON: {exc}", hint=_WRITE_IT) from None
    try:
        report = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}", hint=_WRITE_IT) from None
    try:
        return check_report(report, required)
    except UsageError as exc:
        raise UsageError(exc.message, hint=exc.hint, path=path) from None
