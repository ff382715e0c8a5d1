"""``mitigate`` as a library function: a report's mitigation section turned into rules for one enforcement point,
with the summary of what each rule set would have stopped. The CLI's ``mitigate`` only reads its arguments and
writes the text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from floodwitness.errors import UsageError
from floodwitness.mitigation.exports import EXPORTERS, ExportContext, render
from floodwitness.mitigation.network import network_plan
from floodwitness.mitigation.network_export import NETWORK_EXPORTERS, render_network
from floodwitness.mitigation.network_model import BgpSession, NetworkOptions
from floodwitness.mitigation.network_text import summary_lines as network_summary
from floodwitness.mitigation.protected import protected_ranges
from floodwitness.mitigation.rules import pick_setting, plan_rules, summary_lines

if TYPE_CHECKING:
    import pyarrow as pa


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


def mitigate_network(network: dict[str, Any] | None, flows: pa.Table | None, options: MitigateOptions, *,
                     allow_prefix_blackhole: bool = False, bgp: BgpSession | None = None) -> Mitigated:
    """The report's ``network`` section (None: a report without flows) turned into FlowSpec, blackhole or firewall
    rules for ``options.target`` (one of ``NETWORK_EXPORTERS``), measured on ``flows`` (FLOW_ARROW_SCHEMA, the
    store's flow table; None: not measured). The allowlist's sources are excepted from every rule."""
    if options.target not in NETWORK_EXPORTERS:
        raise UsageError(f"{options.target!r} is not a network enforcement point",
                         hint="Choose one of: " + ", ".join(sorted(NETWORK_EXPORTERS)) + ".")
    if network is None:
        return Mitigated(render_network(None, options.target), ["no network section: analyze with --flows"])
    plan = network_plan(list(network.get("episodes") or []), flows,
                        NetworkOptions(protected=protected_ranges(options.allow),
                                       allow_prefix_blackhole=allow_prefix_blackhole, bgp=bgp or BgpSession()))
    return Mitigated(render_network(plan, options.target), network_summary(plan.rules, plan.notes))
