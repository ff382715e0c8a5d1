"""A finding kind's one home: its registry entry (detectors/base.py) gives its report section and whether it names a
vector, the detectors' thresholds are one policy that an analysis can set, and the renderers group findings by the
report's `section`, not by lists of kinds of their own."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from floodwitness.detectors import DETECTORS, FINDING_KINDS
from floodwitness.detectors.base import HISTORY, SECTIONS, DetectorPolicy
from floodwitness.render.markdown import render_markdown
from floodwitness.report import AnalyzeOptions
from floodwitness.simulate import simulate
from tests.helpers import analyse_logs

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


def test_every_kind_has_a_section_and_every_detector_a_history_need() -> None:
    assert {kind.section for kind in FINDING_KINDS.values()} <= set(SECTIONS)
    assert set(HISTORY) == set(DETECTORS)
    assert set(HISTORY.values()) <= {"needs", "without", "any"}
    vectors = {name for name, kind in FINDING_KINDS.items() if kind.vector}
    assert vectors == {"bot_behaviour", "cache_busting", "concentrated_sources", "tool_fingerprint", "inhuman_rate",
                       "network_flood", "reflection_amplification", "carpet_bombing"}


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flood")
    simulate("mirai", folder, seed=1, hours=0.5, scale=0.05)
    return folder / "access.log"


def _analyze(log: Path, **options: Any) -> dict[str, Any]:
    return analyse_logs(log, options=AnalyzeOptions(**options))


def test_sections_and_vectors_come_from_the_registry(flood: Path) -> None:
    report = _analyze(flood)
    for f in report["findings"]:
        assert f["section"] == FINDING_KINDS[f["kind"]].section
    vectors = {f["claim"] for f in report["findings"] if FINDING_KINDS[f["kind"]].vector}
    assert vectors and set(report["targets"]["vectors"]) == vectors
    markdown = render_markdown(report)
    clusters = markdown.split("## Attacking clusters and fingerprints", 1)[1].split("\n## ", 1)[0]
    assert all(f["id"] in clusters for f in report["findings"] if f["section"] == "clusters")
    assert not any(f"[{f['id']}]" in clusters.replace("\\", "") for f in report["findings"]
                   if f["section"] != "clusters")


def test_the_detectors_thresholds_are_one_policy(flood: Path) -> None:
    """Raising a threshold through the analysis's options silences the detector that reads it (and only it)."""
    usual = {f["kind"] for f in _analyze(flood)["findings"]}
    assert {"tool_fingerprint", "new_networks"} <= usual
    strict = DetectorPolicy(tool_min_share=1.01, new_network_share=1.01)
    assert dataclasses.replace(DetectorPolicy(), tool_min_share=1.01, new_network_share=1.01) == strict
    kinds = {f["kind"] for f in _analyze(flood, detectors=strict)["findings"]}
    assert kinds == usual - {"tool_fingerprint", "new_networks"}
