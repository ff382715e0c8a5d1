"""The HTML report: one self-contained file (styles, scripts, chart library and data inline; nothing is
fetched when it is opened) that reads the report dictionary and nothing else.

Log fields are attacker-controlled. Every value reaches the page through Jinja2 with autoescaping on, and
data for the scripts is embedded as JSON with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped (:func:`script_json`),
so a user agent holding ``</script>`` stays text. A Content-Security-Policy lets only the page's own scripts
run (by their SHA-256), so even a mistake in escaping could not run an injected script or event handler.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime
from importlib import resources
from itertools import pairwise
from typing import Any

import jinja2
from markupsafe import Markup

from floodwitness.errors import UsageError
from floodwitness.mitigation.exports import blocklist_text
from floodwitness.render.charts import networks_spec, timeline_spec
from floodwitness.render.report_view import (
    ERRORS_NOT_LOGGED,
    ReportView,
    network_lines,
    network_rule_lines,
    outage_lines,
)
from floodwitness.render.vega import vega_bundle

_DASH = "\u2013"  # shown for a missing value
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_UNSAFE = re.compile("[<>&\u2028\u2029]")
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)

#: Rows of the blocklist shown as a table (all entries with collateral come first); the full list is embedded
#: as plain CIDR lines behind a download button, so a 24,000-entry list costs ~0.4 MB, not a huge table.
BLOCKLIST_ROWS = 300


def script_json(data: Any) -> Markup:
    """JSON that is safe inside ``<script type="application/json">``: no ``</script>``, no comment opener,
    no line separators that some parsers treat as line ends."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Markup(_JSON_UNSAFE.sub(lambda m: _JSON_ESCAPES[m.group()], text))  # noqa: S704 - escaped above


def _inline_script(code: str) -> str:
    """JavaScript that cannot end its ``<script>`` element early (``</script`` inside a string or regex
    literal is written ``<\\/script``, which means the same to JavaScript)."""
    return _SCRIPT_END.sub(r"<\\/\1", code).replace("<!--", "<\\!--")


def _csp_hash(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii") + "'"


def _ms(value: str | None) -> int | None:
    if not value:
        return None
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _chart_data(report: dict[str, Any]) -> dict[str, Any]:
    tl = report.get("timeline") or {}
    incidents = [{"id": i["id"], "start": _ms(i["start"]), "end": _ms(i["end"]),
                  "label": f"{i['id']} {i['kind']}: {i['start']} to {i['end']}"} for i in report.get("incidents", [])]
    baseline = [{"start": _ms(a), "end": _ms(b)} for a, b in tl.get("baseline_ranges", [])]
    nets = [{"network": n["net"], "requests": n["requests"], "clients": n["clients"],
             "seen": "known network" if n["known"] else "new network"}
            for n in (report.get("sources") or {}).get("networks", [])]
    latency = any(x is not None for x in tl.get("p95_request_time", []))
    periods = tl.get("periods") or []  # a long timeline's periods: the gaps between them hold no request
    gaps = [{"start": _ms(a["end"]), "end": _ms(b["start"]), "label": f"no request from {a['end']} to {b['start']}"}
            for a, b in pairwise(periods)]
    schema = vega_bundle().schema
    return {
        "timeline": {key: tl.get(key, []) for key in ("requests", "baseline_requests", "clients", "new_clients",
                                                       "status_4xx", "status_5xx", "p50_request_time",
                                                       "p95_request_time")}
        | {"start": _ms(tl.get("start")), "step_ms": int(tl.get("step_seconds", 60)) * 1000,
           "segments": [{"start": _ms(s["start"]), "step_ms": int(s["step_seconds"]) * 1000, "points": s["points"]}
                        for s in tl.get("segments") or []]},
        "incidents": incidents, "baseline": baseline, "networks": nets, "gaps": gaps,
        "specs": {"timeline": timeline_spec(schema, latency=latency, gaps=bool(gaps)),
                  "networks": networks_spec(schema)},
    }


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return _DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if digits or not value.is_integer() else f"{int(value):,}"
    return str(value)


def _percent(value: Any, digits: int = 0) -> str:
    return _DASH if value is None else f"{float(value):.{digits}%}"


def _value(value: Any) -> str:
    """A metric or parameter value as short text (lists cut to 20 items)."""
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, list | tuple):
        shown = ", ".join(_value(v) for v in value[:20])
        return shown + (f", … ({len(value):,} in all)" if len(value) > 20 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) or _DASH
    return _number(value)


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Table columns for rows of unknown shape (sections a later version may add): numbers right-aligned."""
    def kind(value: Any) -> str:
        if isinstance(value, bool):
            return "bool"
        return "num" if isinstance(value, int) else "float" if isinstance(value, float) else "code"
    return [(str(k), str(k), kind(v)) for k, v in rows[0].items()] if rows else []


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("floodwitness.render", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(num=_number, pct=_percent, value=_value, columns=_columns)
    return env


def _asset(name: str) -> str:
    return resources.files("floodwitness.render").joinpath("templates", name).read_text(encoding="utf-8")


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML document."""
    view = ReportView(report)
    mitigation = report.get("mitigation") or {}
    vega_js = _inline_script(vega_bundle().javascript)
    app_js = _inline_script(_asset("report.js"))
    csp = "; ".join((
        "default-src 'none'",
        f"script-src {_csp_hash(vega_js)} {_csp_hash(app_js)} 'unsafe-eval'",  # Vega compiles its expressions
        "style-src 'unsafe-inline'", "img-src data: blob:", "font-src data:", "connect-src 'none'",
        "base-uri 'none'", "form-action 'none'",
    ))
    template = _environment().get_template("report.html.j2")
    try:
        return _render(template, report, view, mitigation, vega_js, app_js, csp)
    except jinja2.UndefinedError as exc:
        raise UsageError(f"the report lacks a field the HTML report needs: {exc}",
                         hint="Write it again with `floodwitness analyze LOGS --json FILE`.") from None


def _render(template: jinja2.Template, report: dict[str, Any], view: ReportView, mitigation: dict[str, Any],
            vega_js: str, app_js: str, csp: str) -> str:
    generated = report.get("generated_at")
    now = datetime.fromisoformat(generated.replace("Z", "+00:00")) if isinstance(generated, str) else None
    return template.render(
        r=report, view=view, csp=csp, css=Markup(_asset("report.css")),  # noqa: S704 - our own file
        vega_js=Markup(vega_js), app_js=Markup(app_js),  # noqa: S704 - our own scripts, made inline-safe
        chart_data=script_json(_chart_data(report)),
        blocklist_text=script_json(blocklist_text(mitigation, now=now) if mitigation.get("blocklist") else ""),
        blocklist_rows=view.blocklist_rows(BLOCKLIST_ROWS), outage_lines=outage_lines, network_lines=network_lines,
        network_rule_lines=network_rule_lines,
        bundle=vega_bundle(), errors_not_logged=ERRORS_NOT_LOGGED,
    )
