"""The terminal and Markdown reports on small hand-made report dictionaries: what each shows of the verdict,
timeline, sources, blocklist and evidence at 80 columns (issue #18, things users trip on)."""

from __future__ import annotations

import copy
import io
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from rich.console import Console

from floodwitness.render.html import render_html
from floodwitness.render.markdown import md_text, render_markdown
from floodwitness.render.terminal import print_report
from floodwitness.safe import terminal_safe

CAVEAT = ("The sources' countries and networks describe where the compromised devices and proxies are, never where "
          "the attacker is.")
QUERY = "SELECT count(*) FROM read_parquet('/tmp/floodwitness-x/store/requests/*.parquet')"


def _source(ip: str, requests: int, *, known: bool = False, active_rps: float | None = None,
            busiest: int | None = None) -> dict[str, Any]:
    row = {"client_ip": ip, "requests": requests, "rate_rps": round(requests / 1980, 3), "known": known,
           "network": ip.rsplit(".", 2)[0] + ".0.0/16", "known_network": known, "user_agent": "Mozilla/5.0",
           "distinct_paths": 2}
    if active_rps is not None:
        row |= {"active_minutes": 14, "active_rps": active_rps, "busiest_minute_requests": busiest}
    return row


def _finding(fid: str, kind: str, claim: str) -> dict[str, Any]:
    return {"id": fid, "kind": kind, "severity": "high", "description": kind, "technique": None, "claim": claim,
            "confidence": 0.9, "window": {"start": "2026-10-13T12:26:00Z", "end": "2026-10-13T12:59:00Z"},
            "metrics": {}, "evidence": [{"file": "/logs/access.log", "line": 7, "sample": "1.2.3.4 - - GET /",
                                         "query": QUERY}]}


def _report(kind: str = "ddos") -> dict[str, Any]:
    """A pulse-wave DDoS report as `analyze LOGS` (no --store) writes it, cut down to what the renderers read."""
    shared = ["84% of the excess came from 2,640 new clients [I1-newnets]",
              "181,559 requests in 33 min, 4.4x the baseline [I1-surge]"]
    hypotheses = [{"kind": "ddos", "score": 5.5, "for": shared, "against": []},
                  {"kind": "dos", "score": 4.0, "for": shared, "against": ["the excess was spread over many sources"]},
                  {"kind": "mixed", "score": 3.5, "for": shared, "against": ["no server errors beyond the load"]},
                  {"kind": "internal_failure", "score": -3.0, "for": [], "against": shared[:1]},
                  {"kind": "flash_crowd", "score": -4.5, "for": shared[1:], "against": shared[:1]}]
    if kind != "ddos":
        hypotheses[0], hypotheses[3] = ({**hypotheses[3], "kind": "ddos"}, {**hypotheses[0], "kind": kind})
        hypotheses.sort(key=lambda h: -float(h["score"]))
    minutes = [40.0] * 70 + [15_903.0, 2_000.0] * 25
    return {
        "schema": "floodwitness.report/1", "tool": {"name": "floodwitness", "version": "0.1.0"},
        "generated_at": "2026-10-13T14:00:00Z",
        "parameters": {"since": None, "until": None, "baseline": "auto", "store": "/tmp/floodwitness-x/store",
                       "store_is_temporary": True},
        "inputs": [{"path": "/logs/access.log", "sha256": "ab" * 32, "bytes": 1000, "format": "combined",
                    "lines_read": 290_106, "lines_parsed": 290_106, "lines_rejected": 0}],
        "verdict": {"kind": kind, "confidence": 0.84, "summary": "The logs show an incident.",
                    "hypotheses": hypotheses},
        "incidents": [{"id": "I1", "kind": kind, "start": "2026-10-13T12:26:00Z", "end": "2026-10-13T12:59:00Z",
                       "peak_second": "2026-10-13T12:57:56Z", "peak_rps": 1340, "baseline_rps": 20.8,
                       "requests": 181_559, "excess_requests": 140_358, "clients": 3_540, "new_clients": 2_640}],
        "findings": [_finding("I1-surge", "traffic_surge", "181,559 requests in 33 min, 4.4x the baseline"),
                     _finding("I1-newnets", "new_networks", "84% of the excess came from 2,640 new clients")],
        "timeline": {"start": "2026-10-13T11:16:00Z", "step_seconds": 60, "requests": minutes,
                     "status_5xx": [0] * 70 + [13_241, 0] * 25},
        "sources": {
            "top": [_source("98.213.192.88", 674, known=True, active_rps=0.34, busiest=83),
                    _source("91.113.8.246", 11, known=True, active_rps=0.2, busiest=4),
                    _source("185.194.12.89", 3, known=True, active_rps=0.05, busiest=3)],
            "top_suspects": [_source("182.115.82.231", 99, active_rps=0.118, busiest=15),
                             _source("110.210.159.49", 98, active_rps=0.126, busiest=14),
                             _source("69.12.87.130", 3, active_rps=0.05, busiest=3)],
            "suspects": {"clients": 2_051, "requests": 118_377},
            "new_vs_known": {"clients": 3_540, "new_clients": 2_640, "new_network_excess_share": 0.84,
                             "known_excess_share": 0.17},
            "attribution_caveat": CAVEAT,
        },
        "targets": {}, "impact": {},
        "mitigation": {"blocklist": [
            {"cidr": "197.125.0.0/16", "requests": 2_510, "attackers": 41, "collateral_clients": 3,
             "collateral_requests": 40,
             "reason": "41 attacking IPs in 27 /24s, 97% of this /16's incident traffic, 3 known clients "
                       "(40 baseline requests)"}]} if kind in ("ddos", "dos", "mixed") else
        {"blocklist": [], "note": f"verdict {kind}: blocking clients would not help"},
    }


def _terminal(report: dict[str, Any]) -> list[str]:
    out = io.StringIO()
    print_report(Console(file=out, width=80, color_system=None), report)
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    return lines


def test_a_blocklist_reason_is_wrapped_not_cut() -> None:
    """The end of a reason is what a reviewer must check (the known clients inside): it was cut at
    ``100% of this /…``; now it wraps under the reason's first character."""
    lines = _terminal(_report())
    first = next(i for i, line in enumerate(lines) if line.startswith("  197.125.0.0/16"))
    column = lines[first].index("41 attacking")
    text = lines[first][column:]
    for line in lines[first + 1:]:
        if not line.startswith(" " * column) or not line.strip():
            break
        text += " " + line.strip()
    assert "…" not in text
    assert text == _report()["mitigation"]["blocklist"][0]["reason"]


def test_suspect_lists_leave_out_clients_that_do_not_matter_and_count_them() -> None:
    text = "\n".join(_terminal(_report()))
    assert "182.115.82.231" in text and "110.210.159.49" in text
    assert "69.12.87.130" not in text  # 3 requests, against 99 for the heaviest
    assert "and 2,049 more suspects with 118,180 requests in all" in text  # 2,051 - 2; 118,377 - 99 - 98
    assert "91.113.8.246" not in text and "185.194.12.89" not in text  # 11 and 3 against 674
    assert "and 3,539 more clients with 180,885 requests in all" in text
    markdown = render_markdown(_report())
    assert "`69.12.87.130`" not in markdown and "`182.115.82.231`" in markdown
    assert "And 2,049 more suspects with 118,180 requests in all." in markdown


def test_suspects_show_their_rate_while_active_and_busiest_minute() -> None:
    """A pulse wave's bots idle between bursts: averaged over the incident they showed ``0.0/s``."""
    lines = _terminal(_report())
    row = next(line for line in lines if "182.115.82.231" in line)
    assert re.search(r"99 req +0\.12/s, max 15/min  new net$", row), row
    assert not any("0.0/s" in line for line in lines)
    markdown = render_markdown(_report())
    assert "| `182.115.82.231` | 99 | 0.12 | 15 | no |" in markdown


def test_the_timeline_is_labelled_with_its_start_end_and_scale() -> None:
    lines = _terminal(_report())
    head = lines.index("Timeline (requests per minute, 2026-10-13 11:16 to 2026-10-13 13:16 UTC)")
    spark, errors, axis = lines[head + 1: head + 4]
    assert spark.endswith("  max 15,903/min") and "█" in spark
    assert errors.endswith("  max 13,241/min 5xx")
    assert axis.startswith("  11:16 ") and axis.endswith(" 13:16")
    assert len(axis) == len(spark) - len("  max 15,903/min")  # the end label under the sparkline's end


def test_the_alternatives_show_the_chosen_kind_s_score() -> None:
    lines = _terminal(_report())
    assert "  score: ddos +5.5; alternatives: dos +4.0, mixed +3.5, internal_failure -3.0" in lines
    markdown = render_markdown(_report())
    assert "- **ddos** (score +5.5, the verdict)" in markdown


@pytest.mark.parametrize("kind", ["ddos", "dos", "mixed", "internal_failure", "flash_crowd"])
def test_the_attribution_caveat_is_for_attacks_only(kind: str) -> None:
    """``compromised devices`` makes no sense for an internal failure or a flash crowd."""
    report = _report(kind)
    attack = kind in ("ddos", "dos", "mixed")
    assert ("compromised devices" in " ".join(line.strip() for line in _terminal(report))) is attack
    assert ("compromised devices" in render_markdown(report)) is attack


def test_every_rendering_says_the_temporary_store_is_gone() -> None:
    """The evidence queries read ``/tmp/floodwitness-x/store``, deleted when `analyze LOGS` ended."""
    note = "this analysis's temporary store was deleted: rerun with --store DIR to keep it"
    assert note in " ".join(line.strip() for line in _terminal(_report()))
    assert note in render_markdown(_report())
    kept = copy.deepcopy(_report())
    kept["parameters"] |= {"store": "/data/store", "store_is_temporary": False}
    assert "the evidence queries run over the store /data/store" in " ".join(line.strip() for line in _terminal(kept))
    assert "deleted" not in render_markdown(kept)
    quiet = copy.deepcopy(_report("internal_failure"))
    quiet["findings"] = []  # no finding, no query to rerun
    assert "store" not in " ".join(_terminal(quiet)) and "store" not in render_markdown(quiet)


def test_the_html_says_the_temporary_store_is_gone_and_keeps_the_caveat_for_attacks() -> None:
    pytest.importorskip("jinja2")
    page = render_html(_report())
    assert "temporary store was deleted: rerun with --store DIR to keep it" in page
    assert "compromised devices" in page and "the verdict</span>" in page
    assert "compromised devices" not in render_html(_report("internal_failure"))


def test_markdown_evidence_is_stated_once_and_cited_after() -> None:
    """The attack's three kinds share their evidence: written out once, then cited by finding id."""
    markdown = render_markdown(_report())
    hypotheses = markdown[markdown.index("## Hypotheses"):markdown.index("## Sources")]
    assert hypotheses.count("84% of the excess came from 2,640 new clients") == 1
    assert hypotheses.count("the excess was spread over many sources") == 1
    assert "  - for: \\[I1-newnets\\], \\[I1-surge\\] (stated above)" in hypotheses
    assert "  - against: \\[I1-newnets\\] (stated above)" in hypotheses


@pytest.mark.parametrize(("text", "shown"), [
    ("no incident: nothing to block", "no incident: nothing to block"),
    ("floodwitness 0.1.0 at 12:05:00", "floodwitness 0.1.0 at 12:05:00"),
    ("traffic_surge and bot_behaviour", "traffic_surge and bot_behaviour"),
    ("AT&T & co", "AT&T & co"),
    ("http://evil.example www.evil.example a@evil.example", "http\\://evil.example www\\.evil.example a\\@evil.example"),
    ("_em_ *strong* [x](y) <b> &amp; `c`", "\\_em\\_ \\*strong\\* \\[x](y) \\<b> \\&amp; \\`c\\`"),
])
def test_markdown_escapes_only_what_would_mean_something(text: str, shown: str) -> None:
    assert md_text(text, line_start=False) == shown
    html = MarkdownIt("commonmark").enable("strikethrough").renderInline(md_text(text, line_start=False))
    assert "<a" not in html and "<em" not in html and "<strong" not in html and "<b>" not in html


@pytest.mark.parametrize(("text", "start", "inline"), [
    ("1. first", "1\\. first", "1. first"), ("0.1.0", "0.1.0", "0.1.0"), ("# h", "\\# h", "# h"),
    ("- item", "\\- item", "- item"), ("> q", "\\> q", "> q"), (".htaccess", ".htaccess", ".htaccess"),
])
def test_markdown_escapes_block_markers_only_at_a_line_start(text: str, start: str, inline: str) -> None:
    assert md_text(text) == start
    assert md_text(text, line_start=False) == inline
    assert MarkdownIt("commonmark").render(md_text(text)).startswith("<p>")


_MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_markdown_text_shows_any_field_as_written_in_a_sentence(text: str) -> None:
    """With fewer escapes, a field in a sentence still makes no emphasis, code, link, image or HTML: Markdown
    shows exactly its text."""
    shown = terminal_safe(text, 400)
    tokens = _MD.parseInline("x " + md_text(text, line_start=False) + " y")[0].children or []
    assert [t.type for t in tokens if t.type not in ("text", "softbreak")] == []
    assert "".join(t.content for t in tokens) == "x " + shown + " y"


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_markdown_text_shows_any_field_as_written_in_a_table_cell(text: str) -> None:
    shown = terminal_safe(text, 400).strip()  # a cell is trimmed
    tokens = _MD.parse(f"| a | b |\n|---|---|\n| {md_text(text, table=True)} | 1 |\n")
    cells = [t for t in tokens if t.type == "inline"][2:]
    children = cells[0].children or []
    assert [t.type for t in children if t.type != "text"] == []
    assert "".join(t.content for t in children).strip() == shown
    assert cells[1].content == "1"
