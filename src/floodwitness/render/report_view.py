"""What the HTML and Markdown reports show, read from the report dictionary once: the hypotheses with the
findings they cite, findings grouped by section, the blocklist rows worth a table, input totals and the
command that reproduces the report. No escaping here: each renderer escapes for its own medium."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from floodwitness.errors import UsageError
from floodwitness.verdict import ATTACK_KINDS

SCHEMA = "floodwitness.report/1"
REQUIRED = ("schema", "tool", "verdict", "incidents", "findings", "inputs", "timeline")

#: Findings about who attacked and how (clusters of sources, behaviour, tool fingerprints).
CLUSTER_KINDS = ("new_networks", "concentrated_sources", "bot_behaviour", "cache_busting", "tool_fingerprint")
IMPACT_KINDS = ("legitimate_impact", "server_errors", "errors_without_surge", "known_clients_surge")

#: The impact's errors when the logs have no status field (the report's ``impact.not_logged``).
ERRORS_NOT_LOGGED = "server errors not known: the logs have no response status"

_CITATION = re.compile(r"\s*\[([A-Za-z0-9_.:-]+)\]\s*$")


def check_report(report: Any) -> dict[str, Any]:
    """``report`` if it is a floodwitness report this version renders, else a UsageError saying what is wrong."""
    if not isinstance(report, dict):
        raise UsageError("not a floodwitness report: the JSON is not an object",
                         hint="Give the file written by `floodwitness analyze LOGS --json FILE`.")
    if report.get("schema") != SCHEMA:
        raise UsageError(f"not a floodwitness report: schema is {report.get('schema')!r}, expected {SCHEMA!r}",
                         hint="Give the file written by `floodwitness analyze LOGS --json FILE`.")
    missing = [key for key in REQUIRED if key not in report]
    if missing:
        raise UsageError(f"the report lacks {', '.join(missing)}",
                         hint="Write it again with `floodwitness analyze LOGS --json FILE`.")
    return report


def span_warning(report: dict[str, Any]) -> str | None:
    """What the report left out of its span (stray timestamps far from the logs' main period), or None."""
    span = report.get("time_span") or {}
    outside = int(span.get("requests_outside") or 0)
    if not outside:
        return None
    first = (span.get("samples_outside") or [{}])[0]
    where = f", e.g. {first.get('file')}:{first.get('line')} at {first.get('ts')}" if first.get("file") else ""
    others = len(span.get("periods") or []) - 1
    return (f"{outside:,} request(s) in {others} other period(s) more than a week from the analysed span "
            f"({span.get('since')} to {span.get('until')}) were left out{where}; --since/--until analyse them")


@dataclass(frozen=True)
class Item:
    """One piece of evidence for or against a hypothesis, with the finding it cites (if any)."""

    text: str
    finding: dict[str, Any] | None


@dataclass(frozen=True)
class Hypothesis:
    kind: str
    score: float
    supports: tuple[Item, ...]
    against: tuple[Item, ...]


class ReportView:
    def __init__(self, report: dict[str, Any]) -> None:
        self.report = check_report(report)

    @cached_property
    def findings(self) -> dict[str, dict[str, Any]]:
        return {f["id"]: f for f in self.report["findings"]}

    def _item(self, text: str) -> Item:
        match = _CITATION.search(text)
        if match and match.group(1) in self.findings:
            return Item(text[: match.start()], self.findings[match.group(1)])
        return Item(text, None)

    @cached_property
    def hypotheses(self) -> list[Hypothesis]:
        return [Hypothesis(h["kind"], float(h["score"]), tuple(self._item(t) for t in h["for"]),
                           tuple(self._item(t) for t in h["against"]))
                for h in self.report["verdict"].get("hypotheses", [])]

    def findings_of(self, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        return [f for f in self.report["findings"] if f["kind"] in kinds]

    @property
    def attack(self) -> bool:
        """Whether the verdict names an attack (so its suspects are attackers, and a blocklist applies)."""
        return bool(self.report["verdict"]["kind"] in ATTACK_KINDS)

    @property
    def main_incident(self) -> dict[str, Any] | None:
        incidents = self.report["incidents"]
        return incidents[0] if incidents else None

    def blocklist_rows(self, limit: int) -> list[dict[str, Any]]:
        """Entries with collateral first (they are what a reviewer must check), then the largest ones."""
        entries = (self.report.get("mitigation") or {}).get("blocklist") or []
        costly = [e for e in entries if e.get("collateral_clients")]
        rest = sorted((e for e in entries if not e.get("collateral_clients")), key=lambda e: -int(e["requests"]))
        return (costly + rest)[:limit]

    @property
    def blocklist_total(self) -> int:
        return len((self.report.get("mitigation") or {}).get("blocklist") or [])

    @property
    def span_warning(self) -> str | None:
        return span_warning(self.report)

    @cached_property
    def totals(self) -> dict[str, int]:
        inputs = self.report["inputs"]
        return {key: sum(int(i.get(key) or 0) for i in inputs)
                for key in ("lines_read", "lines_parsed", "lines_rejected", "bytes")}

    @cached_property
    def parameters(self) -> list[tuple[str, Any]]:
        """The parameters flattened to ``name, value`` pairs (``window_policy.sigma``)."""
        out: list[tuple[str, Any]] = []

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), inner)
            else:
                out.append((prefix, value))

        walk("", self.report.get("parameters") or {})
        return out

    @cached_property
    def command(self) -> str:
        """The command line that reproduces the analysis (on the store, when it was kept)."""
        params = self.report.get("parameters") or {}
        if params.get("store") and not params.get("store_is_temporary"):
            args = ["floodwitness", "analyze", str(params["store"])]
        else:
            args = ["floodwitness", "analyze", *(str(i["path"]) for i in self.report["inputs"])]
        for option in ("since", "until"):
            if params.get(option):
                args += [f"--{option}", str(params[option])]
        baseline = params.get("baseline")
        if isinstance(baseline, list) and len(baseline) == 2:
            args += ["--baseline", f"{baseline[0]}..{baseline[1]}"]
        return shlex.join(args)
