"""The command line: help on every command, exact error messages without tracebacks, JSON, terminal safety."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from floodwitness.analysis.dataset import open_dataset
from floodwitness.cli import main
from floodwitness.cli.options import _open_engine, _size, _stages
from floodwitness.formats import ALIASES, FORMATS
from floodwitness.report import analyze
from floodwitness.schema import COLUMNS
from floodwitness.simulate import SCENARIOS, simulate

GOOD = '198.51.100.7 - - [17/May/2024:10:05:03 +0200] "GET /a?b=1 HTTP/1.1" 200 612 "-" "curl/8.5.0"'


def run(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, prog_name="floodwitness", catch_exceptions=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def write_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# -- help ----------------------------------------------------------------------------------------------------

def test_main_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "was it an attack?" in result.output
    for name in main.commands:
        assert f"  {name} " in result.output, name


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help(name: str) -> None:
    command = main.commands[name]
    assert command.help, f"{name} has no docstring"
    first_paragraph = command.help.split("\n\n")[0]
    for flag in ("--help", "-h"):
        result = run(name, flag)
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Usage: floodwitness {name} ")
        assert flat(first_paragraph) in flat(result.output)


OPTIONS = [
    pytest.param(name, param.opts[0], id=f"{name}{param.opts[0]}")
    for name, command in sorted(main.commands.items())
    for param in command.params if isinstance(param, click.Option)
]


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_every_option_has_help(name: str, option: str) -> None:
    param = next(p for p in main.commands[name].params if isinstance(p, click.Option) and p.opts[0] == option)
    assert param.help, f"{name} {option} has no help text"


# -- errors: exact text, exit 1, no traceback -----------------------------------------------------------------

def assert_error(result: Result, message: str) -> None:
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"
    assert "Traceback" not in result.output


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.log"
    result = run("ingest", str(missing), "--out", str(tmp_path / "store"))
    assert_error(result, f"{missing}: no such file\nCheck the path and spelling.")
    assert not (tmp_path / "store").exists()


def test_unknown_format(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", [GOOD])
    result = run("ingest", str(log), "--out", str(tmp_path / "store"), "--format", "apache2")
    assert_error(result, "unknown format 'apache2'\nChoose auto or one of: " + ", ".join(sorted({*FORMATS, *ALIASES})))
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("name", ["nginx", "apache"])
def test_nginx_and_apache_name_the_combined_format(tmp_path: Path, name: str) -> None:
    log = write_log(tmp_path / "a.log", [GOOD] * 3)
    result = run("ingest", str(log), "--out", str(tmp_path / "store"), "--format", name, "--json", "-")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)["inputs"]
    assert (record["format"], record["lines_parsed"]) == ("combined", 3)
    assert "combined (also: apache, nginx)  NCSA combined" in run("formats").output
    formats = {f["name"]: f for f in json.loads(run("formats", "--json").stdout)["formats"]}
    assert formats["combined"]["aliases"] == ["apache", "nginx"] and formats["common"]["aliases"] == []


def test_a_uri_as_the_store_is_refused_not_made_a_local_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = write_log(tmp_path / "a.log", [GOOD])
    monkeypatch.chdir(tmp_path)
    result = run("ingest", str(log), "--out", "s3a://bucket/store")
    assert result.exit_code != 0
    assert "not a URI" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s3a:").exists()


def test_memory_limit_and_threads_reach_the_engine(tmp_path: Path) -> None:
    engine = _open_engine("duckdb", None, (), "300MB", 1)
    assert engine is not None
    try:
        limit, threads = engine.raw.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
    finally:
        engine.close()
    number, unit = limit.split()  # DuckDB reports e.g. "286.1 MiB"
    scale = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "KB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    assert abs(float(number) * scale - 300e6) / 300e6 < 0.01
    assert int(threads) == 1
    log = write_log(tmp_path / "a.log", [GOOD] * 50)
    result = run("analyze", str(log), "-q", "--memory-limit", "256MB", "--threads", "1", "--json", "-")
    assert result.exit_code == 0, result.output
    assert_error(run("ingest", str(log), "--out", str(tmp_path / "s"), "--memory-limit", "lots"),
                 "--memory-limit 'lots' is not a size\nWrite e.g. --memory-limit 2GB (KB, MB, GB, TB, or KiB, MiB, "
                 "GiB, TiB).")
    result = run("ingest", str(log), "--out", str(tmp_path / "s"), "--engine", "spark", "--threads", "2")
    assert result.exit_code != 0 and "apply to the DuckDB engine" in result.output


@pytest.mark.parametrize("limit", ["1MB", "5MB", "20MB", "30MB", "99MB"])
def test_a_memory_limit_below_the_floor_is_refused_before_any_work(tmp_path: Path, limit: str) -> None:
    missing = tmp_path / "not-read.log"  # never opened: the option fails first
    message = (f"--memory-limit {limit} is below the engine's floor of 100 MB\nGive --memory-limit 100MB or more "
               "(past the limit the engine spills to disk, but it needs this much to work at all).")
    assert_error(run("analyze", str(missing), "--memory-limit", limit), message)
    assert_error(run("ingest", str(missing), "--out", str(tmp_path / "s"), "--memory-limit", limit), message)
    assert_error(run("watch", str(missing), "--replay", "--memory-limit", limit), message)


def test_running_out_of_memory_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a run still exhaust its limit (more threads, a bigger incident), it stops with an error that says
    what to do, not DuckDB's traceback: here a real out-of-memory below the floor, lowered for the test."""
    monkeypatch.setattr("floodwitness.engine.core.MIN_MEMORY_LIMIT", 0)
    log = write_log(tmp_path / "a.log", [GOOD.replace("/a?b=1", f"/p{i}") for i in range(2000)])
    for args in (("analyze", str(log), "-q"), ("ingest", str(log), "--out", str(tmp_path / "s"), "-q")):
        result = run(*args, "--memory-limit", "1KB")
        assert result.exit_code == 1, result.output
        assert result.stdout == "" and "Traceback" not in result.output
        assert result.stderr.startswith("Error: the engine ran out of memory (Out of Memory Error: "), result.stderr
        assert result.stderr.endswith(")\nGive a higher --memory-limit (e.g. 1GB; past it the engine spills to disk "
                                      "what it can), or fewer --threads (each thread holds its own buffers).\n")


def test_the_cli_reference_in_docs_is_up_to_date() -> None:
    """docs/cli.md is generated from the commands' help; an option added without regenerating it fails here."""
    script = Path(__file__).resolve().parents[1] / "docs" / "cli_reference.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_unknown_simulate_kind(tmp_path: Path) -> None:
    result = run("simulate", "ddos", str(tmp_path / "sim"))
    assert_error(result, "unknown scenario 'ddos'\nvalid scenarios: " + ", ".join(sorted(SCENARIOS)))


def test_unknown_simulate_kind_creates_nothing(tmp_path: Path) -> None:
    result = run("simulate", "ddos", str(tmp_path / "sim"))
    assert result.exit_code == 1
    assert not (tmp_path / "sim").exists()


def test_console_script_error_in_a_real_process(tmp_path: Path) -> None:
    script = shutil.which("floodwitness", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail(f"the floodwitness console script is not installed next to {sys.executable}: pip install -e .")
    missing = tmp_path / "gone.log.gz"
    result = subprocess.run([script, "ingest", str(missing), "--out", str(tmp_path / "s")], capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {missing}: no such file\nCheck the path and spelling.\n"


# -- JSON -------------------------------------------------------------------------------------------------------

def test_ingest_json_on_stdout(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log", [GOOD, GOOD.replace("/a?b=1", "/c"), "garbage", ""])
    out = tmp_path / "store"
    result = run("ingest", str(log), "--out", str(out), "--json", "-")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert data["totals"] == {"lines_read": 4, "lines_parsed": 2, "lines_rejected": 2,
                              "bytes": log.stat().st_size}
    assert data["store"] == str(out)
    (record,) = data["inputs"]
    assert record["path"] == str(log) and record["format"] == "combined"
    assert record["rejected_by_reason"] == {"empty_line": 1, "format_mismatch": 1}
    assert [(s["line"], s["reason"], s["raw"]) for s in record["reject_samples"]] == [
        (3, "format_mismatch", "garbage"), (4, "empty_line", "")]


def test_ingest_json_from_stdin(tmp_path: Path) -> None:
    data = (GOOD + "\n") * 3
    result = run("ingest", "-", "--out", str(tmp_path / "store"), "--json", "-", stdin=data.encode())
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["inputs"][0]["path"] == "-"
    assert summary["totals"]["lines_parsed"] == 3


def test_formats_json_lists_every_format() -> None:
    result = run("formats", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [f["name"] for f in data["formats"]] == sorted(FORMATS)
    columns = [c.name for c in COLUMNS]
    assert [c["name"] for c in data["schema"]] == columns
    for entry in data["formats"]:
        fmt = FORMATS[entry["name"]]
        assert entry["example"] == fmt.example and entry["example"]
        assert entry["description"] == fmt.description and entry["description"]
        assert entry["fields"] == sorted(fmt.provides) and entry["fields"]
        assert set(entry["fields"]) <= set(columns), entry["name"]


def test_formats_text_names_every_format() -> None:
    result = run("formats")
    assert result.exit_code == 0
    for name, fmt in FORMATS.items():
        assert f"\n{name}  " in f"\n{result.output}" or f"\n{name} (also: " in f"\n{result.output}", name
        assert "".join(fmt.example.split()) in "".join(result.output.split()), name  # wrapped anywhere


def test_formats_text_indents_wrapped_lines() -> None:
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["formats"], prog_name="floodwitness")
    assert result.exit_code == 0
    heads = [f"{name} " for name in FORMATS]
    for line in result.output.splitlines():
        assert len(line) <= 80, line
        assert line == "" or line.startswith(("  example: ", "  fields:  ", " " * 4, *heads)), \
            f"a wrapped line starts at the margin: {line!r}"
    assert "\n           " in result.output  # some example or field list did wrap, under its text


def test_help_shows_percent_signs_once() -> None:
    for name in ("analyze", "ingest", "watch"):
        output = run(name, "--help").output
        assert "default 80% of RAM; at least 100MB" in flat(output), name
        assert "%%" not in output, name
    reference = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    assert "%%" not in reference.read_text(encoding="utf-8")


def test_watch_help_names_the_formats_instead_of_listing_them() -> None:
    output = run("watch", "--help").output
    assert "--format NAME" in output and "or a name from `floodwitness formats`" in flat(output)
    assert "combined_timing_xff" not in output
    assert max(len(line) for line in output.splitlines()) <= 100


# -- what the arguments may be -----------------------------------------------------------------------------------

def _store(tmp_path: Path, name: str) -> Path:
    log = write_log(tmp_path / f"{name}.log", [GOOD] * 3)
    assert run("ingest", str(log), "--out", str(tmp_path / name), "-q").exit_code == 0
    return tmp_path / name


def test_a_store_with_logs_or_two_stores_is_a_usage_error(tmp_path: Path) -> None:
    one, two = _store(tmp_path, "one"), _store(tmp_path, "two")
    log = tmp_path / "one.log"
    hint = ("Analyse a store alone (`floodwitness analyze STORE`), or give only log files; to analyse logs together, "
            "ingest them into one store (`floodwitness ingest LOGS --out DIR`).")
    assert_error(run("analyze", str(one), str(log)),
                 f"analyze reads one store, or log files; not a mix: {one} is a store among 2 inputs\n{hint}")
    assert_error(run("analyze", str(one), str(two)),
                 f"analyze reads one store, or log files; not a mix: {one} and {two} are both stores\n{hint}")


def test_overwrite_refuses_a_folder_that_is_not_a_store(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", [GOOD])
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"meow")
    assert_error(run("ingest", str(log), "--out", str(folder), "--overwrite"),
                 f"{folder}: output folder is not a floodwitness store (it has no manifest.json): --overwrite "
                 "replaces only a store\nChoose a new folder for --out, or empty this one yourself.")
    assert [p.name for p in folder.iterdir()] == ["cat.jpg"]
    assert_error(run("ingest", str(log), "--out", str(folder)),  # without --overwrite: the usual advice
                 f"{folder}: output folder is not empty\nChoose a new folder, or pass --overwrite to replace an "
                 "existing store.")


# -- what was written, and progress ------------------------------------------------------------------------------

def test_sizes_read_as_people_write_them() -> None:
    assert [_size(n) for n in (0, 812, 1000, 5_712_345, 999_960, 3 * 10**12)] == [
        "0 bytes", "812 bytes", "1.0 kB", "5.7 MB", "1.0 MB", "3.0 TB"]


def test_written_files_are_confirmed_on_stderr(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", [GOOD] * 20)
    outputs = {"--json": tmp_path / "r.json", "--blocklist": tmp_path / "b.txt", "--html": tmp_path / "r.html",
               "--markdown": tmp_path / "r.md"}
    args = [item for option, path in outputs.items() for item in (option, str(path))]
    result = run("analyze", str(log), *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == "".join(f"wrote {p} ({_size(p.stat().st_size)})\n" for p in outputs.values())
    result = run("analyze", str(log), "-q", *args)
    assert result.exit_code == 0 and result.output == ""  # --quiet: nothing at all
    result = run("report", str(outputs["--json"]), "--markdown", str(tmp_path / "again.md"))
    assert result.stderr == f"wrote {tmp_path / 'again.md'} ({_size((tmp_path / 'again.md').stat().st_size)})\n"
    result = run("ingest", str(log), "--out", str(tmp_path / "s"), "--json", str(tmp_path / "i.json"))
    assert result.stderr == f"wrote {tmp_path / 'i.json'} ({_size((tmp_path / 'i.json').stat().st_size)})\n"


def test_report_without_an_output_prints_the_terminal_report(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", [GOOD] * 20)
    assert run("analyze", str(log), "-q", "--json", str(tmp_path / "r.json")).exit_code == 0
    result = run("report", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    assert result.stdout == run("analyze", str(log)).stdout  # the same report analyze prints


def test_analysis_stages_are_shown_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with _stages(quiet=False) as stage:
        assert stage is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with _stages(quiet=True) as stage:
        assert stage is None
    with _stages(quiet=False) as stage:
        assert stage is not None
        stage("incident 1/2")


def test_the_analysis_names_its_stages(tmp_path: Path) -> None:
    simulate("mirai", tmp_path, seed=3, hours=1.0, scale=0.2)
    data = open_dataset([str(tmp_path / "access.log")])
    seen: list[str] = []
    try:
        report = analyze(data, stage=seen.append)
    finally:
        data.close()
    incidents = len(report["incidents"])
    assert incidents >= 1
    assert seen == ["timeline", *(f"incident {i}/{incidents}" for i in range(1, incidents + 1)), "report"]


def test_the_end_of_a_run_says_when_the_real_data_suite_did_not_run() -> None:
    from tests.conftest import REALDATA, pytest_terminal_summary

    class Report:
        def __init__(self, reason: str) -> None:
            self.longrepr = ("tests/test_x.py", 1, f"Skipped: {reason}")

    class Reporter:
        def __init__(self, skipped: list[Report]) -> None:
            self.stats = {"skipped": skipped}
            self.lines: list[str] = []

        def write_line(self, line: str, **_markup: bool) -> None:
            self.lines.append(line)

    absent = f"real data folder {REALDATA} is absent (it sits beside the repo as ../shared/realdata)"
    reporter = Reporter([Report(absent), Report(absent), Report("needs chromium")])
    pytest_terminal_summary(reporter)
    assert reporter.lines == [f"the real-data suite did not run: 2 test(s) skipped because {REALDATA} is absent "
                              "(put the shared real data beside the repo as ../shared/realdata)"]
    quiet = Reporter([Report("needs chromium")])
    pytest_terminal_summary(quiet)
    assert quiet.lines == []


# -- terminal safety ---------------------------------------------------------------------------------------------

def test_ingest_summary_escapes_control_characters(tmp_path: Path) -> None:
    log = write_log(tmp_path / "evil\x1b[2J.log", [GOOD, GOOD, "\x1b[2J\x1b[Hpwned", "[bold red]x[/] \u202eabc"])
    result = run("ingest", str(log), "--out", str(tmp_path / "store"))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "line 3: \\x1b[2J\\x1b[Hpwned" in result.output
    assert "line 4: [bold red]x[/] \\u202eabc" in result.output  # neither markup nor a bidi override
    assert "evil\\x1b[2J.log" in result.output
    assert "4 lines read = 2 parsed + 2 rejected, from 1 input(s)" in result.output
