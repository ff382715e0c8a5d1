"""Honest under thin or wrong evidence (issue #18): no parsed line, or no request in the asked window, is an
error that says what was rejected and why, never a NO_INCIDENT verdict dated 1970."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from floodwitness.cli import main
from floodwitness.errors import UsageError
from floodwitness.report import AnalyzeOptions

if TYPE_CHECKING:
    from pathlib import Path

GOOD = '198.51.100.7 - - [17/May/2024:10:05:03 +0200] "GET /a?b=1 HTTP/1.1" 200 612 "-" "curl/8.5.0"'
ELASTIC = "elastic-apache/Common_Data_Formats_apache_logs_apache_logs"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="floodwitness", catch_exceptions=False)


def assert_error(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"


def write_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_wrong_format_names_the_rejections_and_the_format_that_fits(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", [GOOD] * 3)
    assert_error(run("analyze", str(log), "--format", "caddy"),
                 f"{log}: no line could be parsed as caddy: all 3 lines rejected (format_mismatch 3)\n"
                 "The rejected lines look like combined (100% of 3 sample lines fit it): give --format combined, "
                 "or leave --format out to detect it.")


def test_a_wrong_format_of_ones_own(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", [GOOD] * 3)
    result = run("analyze", str(log), "--log-format", "nginx:$remote_addr [$time_local] $status")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {log}: no line could be parsed as custom_nginx_")
    assert result.stderr.endswith(": all 3 lines rejected (format_mismatch 3)\nThe rejected lines look like combined "
                                  "(100% of 3 sample lines fit it): give --format combined, or check the --log-format "
                                  "string against a line of the log.\n")


def test_a_wrong_format_on_the_real_apache_log(realdata: Path) -> None:
    log = realdata / ELASTIC
    assert_error(run("analyze", "--format", "caddy", str(log)),
                 f"{log}: no line could be parsed as caddy: all 10,000 lines rejected (format_mismatch 10,000)\n"
                 "The rejected lines look like combined (100% of 5 sample lines fit it): give --format combined, "
                 "or leave --format out to detect it.")


def test_a_log_of_which_nothing_parses(realdata: Path) -> None:
    log = realdata / "fail2ban-http" / "logs" / "apache-pass"
    result = run("analyze", str(log))
    assert_error(result, f"{log}: no line could be parsed (detected as combined_timing_xff): all 2 lines rejected "
                         "(bad_timestamp 1, comment 1)\n"
                         'First rejected line (2, bad_timestamp): 192.0.2.12 - user1 [27/Jun/2013:11:55:44] "GET '
                         '/knocking/ HTTP/1.1" 200 266 "http://domain.net/hello-world/" "Mozilla/5…\n'
                         "See `floodwitness formats`, or describe the format with --log-format.")


def test_an_empty_file_says_it_is_empty(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    hint = ("Give a log with requests in it (a log rotated just now is empty: its requests are in the previous "
            "file, e.g. access.log.1).")
    assert_error(run("analyze", str(log)), f"{log}: the file is empty (0 lines)\n{hint}")
    result = run("ingest", str(log), "--out", str(tmp_path / "store"), "-q")
    assert_error(result, f"{log}: the file is empty (0 lines)\n{hint}")


def test_since_after_the_data(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", [GOOD] * 3)
    assert_error(run("analyze", str(log), "--since", "2025-01-01"),
                 "no parsed request between 2025-01-01T00:00:00Z and the end: the logs run from "
                 "2024-05-17T08:05:03Z to 2024-05-17T08:05:03Z\n"
                 "Choose --since/--until within the logs' period, or leave them out to analyse it all.")


def test_since_after_until_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    missing = tmp_path / "not-read.log"  # never opened: the options fail first
    assert_error(run("analyze", str(missing), "--since", "2024-05-18", "--until", "2024-05-17"),
                 "--since is not before --until: the time window is empty\n"
                 "Give --since an earlier time than --until (ISO 8601; UTC if no offset).")
    with pytest.raises(UsageError, match="not before"):
        AnalyzeOptions(since=datetime(2024, 5, 17), until=datetime(2024, 5, 17))


def test_ingest_of_nothing_parsed_reports_the_accounting_then_fails(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", [GOOD] * 3)
    store = tmp_path / "store"
    result = run("ingest", str(log), "--out", str(store), "--format", "caddy")
    assert result.exit_code == 1
    assert "3 lines read = 0 parsed + 3 rejected, from 1 input(s)" in result.stdout  # the accounting still shows
    assert result.stderr == (f"Error: {log}: no line could be parsed as caddy: all 3 lines rejected "
                             "(format_mismatch 3)\nThe rejected lines look like combined (100% of 3 sample lines fit "
                             "it): give --format combined, or leave --format out to detect it.\n")
    assert (store / "manifest.json").is_file()  # kept: its accounting is the record of what was rejected
    # analysing that store says the same, with the fix for a store
    assert_error(run("analyze", str(store)),
                 f"{log}: no line could be parsed as caddy: all 3 lines rejected (format_mismatch 3)\n"
                 "The rejected lines look like combined (100% of 3 sample lines fit it): ingest the logs again with "
                 "--format combined, or leave --format out to detect it.")
