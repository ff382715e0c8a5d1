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

from floodwitness.cli import _open_engine, main
from floodwitness.formats import FORMATS
from floodwitness.schema import COLUMNS
from floodwitness.simulate import SCENARIOS

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
    result = run("ingest", str(log), "--out", str(tmp_path / "store"), "--format", "apache")
    assert_error(result, "unknown format 'apache'\nChoose auto or one of: " + ", ".join(sorted(FORMATS)))
    assert not (tmp_path / "store").exists()


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
    monkeypatch.setattr("floodwitness.engine.MIN_MEMORY_LIMIT", 0)
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
        assert f"{name}  " in result.output, name
        assert "".join(fmt.example.split()) in "".join(result.output.split()), name  # wrapped anywhere


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
