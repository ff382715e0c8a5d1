"""The blocklist and the rate limits for each enforcement point: a registry of exporters.

Each exporter is a function named after its target (``nginx_geo`` -> ``nginx-geo``) whose docstring is
its description; it turns an :class:`ExportContext` (the planned rules, the protected ranges and the
chosen rate-limit setting) into the text of one file. Every rule carries a comment with its evidence
and expiry (formats without comments carry them in a field), and every comment goes through
:func:`~floodwitness.mitigation.rules.safe_comment`, so report text can never break a file's syntax.
The targets of ``mitigate --to`` are this registry's names. Beside them, :func:`blocklist_text` writes the
report's own blocklist as plain CIDR lines (``analyze --blocklist``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from floodwitness.mitigation import network_firewall
from floodwitness.mitigation.network_export import NETWORK_EXPORTERS
from floodwitness.mitigation.ratelimit import PATH_CLASSES
from floodwitness.mitigation.rules import go_duration, iso, safe_comment
from floodwitness.safe import terminal_safe

if TYPE_CHECKING:
    from collections.abc import Callable

    from floodwitness.mitigation.network_model import NetworkPlan
    from floodwitness.mitigation.protected import ProtectedRanges
    from floodwitness.mitigation.rules import RuleSet

RULES_SCHEMA: Final = "floodwitness.rules/1"
SET_NAME: Final = "floodwitness"  # ipset / nftables / iptables names
ZONE_SIZE: Final = "10m"  # nginx shared memory per zone: ~80k client addresses


@dataclass(frozen=True)
class ExportContext:
    """What an exporter renders."""

    rules: RuleSet
    protected: ProtectedRanges
    rate_limits: dict[str, Any] | None = None  #: the chosen setting of report mitigation.rate_limits
    network: NetworkPlan | None = None  #: the network episodes' countermeasures (network_* exporters only)


@dataclass(frozen=True)
class Exporter:
    name: str
    description: str
    suffix: str
    render: Callable[[ExportContext], str]


EXPORTERS: dict[str, Exporter] = {}


def _exporter(suffix: str) -> Callable[[Callable[[ExportContext], str]], Callable[[ExportContext], str]]:
    def register(func: Callable[[ExportContext], str]) -> Callable[[ExportContext], str]:
        name = func.__name__.rstrip("_").replace("_", "-")
        EXPORTERS[name] = Exporter(name, (func.__doc__ or "").strip().splitlines()[0], suffix, func)
        return func
    return register


def _network(render_plan: Callable[[NetworkPlan | None], str]) -> Callable[[ExportContext], str]:
    def render_context(ctx: ExportContext) -> str:
        return render_plan(ctx.network)
    return render_context


def render(target: str, ctx: ExportContext) -> str:
    return EXPORTERS[target].render(ctx)


def targets_text() -> str:
    """The registered targets as a sentence: "nginx, nginx-geo, ... or json" (for help texts)."""
    names = list(EXPORTERS)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _header(ctx: ExportContext, what: str, mark: str = "#") -> list[str]:
    r = ctx.rules
    lines = [f"floodwitness {what}: {len(r.rules):,} rules from {r.entries_in_report:,} blocklist entries",
             f"generated {iso(r.generated_at)}; expires {iso(r.expires_at)} ({go_duration(r.expire_seconds)}): "
             "remove or regenerate the rules by then",
             f"covers {r.attack_requests_covered:,} of {r.attack_requests_total:,} attack requests; "
             f"{r.collateral_clients:,} known clients inside"]
    if r.incident:
        lines.append(f"incident {r.incident}")
    lines += [f"note: {m}" for m in r.messages]
    return [f"{mark} {safe_comment(line, 400)}" for line in lines]


def _bare(cidr: str) -> str:
    """A single address without its /32 or /128 (what CrowdSec's Ip scope and some tools expect)."""
    addr, _, length = cidr.partition("/")
    return addr if length in ("32", "128") and ("." in addr) == (length == "32") else cidr


# --- the report's own blocklist, as it stands -------------------------------------------------------


def blocklist_text(mitigation: dict[str, Any], *, now: datetime | None = None) -> str:
    """The report's blocklist as plain CIDR lines under a comment saying what they cover.

    What ``analyze --blocklist`` writes and the HTML report offers: the list as the analysis built it (protected
    ranges already left out), from the report's ``mitigation`` section. Not a ``mitigate --to`` target: those
    render the rules :func:`~floodwitness.mitigation.rules.plan_rules` made of it (``--allow``, caps, expiry)."""
    entries = mitigation.get("blocklist", [])
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# floodwitness blocklist: {len(entries):,} entries, generated {stamp}"]
    if "attackers_total" in mitigation:
        lines.append(f"# covers {mitigation['attackers_covered']:,} of {mitigation['attackers_total']:,} attacking "
                     f"sources; {mitigation['collateral_clients_total']:,} known clients inside")
    else:
        lines.append(f"# {mitigation.get('note', 'nothing to block')}")
    lines.extend(str(e["cidr"]) for e in entries)
    return "\n".join(lines) + "\n"


# --- blocklists ------------------------------------------------------------------------------------


@_exporter(".conf")
def nginx(ctx: ExportContext) -> str:
    """nginx `deny` rules (and the rate limits, when the report has them): include in the http {} block."""
    lines = _header(ctx, "blocklist for nginx")
    lines += ["# include this file in the http {} block (e.g. /etc/nginx/conf.d/). A server or location with its",
              "# own allow/deny or limit_req rules does not inherit these: include it there too."]
    lines += [f"deny {rule.cidr};  # {ctx.rules.comment(rule)}" for rule in ctx.rules.rules]
    if ctx.rate_limits:
        lines += ["", *_nginx_limits(ctx)]
    return "\n".join(lines) + "\n"


@_exporter(".conf")
def nginx_geo(ctx: ExportContext) -> str:
    """nginx `geo` map setting $floodwitness_blocked to 1 for blocked clients (http {} block)."""
    lines = _header(ctx, "blocklist as an nginx geo map")
    lines += ["# include in the http {} block, then in a server: if ($floodwitness_blocked) { return 403; }",
              "geo $floodwitness_blocked {", "    default 0;"]
    lines += [f"    {rule.cidr} 1;  # {ctx.rules.comment(rule)}" for rule in ctx.rules.rules]
    return "\n".join([*lines, "}"]) + "\n"


@_exporter(".sh")
def iptables(ctx: ExportContext) -> str:
    """Shell script loading the rules into an iptables/ip6tables chain FLOODWITNESS (atomic restore)."""
    lines = ["#!/bin/sh", *_header(ctx, "blocklist for iptables"),
             "# iptables rules do not expire: run this script again, or remove the chain, by the date above.",
             "set -e"]
    for version, tool in ((4, "iptables"), (6, "ip6tables")):
        rules = [r for r in ctx.rules.rules if r.version == version]
        if not rules:
            continue
        lines += [f"{tool}-restore --noflush <<'FLOODWITNESS_RULES'", "*filter", ":FLOODWITNESS - [0:0]"]
        lines += [f'-A FLOODWITNESS -s {r.cidr} -m comment --comment "{ctx.rules.comment(r)}" -j DROP'
                  for r in rules]
        lines += ["COMMIT", "FLOODWITNESS_RULES",
                  f"{tool} -C INPUT -j FLOODWITNESS 2>/dev/null || {tool} -I INPUT -j FLOODWITNESS"]
    return "\n".join(lines) + "\n"


@_exporter(".ipset")
def ipset(ctx: ExportContext) -> str:
    """`ipset restore` file: hash:net sets floodwitness4/floodwitness6 whose entries time out at the expiry."""
    seconds = ctx.rules.expire_seconds
    lines = [*_header(ctx, "blocklist for ipset"),
             f"# load with: ipset restore -exist < FILE; then e.g. iptables -I INPUT -m set --match-set {SET_NAME}4 "
             "src -j DROP"]
    for version, family in ((4, "inet"), (6, "inet6")):
        name = f"{SET_NAME}{version}"
        lines.append(f"create {name} hash:net family {family} timeout {seconds} comment")
        lines += [f'add {name} {r.cidr} timeout {seconds} comment "{ctx.rules.comment(r)}"'
                  for r in ctx.rules.rules if r.version == version]
    return "\n".join(lines) + "\n"


@_exporter(".nft")
def nftables(ctx: ExportContext) -> str:
    """nftables table inet floodwitness with timed interval sets and an input chain dropping them."""
    timeout = go_duration(ctx.rules.expire_seconds)
    lines = ["#!/usr/sbin/nft -f", *_header(ctx, "blocklist for nftables"),
             "# load with: nft -f FILE (replaces the floodwitness table; elements expire by themselves)",
             f"table inet {SET_NAME} {{}}", f"delete table inet {SET_NAME}", f"table inet {SET_NAME} {{"]
    for version, kind in ((4, "ipv4_addr"), (6, "ipv6_addr")):
        rules = [r for r in ctx.rules.rules if r.version == version]
        lines += [f"    set blocked{version} {{", f"        type {kind}", "        flags interval, timeout"]
        if rules:
            body = ",\n".join(f'            {r.cidr} timeout {timeout} comment "{ctx.rules.comment(r)[:120]}"'
                              for r in rules)
            lines += ["        elements = {", body, "        }"]
        lines.append("    }")
    lines += ["    chain input {", "        type filter hook input priority -10; policy accept;",
              "        ip saddr @blocked4 drop", "        ip6 saddr @blocked6 drop", "    }", "}"]
    return "\n".join(lines) + "\n"


@_exporter(".acl")
def haproxy(ctx: ExportContext) -> str:
    """HAProxy ACL pattern file: acl floodwitness src -f FILE, then http-request deny if floodwitness."""
    lines = [*_header(ctx, "blocklist for HAProxy"),
             "# use: acl floodwitness_blocked src -f /etc/haproxy/floodwitness.acl",
             "#      http-request deny if floodwitness_blocked"]
    for rule in ctx.rules.rules:
        lines += [f"# {ctx.rules.comment(rule)}", rule.cidr]
    return "\n".join(lines) + "\n"


@_exporter(".json")
def crowdsec(ctx: ExportContext) -> str:
    """CrowdSec decisions for `cscli decisions import -i FILE.json` (ban, duration = the expiry)."""
    duration = go_duration(ctx.rules.expire_seconds)
    decisions = [{"duration": duration, "reason": "floodwitness: " + ctx.rules.comment(r)[:200],
                  "scope": "Ip" if _bare(r.cidr) != r.cidr else "Range", "type": "ban", "value": _bare(r.cidr)}
                 for r in ctx.rules.rules]
    return json.dumps(decisions, indent=1) + "\n"


#: What makes a spreadsheet read a cell as a formula (OWASP's list; the full-width forms work in some locales).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: one line, control characters shown as ``\\xNN``, and text starting
    with = + - @ (or their full-width forms) gets a leading '."""
    text = terminal_safe(str(value), None)  # one line of visible text: control characters as \xNN
    return "'" + text if text.startswith(_FORMULA_START) else text


@_exporter(".csv")
def csv_(ctx: ExportContext) -> str:
    """CSV, one rule per row with its evidence (cells guarded against spreadsheet formulas)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cidr", "requests", "attackers", "reason", "collateral_clients", "collateral_requests",
                     "split_from", "expires_at", "comment"])
    for r in ctx.rules.rules:
        writer.writerow([csv_cell(v) for v in (r.cidr, r.requests, r.attackers, r.reason, r.collateral_clients,
                                                 r.collateral_requests, r.split_from or "", iso(ctx.rules.expires_at),
                                                 ctx.rules.comment(r))])
    return out.getvalue()


@_exporter(".json")
def json_(ctx: ExportContext) -> str:
    """JSON (floodwitness.rules/1): the rules with their evidence, the expiry and what was left out."""
    r = ctx.rules
    doc = {"schema": RULES_SCHEMA, "generated_at": iso(r.generated_at), "expires_at": iso(r.expires_at),
           "incident": r.incident, "attack_requests_total": r.attack_requests_total,
           "attack_requests_covered": r.attack_requests_covered, "collateral_clients": r.collateral_clients,
           "messages": list(r.messages),
           "rules": [{"cidr": x.cidr, "requests": x.requests, "attackers": x.attackers, "reason": x.reason,
                      "collateral_clients": x.collateral_clients, "collateral_requests": x.collateral_requests,
                      "split_from": x.split_from, "comment": r.comment(x)} for x in r.rules],
           "rate_limits": ctx.rate_limits}
    return json.dumps(doc, indent=1) + "\n"  # ASCII: report text cannot hold a raw control or bidi character


# --- rate limits -----------------------------------------------------------------------------------


def _limited(ctx: ExportContext) -> list[dict[str, Any]]:
    return [x for x in (ctx.rate_limits or {}).get("limits", []) if x.get("key")]


def _limits_header(ctx: ExportContext, mark: str = "#") -> list[str]:
    s = ctx.rate_limits or {}
    replay = s.get("replay", {})
    base = s.get("baseline", {})
    text = [f"floodwitness rate limits, setting {s.get('name', '?')!s}: in the replay of the incident they reject "
            f"{replay.get('attack_rejected', 0):,} of {replay.get('attack_requests', 0):,} attack requests "
            f"({replay.get('attack_rejected_share', 0):.1%}) and limit {replay.get('legit_clients_hit', 0):,} of "
            f"{replay.get('legit_clients', 0):,} known clients; on the baseline they would have limited "
            f"{base.get('clients_hit', 0):,} of {base.get('clients', 0):,} clients",
            "classes, first match wins: " + "; ".join(f"{c.name}: {c.description}" for c in PATH_CLASSES),
            "verified crawlers, special-purpose ranges and the allowlist are exempt"]
    return [f"{mark} {safe_comment(line, 400)}" for line in text]


def _exempt_networks(ctx: ExportContext) -> list[tuple[str, str]]:
    return [(str(net), safe_comment(f"{kind}: {label}", 100)) for net, kind, label in ctx.protected.networks()]


def _nginx_limits(ctx: ExportContext) -> list[str]:
    limits = _limited(ctx)
    if not limits:
        return ["# floodwitness rate limits: none proposed"]
    lines = [*_limits_header(ctx), "geo $fw_rl_exempt {", "    default 0;"]
    lines += [f"    {net} 1;  # {why}" for net, why in _exempt_networks(ctx)]
    lines += ["}", "map $uri $fw_rl_path_class {", "    default page;"]
    lines += [f'    "~*{c.pattern}" {c.name};' for c in PATH_CLASSES if c.pattern is not None]
    lines.append("}")
    for x in limits:
        value = "$binary_remote_addr$uri" if x["key"] == "ip_uri" else "$binary_remote_addr"
        lines += [f'map "$fw_rl_exempt:$fw_rl_path_class" $fw_rl_key_{x["class"]} {{', '    default "";',
                  f'    "0:{x["class"]}" {value};', "}",
                  f"limit_req_zone $fw_rl_key_{x['class']} zone=fw_{x['class']}:{ZONE_SIZE} rate={x['nginx_rate']};",
                  f"limit_req zone=fw_{x['class']}{_burst(x)} nodelay;"]
    return [*lines, "limit_req_status 429;"]


def _burst(limit: dict[str, Any]) -> str:
    """nginx's burst parameter: it refuses burst=0, which is what leaving it out means."""
    return f" burst={int(limit['burst'])}" if int(limit["burst"]) > 0 else ""


@_exporter(".conf")
def nginx_ratelimit(ctx: ExportContext) -> str:
    """nginx limit_req zones and limits of the chosen setting only (http {} block)."""
    return "\n".join(_nginx_limits(ctx)) + "\n"


@_exporter(".cfg")
def haproxy_ratelimit(ctx: ExportContext) -> str:
    """HAProxy stick-table equivalents: lines for a frontend, and one backend per stick table."""
    limits = _limited(ctx)
    if not limits:
        return "# floodwitness rate limits: none proposed\n"
    lines = [*_limits_header(ctx), "# --- put these lines in your frontend section ---"]
    nets = [net for net, _ in _exempt_networks(ctx)]
    lines += [f"    acl fw_rl_exempt src {' '.join(nets[i:i + 8])}" for i in range(0, len(nets), 8)]
    prior: list[str] = []
    conditions = {}
    for c in PATH_CLASSES:
        if c.pattern is not None:
            lines.append(f"    acl fw_rl_{c.name} path_reg -i '{c.pattern}'")
            conditions[c.name] = " ".join([f"fw_rl_{c.name}", *[f"!fw_rl_{p}" for p in prior]])
            prior.append(c.name)
        else:
            conditions[c.name] = " ".join(f"!fw_rl_{p}" for p in prior)
    for x in limits:
        key = "base32+src" if x["key"] == "ip_uri" else "src"
        cond = f"!fw_rl_exempt {conditions[x['class']]}".strip()
        lines += [f"    http-request track-sc0 {key} table fw_rl_{x['class']} if {cond}",
                  f"    http-request deny deny_status 429 if {cond} "
                  f"{{ sc_http_req_rate(0) gt {x['haproxy']['max_requests']} }}"]
    lines.append("# --- and these sections beside it ---")
    for x in limits:
        kind = "binary len 20" if x["key"] == "ip_uri" else "ipv6"
        period = x["haproxy"]["period_seconds"]
        lines += [f"backend fw_rl_{x['class']}",
                  f"    stick-table type {kind} size 1m expire 1h store http_req_rate({period}s)"]
    return "\n".join(lines) + "\n"


# --- the network layer ------------------------------------------------------------------------

#: The network layer's exporters (FlowSpec, blackhole, nftables/iptables per vector) beside the blocklist's: they
#: render ``ExportContext.network`` (mitigation/network_export.py, network_firewall.py).
assert network_firewall.REGISTERED  # imported for its registrations
for _net in NETWORK_EXPORTERS.values():
    EXPORTERS[_net.name] = Exporter(_net.name, _net.description, _net.suffix, _network(_net.render))
