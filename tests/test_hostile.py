"""Hostile input: the logs are written by the attacker. A generated hostile corpus (tests/hostile_corpus.py) goes
through `ingest`, `analyze` (terminal, JSON, HTML, Markdown, blocklist) and `mitigate` (every target) with zero
crashes, exact accounting against line counts made here, and no log field unescaped in any output."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork, IPSet

from floodwitness.cli import main
from floodwitness.errors import FormatError
from floodwitness.formats import FORMATS
from floodwitness.formats.detect import detect
from floodwitness.mitigation.exports import EXPORTERS, ExportContext, csv_cell, render
from floodwitness.mitigation.protected import protected_ranges
from floodwitness.mitigation.rules import plan_rules
from floodwitness.safe import json_text, terminal_safe
from tests.hostile_corpus import (
    BIG_LINE,
    FORMULA,
    HOSTILE_AGENTS,
    HOSTILE_PATHS,
    MARKERS,
    NONSENSE_LINES,
    TERMINAL_UNSAFE,
    Corpus,
    HtmlPage,
    build,
    export_structure,
    parse_check,
)
from tests.test_report_html import _live, _outside_code

if TYPE_CHECKING:
    from pathlib import Path

TARGETS = tuple(sorted(EXPORTERS))


def run(*args: str) -> Result:
    """The CLI in-process; an exception other than a clean exit is a crash (a traceback for the user)."""
    result = CliRunner().invoke(main, list(args), prog_name="floodwitness")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"floodwitness {' '.join(args)} crashed") from result.exception
    return result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def runs(corpus: Corpus) -> dict[str, Any]:
    """Every command over the corpus, once: ingest, analyze with every output, mitigate to every target."""
    folder, logs = corpus.folder, [str(p) for p in corpus.logs]
    out: dict[str, Any] = {"results": {}}
    out["results"]["ingest"] = run("ingest", *logs, "--out", str(folder / "store"), "--json", str(folder / "ingest.json"))
    out["results"]["analyze"] = run("analyze", str(folder / "store"), "--json", str(folder / "report.json"), "--html",
                                    str(folder / "report.html"), "--markdown", str(folder / "report.md"),
                                    "--blocklist", str(folder / "blocklist.txt"), "--rate-limits")
    for target in TARGETS:
        out["results"][f"mitigate-{target}"] = run("mitigate", str(folder / "report.json"), "--to", target, "--out",
                                                   str(folder / f"rules-{target}"))
    out["results"]["mitigate-stdout"] = run("mitigate", str(folder / "report.json"), "--to", "nginx")
    out["ingest"] = json.loads((folder / "ingest.json").read_bytes().decode("utf-8"))
    out["report"] = json.loads((folder / "report.json").read_bytes().decode("utf-8"))
    return out


def test_no_command_crashes_or_fails(runs: dict[str, Any]) -> None:
    for name, result in runs["results"].items():
        assert result.exit_code == 0, (name, result.output[-2000:])
        assert "Traceback" not in result.output, name


def test_the_hostile_fields_reach_every_part_of_the_report(corpus: Corpus, runs: dict[str, Any]) -> None:
    """Otherwise the escaping checks below would prove nothing."""
    report = runs["report"]
    assert report["verdict"]["kind"] == "ddos"
    top = {s["client_ip"]: s["user_agent"] for s in report["sources"]["top"]}
    assert set(top) & set(corpus.hostile_clients)
    assert {p["path"] for p in report["targets"]["top_paths"]} & set(HOSTILE_PATHS)
    samples = " ".join(e["sample"] or "" for f in report["findings"] for e in f["evidence"])
    assert "\x1b[" in samples and "window.__pwned" in samples
    blocked = IPSet(IPNetwork(e["cidr"]) for e in report["mitigation"]["blocklist"])
    assert sum(IPAddress(ip) in blocked for ip in corpus.hostile_clients) >= len(corpus.hostile_clients) - 1
    assert report["mitigation"]["rate_limits"]["settings"]


# -- nothing lost ----------------------------------------------------------------------------------------------

def test_every_line_written_is_read_and_accounted_for(corpus: Corpus, runs: dict[str, Any]) -> None:
    for summary in (runs["ingest"], runs["report"]):
        inputs = {i["path"]: i for i in summary["inputs"]}
        assert set(inputs) == {str(p) for p in corpus.logs}
        for path, expected in corpus.lines.items():
            item = inputs[path]
            assert item["lines_read"] == expected, path
            assert item["lines_read"] == item["lines_parsed"] + item["lines_rejected"], path
            assert sum(item["rejected_by_reason"].values()) == item["lines_rejected"], path
    totals = runs["ingest"]["totals"]
    assert totals["lines_read"] == corpus.total_lines == totals["lines_parsed"] + totals["lines_rejected"]
    access = next(i for i in runs["ingest"]["inputs"] if i["path"].endswith("access.log"))
    reasons = access["rejected_by_reason"]
    assert reasons["line_too_long"] == corpus.long_line_count
    assert reasons["format_mismatch"] >= NONSENSE_LINES * 0.9 and reasons["nul_byte"] > 0
    assert [length for _, length in access["long_lines"]][:2] == [BIG_LINE, BIG_LINE + 76]
    assert access["utf8_repaired"] > 0
    # every hostile request was parsed (none of them is a rejection)
    assert runs["report"]["sources"]["top"][0]["requests"] >= 900


def test_damaged_archives_keep_what_precedes_the_damage_and_say_so(corpus: Corpus, runs: dict[str, Any]) -> None:
    inputs = {i["path"]: i for i in runs["report"]["inputs"]}
    for path, size in corpus.damaged.items():
        item = inputs[path]
        assert item["complete"] is False
        assert f"ends at byte {size}" in item["damage"], item["damage"]
        assert item["lines_parsed"] == corpus.lines[path] - 1  # all but the line the cut went through
        assert item["rejected_by_reason"] == {"truncated_input": 1}
    for name in ("ingest", "analyze"):
        output = runs["results"][name].output.replace("\n", " ")
        for path, size in corpus.damaged.items():
            assert re.search(rf"warning: {re.escape(os.path.basename(path))} is incomplete: .*byte {size}", output) \
                or re.search(rf"warning: {re.escape(path)} is incomplete: .*byte {size}", output), (name, path)
    assert "incomplete" in (corpus.folder / "report.html").read_text(encoding="utf-8")
    assert "incomplete" in (corpus.folder / "report.md").read_text(encoding="utf-8")


# -- no field unescaped in any output --------------------------------------------------------------------------

def test_terminal_output_has_no_control_or_bidi_character(runs: dict[str, Any]) -> None:
    for name, result in runs["results"].items():
        if name == "mitigate-stdout":
            continue  # the rules file itself, checked with the exports
        for stream in (result.stdout, result.stderr):
            bad = TERMINAL_UNSAFE.findall(stream)
            assert not bad, (name, sorted(set(bad)))
    assert "\\x1b[2J" in runs["results"]["analyze"].stdout  # shown, as visible text


def test_json_outputs_are_valid_utf8_json(corpus: Corpus, runs: dict[str, Any]) -> None:
    for name in ("ingest.json", "report.json", "rules-json", "rules-crowdsec"):
        data = (corpus.folder / name).read_bytes()
        text = data.decode("utf-8")  # strict: raises on invalid UTF-8
        json.loads(text)
        assert not re.search("[\ud800-\udfff]", text)
        assert not TERMINAL_UNSAFE.search(text), name  # safe to `cat`: controls and bidi are escapes
    agents = {s["user_agent"] for s in runs["report"]["sources"]["top"]}
    assert agents & set(HOSTILE_AGENTS)  # kept as they were written, only escaped as JSON requires


def test_json_text_escapes_what_a_terminal_would_act_on_and_writes_no_nan() -> None:
    """The JSON writer keeps text readable (UTF-8 as it is) but escapes C1 controls, bidi overrides and line
    separators; a NaN becomes null, so strict parsers read the report."""
    text = json_text({"agent": "a\x1b[2Jb\x9b\u202e\u2028é", "rate": float("nan"), "at": datetime(2024, 1, 2)})
    assert not TERMINAL_UNSAFE.search(text) and "é" in text
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in strict JSON")) == {
        "agent": "a\x1b[2Jb\x9b\u202e\u2028é", "rate": None, "at": "2024-01-02 00:00:00"}


def test_html_shows_hostile_fields_only_as_text(corpus: Corpus, runs: dict[str, Any]) -> None:
    page = HtmlPage((corpus.folder / "report.html").read_text(encoding="utf-8"))
    assert page.problems() == []
    text = "".join(page.text)
    shown = [a for a in HOSTILE_AGENTS if a in text] + [p for p in HOSTILE_PATHS if p in text]
    assert "<script>window.__pwned=1</script>" in shown and "/<svg/onload=window.__pwned=4>" in shown
    assert "onerror=window.__pwned=2>" in text


def test_markdown_has_no_live_link_image_or_html(corpus: Corpus) -> None:
    markdown = (corpus.folder / "report.md").read_text(encoding="utf-8")
    assert _live(markdown) == []
    prose = _outside_code(markdown)
    assert not re.search(r"(?<!\\)://|(?i:www)\.|(?<!\\)<", prose)
    assert not TERMINAL_UNSAFE.search(markdown)
    assert "window.__pwned" in markdown  # shown, inside code


def test_exports_carry_no_attacker_text_outside_comments(corpus: Corpus, runs: dict[str, Any]) -> None:
    stdout = runs["results"]["mitigate-stdout"].stdout
    assert stdout.startswith("# floodwitness blocklist for nginx")
    for target in TARGETS:
        text = (corpus.folder / f"rules-{target}").read_text(encoding="utf-8")
        assert not TERMINAL_UNSAFE.search(text), target
        structure = export_structure(target, text)
        for marker in (*MARKERS, "\x1b", "<script"):
            assert marker not in structure, (target, marker)
    blocklist = (corpus.folder / "blocklist.txt").read_text(encoding="utf-8").splitlines()
    assert all(line.startswith("#") or IPNetwork(line) for line in blocklist)


def test_csv_cells_never_start_a_formula(corpus: Corpus, runs: dict[str, Any]) -> None:
    rows = list(csv.reader(io.StringIO((corpus.folder / "rules-csv").read_text(encoding="utf-8"))))
    assert len(rows) == len(runs["report"]["mitigation"]["blocklist"]) + 1
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA), cell


def test_a_forged_forwarded_for_cannot_get_an_innocent_client_blocked(corpus: Corpus, runs: dict[str, Any]) -> None:
    report = runs["report"]
    blocked = IPSet(IPNetwork(e["cidr"]) for e in report["mitigation"]["blocklist"])
    assert IPAddress(corpus.innocent_ip) not in blocked
    assert corpus.innocent_ip not in {s["client_ip"] for s in report["sources"]["top"]}
    for target in TARGETS:
        assert corpus.innocent_ip not in (corpus.folder / f"rules-{target}").read_text(encoding="utf-8"), target


# -- exports: comments cannot break out, whatever the report says ------------------------------------------

_BENIGN = "17 attacking IPs"
NOW = datetime(2026, 5, 17, 10, 0, tzinfo=UTC)


def _mitigation(reason: str, incident: str) -> dict[str, Any]:
    return {"blocklist": [{"cidr": c, "requests": 900 - i, "attackers": 3, "reason": reason, "collateral_clients": 0,
                           "collateral_requests": 0} for i, c in enumerate(("77.1.2.0/24", "2a01:4f8::/48"))],
            "attack_requests_total": 5000,
            "incident": {"id": incident, "start": "2026-05-17T09:00:00Z", "end": "2026-05-17T09:20:00Z"}}


@pytest.fixture(scope="module")
def benign() -> tuple[Any, dict[str, str]]:
    protected = protected_ranges()
    rules = plan_rules(_mitigation(_BENIGN, "I1"), protected, now=NOW)
    return protected, {target: render(target, ExportContext(rules, protected)) for target in TARGETS}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(reason=st.text(alphabet=st.characters(codec="utf-8"), max_size=120).map(lambda s: s + '"\n#}{;`$(x)\r\x1b]'),
       incident=st.text(max_size=30))
def test_report_text_cannot_escape_a_comment_in_any_export(benign: tuple[Any, dict[str, str]], reason: str,
                                                           incident: str) -> None:
    protected, expected = benign
    rules = plan_rules(_mitigation(reason, incident), protected, now=NOW)
    for target in TARGETS:
        hostile = render(target, ExportContext(rules, protected))
        benign_text = expected[target]
        assert hostile.count("\n") == benign_text.count("\n"), target
        assert not TERMINAL_UNSAFE.search(hostile), target
        assert export_structure(target, hostile) == export_structure(target, benign_text), target


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_csv_cell_neutralises_every_formula_prefix(text: str) -> None:
    cell = next(csv.reader(io.StringIO(_csv_line(csv_cell(text)))))[0]
    assert not cell.startswith(FORMULA)
    shown = terminal_safe(text, None)
    assert cell in (shown, "'" + shown)
    assert "\n" not in cell and "\r" not in cell


def _csv_line(cell: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([cell])
    return out.getvalue()


# -- what the user named: clear errors, nothing half done ------------------------------------------------------

def test_junk_named_on_its_own_is_a_clean_error(corpus: Corpus, tmp_path: Path) -> None:
    assert corpus.junk is not None and corpus.nonsense is not None
    for path in (corpus.junk, corpus.nonsense):
        result = run("ingest", str(path), "--out", str(tmp_path / path.name))
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output.startswith(f"Error: {path}: no known log format fits this file")
        assert not (tmp_path / path.name).exists()


def test_ten_thousand_shapes_read_with_a_named_format_lose_nothing(corpus: Corpus, tmp_path: Path) -> None:
    assert corpus.nonsense is not None
    result = run("ingest", str(corpus.nonsense), "--format", "combined", "--out", str(tmp_path / "s"), "--json", "-")
    # nothing parses: the accounting is still written, then the run fails saying so (issue #18)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {corpus.nonsense}: no line could be parsed as combined: all 10,000 lines "
                                    "rejected (format_mismatch ")
    assert not TERMINAL_UNSAFE.search(result.stderr)
    item = json.loads(result.stdout)["inputs"][0]
    assert item["lines_read"] == NONSENSE_LINES == item["lines_parsed"] + item["lines_rejected"]
    assert not TERMINAL_UNSAFE.search(result.stdout)


def test_a_folder_with_junk_skips_it_and_reads_the_log(corpus: Corpus, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    assert corpus.junk is not None and corpus.nonsense is not None
    for path in (corpus.junk, corpus.nonsense, corpus.folder / "edge.log"):
        (folder / path.name).write_bytes(path.read_bytes())
    result = run("ingest", str(folder), "--out", str(tmp_path / "s"), "--json", str(tmp_path / "s.json"))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert sorted(os.path.basename(s["path"]) for s in summary["skipped"]) == ["junk.bin", "nonsense.log"]
    assert summary["totals"]["lines_read"] == summary["totals"]["lines_parsed"] == corpus.lines[
        str(corpus.folder / "edge.log")]


def _unreadable(tmp_path: Path) -> Path:
    """A file this process cannot open: mode 000, or (as root, who may read anything) a write-only kernel file."""
    if os.geteuid() != 0:
        path = tmp_path / "secret.log"
        path.write_text("x\n")
        path.chmod(0)
        return path
    for candidate in ("/sys/bus/pci/rescan", "/sys/bus/cpu/uevent", "/sys/bus/platform/uevent"):
        try:
            open(candidate, "rb").close()
        except PermissionError:
            link = tmp_path / "secret.log"
            link.symlink_to(candidate)
            return link
        except OSError:
            continue
    pytest.skip("running as root and no write-only kernel file to stand for an unreadable log")


def test_an_unreadable_file_is_an_error_naming_it_and_the_old_store_survives(corpus: Corpus, tmp_path: Path) -> None:
    edge = str(corpus.folder / "edge.log")
    store = tmp_path / "store"
    assert run("ingest", edge, "--out", str(store), "-q").exit_code == 0
    manifest = (store / "manifest.json").read_bytes()
    secret = _unreadable(tmp_path)
    result = run("ingest", edge, str(secret), "--out", str(store), "--overwrite", "-q")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: {secret}: cannot open: Permission denied")
    assert (store / "manifest.json").read_bytes() == manifest  # nothing already parsed is lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.log", "store"]  # no half-written store


def test_outputs_never_overwrite_an_input(corpus: Corpus) -> None:
    edge = corpus.folder / "edge.log"
    before = edge.read_bytes()
    for args in (("analyze", str(edge), "-q", "--json", str(edge)), ("analyze", str(edge), "-q", "--html", str(edge)),
                 ("mitigate", str(edge), "--to", "nginx", "-q", "--out", str(edge))):
        result = run(*args)
        assert result.exit_code == 1 and "refusing to overwrite the input file" in result.output, args
    assert edge.read_bytes() == before


def test_terminal_safe_covers_every_control_character() -> None:
    every = "".join(chr(c) for c in range(0x20)) + "".join(chr(c) for c in range(0x7f, 0xa0)) + "\u202a\u202e\u2066\u2069"
    shown = terminal_safe(every, None)
    assert not TERMINAL_UNSAFE.search(shown) and "\n" not in shown
    assert all(unicodedata.category(ch) != "Cc" for ch in shown)


# -- the line parser on anything (the fuzz target of benchmarks/fuzz.py, as a property) -------------------------

@pytest.fixture(scope="module")
def engine() -> Any:
    from floodwitness.engine import Engine

    eng = Engine()
    yield eng
    eng.close()


_EXAMPLES = [fmt.example.encode() for fmt in FORMATS.values()]
_near_misses = st.builds(lambda line, cut, junk: line[:cut] + junk, st.sampled_from(_EXAMPLES),
                         st.integers(0, 400), st.binary(max_size=12))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=st.lists(st.one_of(st.binary(max_size=120), st.sampled_from(_EXAMPLES), _near_misses), max_size=25),
       block=st.integers(1, 700), cap=st.integers(16, 600), fmt=st.sampled_from(sorted(FORMATS)),
       detect_format=st.booleans())
def test_every_format_reads_any_bytes_without_crash_or_loss(engine: Any, lines: list[bytes], block: int, cap: int,
                                                           fmt: str, detect_format: bool) -> None:
    parse_check(engine, b"\n".join(lines), block=block, cap=cap, fallback=fmt, detect_format=detect_format)


def test_detection_time_is_bounded_on_lines_crafted_against_backtracking() -> None:
    """1,000 distinct 64 kB lines that make the NCSA pattern backtrack: detection reads a bounded sample."""
    import time

    lines = [f'1.2.{i // 256}.{i % 256} - - [x] "GET / HTTP/1.1" 200 1 ' + '"a" ' * 16_000 + '"' for i in range(1000)]
    start = time.perf_counter()
    with pytest.raises(FormatError):
        detect(lines)
    assert time.perf_counter() - start < 5  # ~0.15 s; before the sample was bounded: ~0.4 s per line and format
