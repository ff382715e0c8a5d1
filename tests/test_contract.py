"""The report's contract in one place (report/contract.py), and `mitigate` as a library function that the CLI
calls with the same input options as `analyze`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from floodwitness.cli import main
from floodwitness.errors import UsageError
from floodwitness.mitigation.apply import MitigateOptions, mitigate
from floodwitness.report.contract import SCHEMA, check_report, load_report
from floodwitness.simulate import simulate

if TYPE_CHECKING:
    from pathlib import Path

_CUT_AFTER_STATUS = re.compile(r'^\S+ - \S+ \[[^\]]+\] "[^"]*" \d{3}')
_NO_BYTES = 'nginx:$remote_addr - $remote_user [$time_local] "$request" $status'


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Mirai flood logged without sizes, agents or referers: only a format of one's own reads it."""
    folder = tmp_path_factory.mktemp("flood")
    simulate("mirai", folder, seed=1, hours=0.5, scale=0.05)
    log = folder / "cut.log"
    with (folder / "access.log").open(encoding="utf-8") as fh:
        log.write_text("".join(m.group(0) + "\n" for m in map(_CUT_AFTER_STATUS.match, fh) if m), encoding="utf-8")
    return log


def test_a_saved_report_is_checked_in_one_place(tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    with pytest.raises(UsageError, match=r"^cannot read .*none\.json: No such file or directory\n"):
        load_report(str(missing))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(UsageError, match=r"garbage\.json is not JSON: "):
        load_report(str(garbage))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something/2"}))
    with pytest.raises(UsageError, match=r"schema is 'something/2', expected 'floodwitness\.report/1'"):
        load_report(str(other))
    with pytest.raises(UsageError, match=r"the report lacks tool, verdict"):
        check_report({"schema": SCHEMA})
    for command in (["report", str(other)], ["mitigate", str(other), "--to", "nginx"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1
        assert f"Error: {other}: not a floodwitness report: schema is 'something/2'" in result.output


def test_reading_a_report_does_not_load_the_analysis() -> None:
    """The contract and the renderers read a saved report without the engine or the analysis stack."""
    code = ("import sys, floodwitness.report.contract, floodwitness.render.markdown, floodwitness.render.terminal; "
            "print(sorted(m for m in ('duckdb', 'ibis', 'floodwitness.analysis.dataset', 'floodwitness.report.build') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_mitigate_is_a_library_function(flood: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["analyze", str(flood), "--log-format", _NO_BYTES, "--rate-limits", "--json",
                                       str(out), "-q"])
    assert result.exit_code == 0, result.output
    section = load_report(str(out))["mitigation"]
    assert section["blocklist"]
    done = mitigate(section, MitigateOptions("nginx"))
    first = section["blocklist"][0]["cidr"]
    assert f"deny {first.removesuffix('/32')}" in done.text or f"deny {first}" in done.text
    assert any("would have stopped" in line or "block" in line for line in done.summary)
    allowed = mitigate(section, MitigateOptions("nginx", allow=(first,)))
    assert f"deny {first}" not in allowed.text and f"deny {first.removesuffix('/32')};" not in allowed.text
    with pytest.raises(UsageError, match=r"unknown enforcement point 'nginx-plus'"):
        mitigate(section, MitigateOptions("nginx-plus"))


def test_mitigate_reads_logs_as_analyze_does(flood: Path) -> None:
    """`mitigate LOGS` analyses them with the same --log-format as `analyze` (it used to drop it and fail)."""
    result = CliRunner().invoke(main, ["mitigate", str(flood), "--log-format", _NO_BYTES, "--to", "nginx", "-q"])
    assert result.exit_code == 0, result.output
    assert "deny " in result.output
    plain = CliRunner().invoke(main, ["mitigate", str(flood), "--to", "nginx", "-q"])
    assert plain.exit_code == 1 and "Error: " in plain.output  # no built-in format reads it
