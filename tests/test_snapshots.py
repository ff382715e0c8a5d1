"""Golden reports: what `floodwitness analyze` renders for two simulated incidents, as reviewable files.

For each case (a Mirai-style flood, a flash crowd: small, fixed seeds) the CLI writes the JSON and Markdown
reports and prints the terminal report (80 columns, no colour); each is compared with its file in
``tests/snapshots/``. A renamed, removed or moved field, or a changed sentence, shows as a diff.

The analysis runs on one thread (``--threads 1``): on several, DuckDB's approximate quantiles (the minutes' p50 and
p95 request times, the baseline's p50 client rate) differ in their third digit from run to run.
Volatile parts are masked (the time the report was made, the version, the temporary store and folder). The
JSON snapshot is the report with every list longer than :data:`LONG` replaced by its length and a few summary
numbers (or its first items), and long strings cut, so it stays small enough to read.

The analysis changes on purpose from time to time; then refresh the files and read their diff before committing:

    FLOODWITNESS_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_snapshots.py
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from floodwitness import __version__
from floodwitness.cli import main
from floodwitness.simulate import simulate

if TYPE_CHECKING:
    from collections.abc import Callable

SNAPSHOTS = Path(__file__).with_name("snapshots")
UPDATE_VAR = "FLOODWITNESS_UPDATE_SNAPSHOTS"

#: name -> (scenario, seed): small logs (1.5 hours at 0.3 of the default rates), each a few seconds to analyse.
CASES: dict[str, tuple[str, int]] = {"mirai": ("mirai", 3), "flash_crowd": ("flash_crowd", 3)}
HOURS, SCALE = 1.5, 0.3

#: Lists longer than this are summarised in the JSON snapshot; the first FIRST items of a list of objects stay.
LONG, FIRST = 6, 2
#: Strings longer than this (evidence queries, sample lines) are cut in the JSON snapshot (the Markdown has them).
MAX_STRING = 160
OUTPUTS = ("report.json", "report.md", "terminal.txt")


def _masker(report: dict[str, Any], folder: Path) -> Callable[[str], str]:
    """A function masking what changes from run to run in any text of this report."""
    replacements = [(str(folder), "<tmp>"), (str(report["parameters"]["store"]), "<store>"),
                    (str(report["generated_at"]), "<generated_at>"), (f"floodwitness {__version__}",
                                                                     "floodwitness <version>")]

    def mask(text: str) -> str:
        for old, new in replacements:
            text = text.replace(old, new)
        return text

    return mask


def _number(value: float) -> float | int:
    """Six significant digits: sums of floats taken in another order differ in their last bits."""
    return value if isinstance(value, int) else float(f"{value:.6g}")


def summarise(value: Any, mask: Callable[[str], str] = str) -> Any:
    """``value`` with long lists replaced by their length and a few numbers, long strings cut, text masked."""
    if isinstance(value, dict):
        return {k: summarise(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) <= LONG:
            return [summarise(v, mask) for v in value]
        out: dict[str, Any] = {"length": len(value)}
        numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        nulls = sum(v is None for v in value)
        if numbers and len(numbers) + nulls == len(value):
            out |= {"min": _number(min(numbers)), "max": _number(max(numbers)), "sum": _number(sum(numbers))}
            if nulls:
                out["nulls"] = nulls
        else:
            if all(isinstance(v, dict) and "id" in v for v in value):  # findings, incidents: which ones, all of them
                out["ids"] = [mask(str(v["id"])) for v in value]
            out["first"] = [summarise(v, mask) for v in value[:FIRST]]
        return {"<list>": out}
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        text = mask(value)
        return text if len(text) <= MAX_STRING else f"{text[:MAX_STRING]}... ({len(text)} characters)"
    return value


def render_case(case: str, folder: Path) -> dict[str, str]:
    """The three outputs of `analyze` for ``case``, masked, as the snapshot files hold them."""
    kind, seed = CASES[case]
    simulate(kind, folder, seed=seed, scale=SCALE, hours=HOURS)
    runner = CliRunner(env={"COLUMNS": "80", "NO_COLOR": "1", "FORCE_COLOR": None, "TERM": "dumb"})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # the input is named access.log, as a user in that folder would name it
        result = runner.invoke(main, ["analyze", "access.log", "--json", "report.json", "--markdown", "report.md",
                                      "--threads", "1"],
                               prog_name="floodwitness", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    mask = _masker(report, folder)
    report["tool"]["version"] = "<version>"
    return {"report.json": json.dumps(summarise(report, mask), indent=1, ensure_ascii=False) + "\n",
            "report.md": mask((folder / "report.md").read_text(encoding="utf-8")),
            "terminal.txt": mask(result.stdout)}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return {case: render_case(case, tmp_path_factory.mktemp(case)) for case in CASES}


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_report_matches_its_snapshot(rendered: dict[str, dict[str, str]], case: str, output: str) -> None:
    path = SNAPSHOTS / case / output
    text = rendered[case][output]
    if os.environ.get(UPDATE_VAR) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"no snapshot {path}: write it with {UPDATE_VAR}=1 python -m pytest {__file__}"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), text.splitlines(keepends=True),
                                            str(path), "now", n=2))
        pytest.fail(f"{case} {output} differs from its snapshot {path}. If the change is intended, refresh the "
                    f"snapshots with {UPDATE_VAR}=1 python -m pytest tests/test_snapshots.py and read their diff "
                    f"before committing.\n{diff[:8000]}", pytrace=False)


def test_snapshots_stay_small() -> None:
    """Golden files nobody reads are no review: each stays under 30 kB."""
    files = sorted(SNAPSHOTS.glob("*/*"))
    assert {f"{p.parent.name}/{p.name}" for p in files} == {f"{c}/{o}" for c in CASES for o in OUTPUTS}
    assert all(p.stat().st_size < 30_000 for p in files), {p.name: p.stat().st_size for p in files}


def test_summarise_keeps_names_and_shortens_lists() -> None:
    data = {"series": [1, 2.5, None, 4, 5, 6, 7], "rows": [{"a": i} for i in range(8)], "short": [1, 2],
            "text": "x" * 200}
    out = summarise(data, lambda s: s.replace("x", "y"))
    assert out["series"] == {"<list>": {"length": 7, "min": 1, "max": 7, "sum": 25.5, "nulls": 1}}
    assert out["rows"] == {"<list>": {"length": 8, "first": [{"a": 0}, {"a": 1}]}}
    found = summarise([{"id": f"x{i}", "n": i} for i in range(7)], lambda s: s)
    assert found == {"<list>": {"length": 7, "ids": [f"x{i}" for i in range(7)],
                                "first": [{"id": "x0", "n": 0}, {"id": "x1", "n": 1}]}}
    assert out["short"] == [1, 2]
    assert re.fullmatch(r"y{160}\.\.\. \(200 characters\)", out["text"])
