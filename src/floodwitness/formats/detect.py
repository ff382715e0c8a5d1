"""Auto-detection: score every format on a sample of lines and pick the best, saying how sure it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from floodwitness.errors import FormatError
from floodwitness.formats import FORMATS
from floodwitness.formats.json_format import NginxJsonFormat
from floodwitness.formats.template import TemplateFormat, lenient_match

if TYPE_CHECKING:
    from collections.abc import Sequence

    from floodwitness.formats.base import LogFormat

SAMPLE_LINES = 1000
#: ... and at most this much text (the first line always counts): Python's backtracking regexes cost up to a few
#: microseconds per character on crafted lines, so the text scored, not the number of lines, bounds the time.
SAMPLE_CHARS = 256 * 1024
#: Below this share of matching sample lines no format is chosen.
MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Detection:
    format: LogFormat
    confidence: float  # share of non-blank sample lines that have the format's layout
    candidates: tuple[tuple[str, float], ...]  # best first


def detect(lines: Sequence[str], *, source: str = "input") -> Detection:
    """Choose the format of ``lines`` (a sample from the start of a file).

    Raises FormatError naming the best candidates when no format fits at least half of the sample.
    """
    sample = _bounded(lines)
    if not sample:
        raise FormatError("no non-empty line to detect the format from", path=source,
                          hint="The file is empty or blank; name --format explicitly to ingest it anyway.")
    scored: list[tuple[float, float, int, str, LogFormat]] = []
    try:
        for name, registered in FORMATS.items():
            fmt = registered.bind(sample) if isinstance(registered, NginxJsonFormat) else registered
            readable = fmt.match_fraction(sample)
            exact = fmt.exact_fraction(sample) if isinstance(fmt, TemplateFormat) else readable
            scored.append((readable, exact, fmt.specificity(), name, fmt))
    finally:
        lenient_match.cache_clear()  # the cache holds sample lines: keep them no longer than one detection
    # Most lines read, then most lines in the format's exact layout, then the format reading most fields.
    scored.sort(key=lambda item: (-item[0], -item[1], -item[2], item[3]))
    candidates = tuple((name, round(score, 4)) for score, _, _, name, _ in scored[:3])
    best_score, _, _, _, best = scored[0]
    if best_score < MIN_CONFIDENCE:
        listed = ", ".join(f"{name} ({score:.0%})" for name, score in candidates)
        raise FormatError(
            f"no known log format fits this file (best matches of {len(sample)} sample lines: {listed})",
            path=source,
            hint="Name the format with --format (see `floodwitness formats`), or check that this is an access log.")
    return Detection(best, best_score, candidates)


def _bounded(lines: Sequence[str]) -> list[str]:
    """The non-blank, non-comment lines among the first SAMPLE_LINES, up to SAMPLE_CHARS of text."""
    sample: list[str] = []
    size = 0
    for line in lines[:SAMPLE_LINES]:
        if not line.strip() or line.startswith("#"):
            continue
        size += len(line)
        if sample and size > SAMPLE_CHARS:
            break
        sample.append(line)
    return sample
