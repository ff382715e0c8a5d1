"""Thin or wrong evidence: a run over no parsed line, or a time window with no request, is an error that
says what was rejected and why, never a verdict dated 1970."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from floodwitness.errors import FormatError, InputError, UsageError
from floodwitness.formats.detect import detect

if TYPE_CHECKING:
    from floodwitness.ingest.store import InputRecord, Manifest

#: Reasons that say nothing about the format (a comment or a blank line is skipped whatever the format).
_NEUTRAL = frozenset({"comment", "empty_line"})
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SHOWN = 120


def require_parsed(manifest: Manifest, *, stored: bool = False) -> None:
    """Raise unless at least one line of ``manifest``'s inputs parsed: an error naming what was rejected and
    why, with the format the rejected lines look like when a ``--format`` was given. ``stored``: the manifest
    is a kept store's (the fix is then to ingest the logs again)."""
    if any(i.lines_parsed for i in manifest.inputs):
        return
    if not manifest.inputs and manifest.flow_inputs:  # a store of flows only (#21): its flows are checked apart
        require_flows(manifest)
        return
    inputs = manifest.inputs
    path = inputs[0].path if len(inputs) == 1 else None
    if not inputs:  # ingest already refuses a run of skipped files; a store may still hold none
        raise InputError("no input was read", hint="Give log files with requests in them.")
    lines = sum(i.lines_read for i in inputs)
    if lines == 0:
        what = "the file is empty (0 lines)" if path is not None else f"all {len(inputs)} inputs are empty (0 lines)"
        raise InputError(what, path=path, hint="Give a log with requests in it (a log rotated just now is empty: "
                                               "its requests are in the previous file, e.g. access.log.1).")
    reasons: dict[str, int] = {}
    for record in inputs:
        for reason, count in record.rejected_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + count
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    listed = ", ".join(f"{reason} {count:,}" for reason, count in ordered)
    formats = sorted({i.format for i in inputs if i.format})
    # a format named with --format, or the user's own with --log-format, was applied rather than detected
    own = bool(manifest.options.get("log_formats"))
    fixed = manifest.options.get("format", "auto") != "auto" or own
    as_format = f" as {' or '.join(formats)}" if formats and fixed else (
        f" (detected as {' or '.join(formats)})" if formats else "")
    where = "" if path is not None else f" of the {len(inputs)} inputs"
    message = f"no line{where} could be parsed{as_format}: all {lines:,} lines rejected ({listed})"
    raise FormatError(message, path=path, hint=_hint(inputs, formats if fixed else [], stored, own))


def require_flows(manifest: Manifest) -> None:
    """Raise unless a flow record of ``manifest``'s flow inputs parsed (a store of flows only needs one)."""
    if any(i.records_parsed for i in manifest.flow_inputs):
        return
    reasons: dict[str, int] = {}
    for record in manifest.flow_inputs:
        for reason, count in record.rejected_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + count
    listed = ", ".join(f"{reason} {count:,}" for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]))
    read = sum(i.records_read for i in manifest.flow_inputs)
    raise FormatError(f"no flow record could be read: {read:,} records read" + (f", all rejected ({listed})"
                                                                              if listed else ""),
                      path=manifest.flow_inputs[0].path if len(manifest.flow_inputs) == 1 else None,
                      hint="Give flow inputs with flows in them (see `floodwitness ingest --help`, --flows).")


def _hint(inputs: list[InputRecord], fixed: list[str], stored: bool, own: bool) -> str:
    samples = [s for i in inputs for s in i.reject_samples if s.reason not in _NEUTRAL]
    if fixed and samples:
        raw = [s.raw for s in samples]
        try:
            found = detect(raw)
        except FormatError:  # no known format fits the sample lines either
            found = None
        if found is not None and found.format.name not in fixed:
            fix = "ingest the logs again with" if stored else "give"
            other = ("check the --log-format string against a line of the log" if own else
                     "leave --format out to detect it")
            return (f"The rejected lines look like {found.format.name} ({found.confidence:.0%} of {len(raw)} sample "
                    f"lines fit it): {fix} --format {found.format.name}, or {other}.")
        if found is None:
            return ("No known format fits the rejected lines either: check that this is an access log, or describe "
                    "its format with --log-format (see `floodwitness formats`).")
    if samples:
        first = samples[0]
        text = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", first.raw)
        text = text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
        return (f"First rejected line ({first.line}, {first.reason}): {text}\n"
                "See `floodwitness formats`, or describe the format with --log-format.")
    return "The lines are only comments or blank lines; give a log with requests in it."


def no_requests_between(since: datetime | None, until: datetime | None, manifest: Manifest) -> UsageError:
    """The error for a --since/--until window that holds no parsed request: it names the logs' own period."""
    firsts = [i.first_ts for i in manifest.inputs if i.first_ts]
    lasts = [i.last_ts for i in manifest.inputs if i.last_ts]
    start = _iso(since) if since else "the start"
    end = _iso(until) if until else "the end"
    period = f": the logs run from {_iso_text(min(firsts))} to {_iso_text(max(lasts))}" if firsts and lasts else ""
    return UsageError(f"no parsed request between {start} and {end}{period}",
                      hint="Choose --since/--until within the logs' period, or leave them out to analyse it all.")


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _iso_text(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return _iso(parsed)
