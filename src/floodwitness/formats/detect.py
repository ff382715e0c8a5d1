"""Auto-detection: score every format on a sample of lines and pick the best, saying how sure it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from floodwitness.errors import FormatError
from floodwitness.formats import FORMATS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from floodwitness.formats.base import LogFormat

SAMPLE_LINES = 1000
#: ... and at most this much text (the first line always counts): Python's backtracking regexes cost up to a few
#: microseconds per character on crafted lines, so the text scored, not the number of lines, bounds the time.
SAMPLE_CHARS = 256 * 1024
#: Below this share of matching sample lines no format is chosen.
MIN_CONFIDENCE = 0.5
#: Lines of the probe every format is scored on first, and the share of it a format must read to be scored
#: on the whole sample (well below MIN_CONFIDENCE, so a mixed file's format is never dropped by the probe).
PROBE_LINES = 100
PROBE_KEEP = 0.2
#: Lines a format adapts itself from (JSON keys, a W3C header).
BIND_LINES = 200


@dataclass(frozen=True)
class Detection:
    format: LogFormat
    confidence: float  # share of non-blank sample lines that have the format's layout
    candidates: tuple[tuple[str, float], ...]  # best first


def detect(lines: Sequence[str], *, source: str = "input", extra: Sequence[LogFormat] = ()) -> Detection:
    """Choose the format of ``lines`` (a sample from the start of a file), among the built-in formats and
    ``extra`` (the user's own, which win ties).

    Raises FormatError naming the best candidates when no format fits at least half of the sample.
    """
    raw = _bounded(lines)
    sample = [line for line in raw if not line.startswith("#")]
    if not sample:
        raise FormatError("no non-empty line to detect the format from", path=source,
                          hint="The file is empty or blank; name --format explicitly to ingest it anyway.")
    # Every format is scored on a probe (every n-th line, about PROBE_LINES of them); those that read a
    # fair share of it are scored again on the whole sample. The exact-layout tie-breaker uses the probe.
    probe = sample[::max(1, len(sample) // PROBE_LINES)]
    scored: list[tuple[float, float, int, int, int, str, LogFormat]] = []
    candidates_in = [(fmt, True) for fmt in extra] + [(fmt, False) for fmt in FORMATS.values()]
    for registered, own in candidates_in:
        fmt = registered.bind(raw[:BIND_LINES])
        readable = fmt.match_fraction(probe)
        if readable >= PROBE_KEEP and len(probe) < len(sample):
            readable = fmt.match_fraction(sample)
        exact = fmt.exact_fraction(probe) if readable else 0.0
        scored.append((readable, exact, int(fmt.generic), int(not own), -fmt.specificity(), fmt.name, fmt))
    # Most lines read, then most lines in the format's exact layout, then a format made for these lines over
    # a catch-all, the user's own over a built-in, and the format reading most fields.
    scored.sort(key=lambda item: (-item[0], -item[1], *item[2:6]))
    candidates = tuple((item[5], round(item[0], 4)) for item in scored[:3])
    best_score, best = scored[0][0], scored[0][6]
    if best_score < MIN_CONFIDENCE:
        listed = ", ".join(f"{name} ({score:.0%})" for name, score in candidates)
        raise FormatError(
            f"no known log format fits this file (best matches of {len(sample)} sample lines: {listed})",
            path=source,
            hint="Name the format with --format (see `floodwitness formats`), or check that this is an access log.")
    return Detection(best, best_score, candidates)


def _bounded(lines: Sequence[str]) -> list[str]:
    """The non-blank lines among the first SAMPLE_LINES, up to SAMPLE_CHARS of text (the first always counts)."""
    sample: list[str] = []
    size = 0
    for line in lines[:SAMPLE_LINES]:
        if not line.strip():
            continue
        size += len(line)
        if sample and size > SAMPLE_CHARS:
            break
        sample.append(line)
    return sample
