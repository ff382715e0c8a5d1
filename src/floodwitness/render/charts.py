"""Vega-Lite specifications of the HTML report's charts (data, not drawing code).

The specs name their data sets (``timeline``, ``incidents``, ``baseline``, ``networks``); the report's
script fills them from the report's own arrays, so a timeline of a week costs a few numbers per minute.
Times are milliseconds since the epoch, shown in UTC.
"""

from __future__ import annotations

from typing import Any

INCIDENT_COLOR = "#e4572e"
BASELINE_COLOR = "#6c757d"
GAP_COLOR = "#d9dde3"

#: The timeline's panels: title, series (field names of the rows the script builds), colours, y format.
PANELS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...] = (
    ("Requests per second", ("requests/s", "baseline/s"), ("#1f5fa8", "#9aa5b1"), ",.1~f"),
    ("Clients per minute", ("distinct clients", "new clients"), ("#1f5fa8", "#e4572e"), ",d"),
    ("Error share", ("5xx share", "4xx share"), ("#c0392b", "#f0ad4e"), ".0%"),
    ("Request time (seconds)", ("p50", "p95"), ("#1f5fa8", "#8e44ad"), ",.2f"),
)


#: Clock times in UTC, the date at midnight.
_TIME_AXIS = {"labelExpr": "utcFormat(datum.value, utchours(datum.value) == 0 && utcminutes(datum.value) == 0 "
                           "? '%b %d' : '%H:%M')", "labelOverlap": True}


def _x(zoomed: bool) -> dict[str, Any]:
    scale: dict[str, Any] = {"type": "utc"}
    if zoomed:
        scale["domain"] = {"param": "brush", "encoding": "x"}
    return {"field": "t", "type": "temporal", "title": None, "scale": scale, "axis": _TIME_AXIS}


def _bands(zoomed: bool, *, labels: bool, gaps: bool = False) -> list[dict[str, Any]]:
    x = _x(zoomed)
    x_start, x_end = dict(x, field="start"), {"field": "end"}
    layers: list[dict[str, Any]] = [] if not gaps else [
        {"data": {"name": "gaps"}, "mark": {"type": "rect", "color": GAP_COLOR, "opacity": 0.35, "clip": True},
         "encoding": {"x": x_start, "x2": x_end, "tooltip": [{"field": "label", "title": "gap between periods"}]}}]
    layers += [
        {"data": {"name": "baseline"}, "mark": {"type": "rect", "color": BASELINE_COLOR, "opacity": 0.08,
                                                 "clip": True},
         "encoding": {"x": x_start, "x2": x_end}},
        {"data": {"name": "incidents"}, "mark": {"type": "rect", "color": INCIDENT_COLOR, "opacity": 0.16,
                                                  "clip": True},
         "encoding": {"x": x_start, "x2": x_end,
                      "tooltip": [{"field": "label", "title": "incident"}]}},
    ]
    if labels:
        layers.append({"data": {"name": "incidents"},
                       "mark": {"type": "text", "align": "left", "baseline": "top", "dx": 3, "dy": 3,
                                "color": INCIDENT_COLOR, "fontWeight": "bold", "clip": True},
                       "encoding": {"x": x_start, "y": {"value": 0}, "text": {"field": "id"}}})
    return layers


def _panel(title: str, series: tuple[str, ...], colors: tuple[str, ...], fmt: str, *, first: bool,
           gaps: bool = False) -> dict[str, Any]:
    x = _x(zoomed=True)
    y = {"field": "value", "type": "quantitative", "title": None, "axis": {"format": fmt, "tickCount": 4}}
    color = {"field": "series", "type": "nominal", "title": None,
             "scale": {"domain": list(series), "range": list(colors)},
             "legend": {"orient": "top", "direction": "horizontal"}}
    lines = {
        "transform": [{"fold": list(series), "as": ["series", "value"]}, {"filter": "isValid(datum.value)"}],
        "layer": [
            {"mark": {"type": "line", "strokeWidth": 1.5, "clip": True, "interpolate": "step-after"},
             "encoding": {"x": x, "y": y, "color": color,
                          "strokeDash": {"field": "series", "type": "nominal", "legend": None,
                                         "scale": {"domain": list(series), "range": [[1, 0], [4, 3]]}}}},
            {"mark": {"type": "point", "opacity": 0, "size": 30, "clip": True},
             "encoding": {"x": x, "y": y, "tooltip": [
                 {"field": "t", "type": "temporal", "title": "minute (UTC)", "format": "%Y-%m-%d %H:%M",
                  "formatType": "utc"},
                 {"field": "series", "title": "series"},
                 {"field": "value", "type": "quantitative", "title": "value", "format": fmt}]}},
        ],
    }
    return {"title": {"text": title, "anchor": "start", "fontSize": 13}, "height": 130,
            "data": {"name": "timeline"}, "layer": [*_bands(zoomed=True, labels=first, gaps=gaps), lines],
            "resolve": {"scale": {"color": "independent"}}}


def timeline_spec(schema: str, *, latency: bool, gaps: bool = False) -> dict[str, Any]:
    """Stacked panels sharing one time axis, zoomed by dragging over the overview strip at the bottom; with
    ``gaps``, the gaps between a long timeline's periods shaded (the ``gaps`` data set)."""
    panels = [_panel(*p, first=i == 0, gaps=gaps) for i, p in enumerate(PANELS) if latency or p[1][0] != "p50"]
    overview = {
        "title": {"text": "Drag here to zoom; double-click to reset", "anchor": "start", "fontSize": 11,
                  "fontWeight": "normal", "color": "#555"},
        "height": 45, "data": {"name": "timeline"},
        "layer": [
            *_bands(zoomed=False, labels=False, gaps=gaps),
            {"mark": {"type": "area", "color": "#1f5fa8", "opacity": 0.5, "interpolate": "step-after"},
             "params": [{"name": "brush", "select": {"type": "interval", "encodings": ["x"]}}],
             "encoding": {"x": _x(zoomed=False),
                          "y": {"field": "requests/s", "type": "quantitative", "title": None,
                                "axis": {"tickCount": 2, "format": "~s"}}}},
        ],
    }
    return {"$schema": schema, "vconcat": [*panels, overview], "spacing": 14,
            "resolve": {"scale": {"color": "independent", "strokeDash": "independent"}},
            "config": _CONFIG}


def networks_spec(schema: str) -> dict[str, Any]:
    """The incident's busiest source networks, new ones apart from the audience's usual ones."""
    return {
        "$schema": schema, "data": {"name": "networks"}, "height": {"step": 16},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "network", "type": "nominal", "sort": "-x", "title": None, "axis": {"labelLimit": 220}},
            "x": {"field": "requests", "type": "quantitative", "title": "requests in the incident"},
            "color": {"field": "seen", "type": "nominal", "title": None,
                      "scale": {"domain": ["new network", "known network"], "range": [INCIDENT_COLOR, BASELINE_COLOR]},
                      "legend": {"orient": "top"}},
        },
        "config": _CONFIG,
    }


_CONFIG: dict[str, Any] = {
    "view": {"stroke": None},
    "font": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "axis": {"labelFontSize": 11, "gridColor": "#eceff3", "domainColor": "#aab"},
    "axisY": {"minExtent": 48, "maxExtent": 48},  # the stacked panels' plot areas line up
    "legend": {"labelFontSize": 11, "symbolSize": 80},
}
