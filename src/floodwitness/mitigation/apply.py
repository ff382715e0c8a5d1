"""``mitigate`` as a library function: a report's mitigation section turned into rules for one enforcement point,
with the summary of what each rule set would have stopped. The CLI's ``mitigate`` only reads its arguments and
writes the text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from floodwitness.errors import UsageError
from floodwitness.mitigation.exports import EXPORTERS, ExportContext, render
from floodwitness.mitigation.protected import protected_ranges
from floodwitness.mitigation.rules import pick_setting, plan_rules, summary_lines


@dataclass(frozen=True)
class MitigateOptions:
    """What ``floodwitness mitigate`` asks for (its options, parsed)."""

    target: str                    # an exporter's name (see ``EXPORTERS``)
    allow: tuple[str, ...] = ()    # networks never blocked or limited (CIDRs), besides the special and crawler ranges
    expire_seconds: int = 86400
    max_rules: int = 10_000
    min_prefix_v4: int = 16
    min_prefix_v6: int = 32
    setting: str = "recommended"   # the rate-limit setting to emit


@dataclass(frozen=True)
class Mitigated:
    text: str            # the rules in the enforcement point's own syntax
    summary: list[str]   # what each rule set would have stopped (the replayed effect)


def mitigate(mitigation: dict[str, Any], options: MitigateOptions) -> Mitigated:
    """The rules for a report's ``mitigation`` section (the allowlist, verified crawlers and special-purpose ranges
    cut out of every one), rendered for ``options.target``."""
    if options.target not in EXPORTERS:
        raise UsageError(f"unknown enforcement point {options.target!r}",
                         hint="Choose one of: " + ", ".join(sorted(EXPORTERS)) + ".")
    protected = protected_ranges(options.allow)
    rules = plan_rules(mitigation, protected, expire_seconds=options.expire_seconds, max_rules=options.max_rules,
                       min_prefix_v4=options.min_prefix_v4, min_prefix_v6=options.min_prefix_v6)
    rate_limits = mitigation.get("rate_limits")
    chosen = pick_setting(rate_limits, options.setting)
    return Mitigated(render(options.target, ExportContext(rules, protected, chosen)), summary_lines(rules, rate_limits))
