"""The HTML and Markdown reports: content, escaping of hostile log fields, the `report` command, and the HTML
report opened in a real headless Chromium (charts drawn, no console error, nothing injected ran)."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from floodwitness.cli import main
from floodwitness.render.html import script_json
from floodwitness.render.markdown import md_code, md_text
from floodwitness.safe import terminal_safe
from floodwitness.simulate import simulate

if TYPE_CHECKING:
    from pathlib import Path

UA_SCRIPT = "<script>window.__pwned=1</script>"
UA_IMG = '"><img src=x onerror=window.__pwned=2>'
UA_MARKDOWN = "[click me](http://evil.example/) ![x](http://evil.example/x.png) <b>bold</b> www.evil.example"
PATH_SCRIPT = "/</script><script>window.__pwned=3</script>"
PATH_SVG = "/<svg/onload=window.__pwned=4>"
# (client, path, user agent as written in the log: Apache escapes a quote as \")
HOSTILE = [("203.0.113.7", PATH_SCRIPT, UA_SCRIPT), ("203.0.113.8", PATH_SVG, UA_IMG.replace('"', '\\"')),
           ("198.51.100.9", "/?q=%3Cx%3E", UA_MARKDOWN)]
PER_KIND = 2500
TS = re.compile(r"\[(\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="floodwitness", catch_exceptions=False)


def _inject(log: Path, begin: datetime) -> None:
    """Hostile lines at the incident's start (so evidence samples quote them), timed inside the incident."""
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines)
              if datetime.strptime(TS.search(line).group(1), "%d/%b/%Y:%H:%M:%S %z") >= begin)  # type: ignore[union-attr]
    stamps = [TS.search(lines[at + i % 2000]).group(1) for i in range(PER_KIND)]  # type: ignore[union-attr]
    hostile = [f'{ip} - - [{stamps[i]}] "GET {path} HTTP/1.1" 200 512 "-" "{ua}" 0.010 -\n'
               for i in range(PER_KIND) for ip, path, ua in HOSTILE]
    log.write_text("".join(lines[:at] + hostile + lines[at:]), encoding="utf-8")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small simulated Mirai flood with hostile user agents and paths, analysed by the CLI into JSON, HTML
    and Markdown."""
    folder = tmp_path_factory.mktemp("hostile")
    truth = simulate("mirai", folder, seed=5, hours=1.0, scale=0.3)
    _inject(folder / "access.log", truth.incidents[0].start)
    out = {"json": folder / "report.json", "html": folder / "report.html", "md": folder / "report.md"}
    result = run("analyze", str(folder / "access.log"), "-q", "--json", str(out["json"]), "--html", str(out["html"]),
                 "--markdown", str(out["md"]))
    assert result.exit_code == 0, result.output
    report = json.loads(out["json"].read_text(encoding="utf-8"))
    return {"report": report, "folder": folder, **out}


def test_the_hostile_fields_reach_the_report(hostile: dict[str, Any]) -> None:
    """Otherwise the escaping tests below would prove nothing."""
    report = hostile["report"]
    assert report["verdict"]["kind"] == "ddos"
    agents = {u["user_agent"] for u in report["sources"]["user_agents"]}
    assert {UA_SCRIPT, UA_MARKDOWN} <= agents
    assert any(UA_IMG in a for a in agents), agents
    paths = {p["path"] for p in report["targets"]["top_paths"]}
    assert {PATH_SCRIPT, PATH_SVG} <= paths
    samples = " ".join(e["sample"] or "" for f in report["findings"] for e in f["evidence"])
    assert UA_SCRIPT in samples
    assert len(report["timeline"]["new_clients"]) == len(report["timeline"]["requests"])


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_escapes_every_log_field(hostile: dict[str, Any]) -> None:
    html = hostile["html"].read_text(encoding="utf-8")
    parsed = _Elements()
    parsed.feed(html)
    tags = [t for t, _ in parsed.tags]
    assert tags.count("script") == 4  # data, blocklist, chart library, our script: nothing injected
    assert "img" not in tags and "svg" not in tags and "b" in tags  # our own <b>, never the log's
    assert not [a for _, attrs in parsed.tags for a in attrs if a.startswith("on")]  # no event handler at all
    for tag, attrs in parsed.tags:  # nothing is fetched: no src or external href
        assert "src" not in attrs, tag
        assert not (attrs.get("href") or "#").startswith(("http", "//")), (tag, attrs)
    text = "".join(parsed.text)
    for field in (UA_SCRIPT, UA_MARKDOWN, PATH_SCRIPT, PATH_SVG, "<img src=x onerror=window.__pwned=2>"):
        assert field in text, field
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    policy = next(a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in str(policy) and "'unsafe-inline'" not in str(policy).split("style-src")[0]
    # the sections, in the order the issue asks for
    order = ["verdict", "hypotheses", "timeline", "sources", "clusters", "targets", "impact", "blocklist",
             "findings", "inputs", "reproduce"]
    positions = [html.index(f'<section id="{name}">') for name in order]
    assert positions == sorted(positions)
    report = hostile["report"]
    assert report["inputs"][0]["sha256"] in html
    assert f"{report['inputs'][0]['lines_read']:,} lines read" in html
    assert report["verdict"]["summary"] in html
    assert html.count("<details") >= len(report["findings"])
    assert "floodwitness analyze" in html and report["tool"]["version"] in html


@given(st.text())
def test_script_json_cannot_close_its_script(text: str) -> None:
    embedded = str(script_json({"ua": text, "list": [text]}))
    assert "<" not in embedded and ">" not in embedded and "&" not in embedded
    assert "\u2028" not in embedded and "\u2029" not in embedded
    assert json.loads(embedded) == {"ua": text, "list": [text]}


_MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _live(markdown: str) -> list[str]:
    """Links, images and raw HTML the Markdown would produce."""
    found = []
    for token in _MD.parse(markdown):
        if token.type in ("html_block",):
            found.append(token.content)
        for child in token.children or []:
            if child.type in ("link_open", "image", "html_inline"):
                found.append(child.type + ": " + str(child.attrs or child.content))
    return found


def _outside_code(markdown: str) -> str:
    markdown = re.sub(r"(?ms)^(`{3,}).*?^\1$", "", markdown)
    return re.sub(r"(`+).*?\1", "", markdown)


def test_markdown_has_no_live_link_image_or_html(hostile: dict[str, Any]) -> None:
    markdown = hostile["md"].read_text(encoding="utf-8")
    assert _live(markdown) == []
    prose = _outside_code(markdown)
    assert not re.search(r"(?<!\\)://|(?i:www)\.|(?<!\\)<", prose), prose
    assert md_code(UA_MARKDOWN, table=True) in markdown  # shown, literally, in a code span
    assert md_text(hostile["report"]["verdict"]["summary"]) in markdown
    assert hostile["report"]["inputs"][0]["sha256"] in markdown


def test_markdown_and_html_show_ases_and_countries_as_percentages(hostile: dict[str, Any]) -> None:
    """The AS and country breakdowns are tables in both, with shares as percentages (the JSON holds fractions)."""
    sources = hostile["report"]["sources"]
    assert sources["asns"] and sources["countries"]
    markdown = hostile["md"].read_text(encoding="utf-8")
    page = hostile["html"].read_text(encoding="utf-8")
    for what, row, label in (("AS", sources["asns"][0], sources["asns"][0]["as_name"]),
                             ("country", sources["countries"][0], sources["countries"][0]["country"])):
        assert f"| {what} | requests | clients | share | baseline share | seen before |" in markdown
        assert f"| {md_code(label, 60, table=True)} | {row['requests']:,} | {row['clients']:,} | {row['share']:.1%} |" \
            in markdown
    assert page.count("share of the incident") == 2


def test_an_attack_lists_its_suspects_before_the_busiest_clients(hostile: dict[str, Any]) -> None:
    """The busiest clients of a flood are often the site's own apps retrying: the heaviest suspects (new
    clients the blocklist is made of) come first, in both reports."""
    sources = hostile["report"]["sources"]
    first = sources["top_suspects"][0]
    assert not first["known"] and first["requests"] == max(s["requests"] for s in sources["top_suspects"])
    markdown = hostile["md"].read_text(encoding="utf-8")
    page = hostile["html"].read_text(encoding="utf-8")
    heading = markdown.index("**Heaviest suspected attackers**")
    assert markdown.index(md_code(first["client_ip"], table=True), heading) < markdown.index("**Busiest clients**")
    heading = page.index("Heaviest suspected attackers")
    assert page.index(first["client_ip"], heading) < page.index("Top clients", heading)
    # an attack: the caveat that its networks are the compromised devices', not the attacker's
    assert "compromised devices" in markdown and "compromised devices" in page


def test_both_reports_say_the_temporary_store_of_the_queries_is_gone(hostile: dict[str, Any]) -> None:
    """`analyze LOGS` without --store deletes the store its evidence queries read."""
    assert hostile["report"]["parameters"]["store_is_temporary"] is True
    note = "this analysis's temporary store was deleted: rerun with --store DIR to keep it"
    assert note in hostile["md"].read_text(encoding="utf-8")
    assert note.replace("'", "&#39;") in hostile["html"].read_text(encoding="utf-8")


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_markdown_code_span_and_text_hold_any_field_literally(text: str) -> None:
    shown = terminal_safe(text, 200)
    tokens = _MD.parseInline(md_code(text))[0].children or []
    assert [t.type for t in tokens] == ["code_inline"]
    if shown.strip(" "):
        assert tokens[0].content == shown
    assert _live("- " + md_text(text)) == []
    assert _live(f"| a |\n|---|\n| {md_code(text, table=True)} |\n") == []


def test_markdown_table_cells_keep_pipes_inside_code() -> None:
    table = f"| a | b |\n|---|---|\n| {md_code('x|y', table=True)} | 1 |\n"
    assert "<td><code>x|y</code></td>\n<td>1</td>" in _MD.render(table)


# -- the `report` command --------------------------------------------------------------------------------------

def test_report_command_renders_a_saved_report(hostile: dict[str, Any], tmp_path: Path) -> None:
    result = run("report", str(hostile["json"]), "--html", str(tmp_path / "r.html"), "--markdown",
                 str(tmp_path / "r.md"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == hostile["md"].read_text(encoding="utf-8")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == hostile["html"].read_text(encoding="utf-8")
    result = run("report", str(hostile["json"]), "--markdown", "-")
    assert result.output == hostile["md"].read_text(encoding="utf-8")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not JSON"),
    ('{"schema": "other/1"}', "not a floodwitness report: schema is 'other/1', expected 'floodwitness.report/1'"),
    ('{"schema": "floodwitness.report/1", "tool": {}}', "the report lacks verdict, incidents, findings, inputs, "
                                                         "timeline"),
    ("[1, 2]", "not a floodwitness report: the JSON is not an object"),
    ('{"schema": "floodwitness.report/1", "tool": {}, "verdict": {}, "incidents": [], "findings": [], "inputs": [], '
     '"timeline": {}}', "the report lacks a field the HTML report needs: 'dict object' has no attribute 'version'"),
    ('{"schema": "floodwitness.report/1", "tool": {"version": "1"}, "verdict": {"kind": "x", "confidence": "high"}, '
     '"incidents": [], "findings": [], "inputs": [], "timeline": {}}', "a field is missing or malformed (ValueError"),
])
def test_report_command_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content, encoding="utf-8")
    result = run("report", str(path), "--html", str(tmp_path / "out.html"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.html").exists()


def test_report_command_prints_the_terminal_report_and_never_overwrites_its_input(hostile: dict[str, Any]) -> None:
    result = run("report", str(hostile["json"]))  # no output option: the terminal report, as `analyze` prints it
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Verdict: ") and "\nTimeline" in result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    before = hostile["json"].read_bytes()
    result = run("report", str(hostile["json"]), "--html", str(hostile["json"]))
    assert result.exit_code == 1 and "refusing to overwrite the input file" in result.output
    assert hostile["json"].read_bytes() == before


def test_no_incident_report_renders(tmp_path: Path) -> None:
    simulate("quiet", tmp_path, seed=2, hours=0.5, scale=0.2)
    result = run("analyze", str(tmp_path / "access.log"), "-q", "--html", str(tmp_path / "q.html"), "--markdown",
                 str(tmp_path / "q.md"))
    assert result.exit_code == 0, result.output
    html = (tmp_path / "q.html").read_text(encoding="utf-8")
    assert "No incident window" in html and "Empty: no incident: nothing to block" in html
    markdown = (tmp_path / "q.md").read_text(encoding="utf-8")
    assert "## Blocklist\n\nEmpty: no incident: nothing to block" in markdown
    assert "suspected attackers" not in html
    assert "compromised devices" not in html and "compromised devices" not in markdown  # no attack, no attacker


# -- in a real browser -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Any:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): "
                    "apt-get install chromium chromium-driver (.ci/run does this when apt-get is available)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1500", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _wait(driver: Any, script: str, seconds: float = 20.0) -> Any:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    return driver.execute_script(script)


def test_html_report_in_headless_chromium(hostile: dict[str, Any], browser: Any,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    browser.get(hostile["html"].as_uri())
    assert _wait(browser, "return document.body.getAttribute('data-charts')") == "ok"
    drawn = browser.execute_script(
        "return ['chart-timeline', 'chart-networks'].map(function (id) {"
        "  return document.querySelectorAll('#' + id + ' svg path, #' + id + ' svg text').length; })")
    assert drawn[0] > 100 and drawn[1] > 20, drawn  # lines, bands and axes; bars and labels
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    text = browser.execute_script("return document.body.innerText")
    for field in (UA_SCRIPT, PATH_SCRIPT, PATH_SVG, "<img src=x onerror=window.__pwned=2>"):
        assert field in text, field
    assert browser.execute_script("return document.querySelectorAll('img, script:not([id]):not([src])').length") == 2
    # evidence expands to its sample lines and query; tables sort
    first = browser.find_element("css selector", "#hypotheses details.hyp.best li details > summary")
    first.click()
    opened = browser.find_element("css selector", "#hypotheses details.hyp.best li details[open]")
    assert "SELECT" in opened.text and "access.log:" in opened.text
    header = browser.find_element("xpath", "//section[@id='targets']//th[normalize-space()='requests']")
    header.click()
    counts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#targets tbody tr td:nth-child(3)'))"
        ".map(function (td) { return parseFloat(td.getAttribute('data-v')); })")
    assert counts == sorted(counts) and len(counts) > 3
    # zoom: drag over the overview strip at the bottom of the timeline; the panels' time axis changes
    from selenium.webdriver.common.action_chains import ActionChains

    labels = "return Array.from(document.querySelectorAll('#chart-timeline svg text')).map(t => t.textContent).join()"
    before = browser.execute_script(labels)
    svg = browser.find_element("css selector", "#chart-timeline svg")
    browser.execute_script("arguments[0].scrollIntoView()", svg)
    width, height = svg.size["width"], svg.size["height"]
    drag = ActionChains(browser).move_to_element_with_offset(svg, int(width * 0.05), int(height / 2 - 45))
    drag.click_and_hold().move_by_offset(int(width * 0.15), 0).release().perform()
    assert _wait(browser, labels.replace("return ", "return (") + f") !== {json.dumps(before)}", 5)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path_factory.mktemp("artifacts") / "report-screenshot.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("FLOODWITNESS_SCREENSHOT"):  # docs/report-screenshot.png is made this way
        shutil.copyfile(shot, os.environ["FLOODWITNESS_SCREENSHOT"])
