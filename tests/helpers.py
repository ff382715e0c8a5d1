"""Helpers the tests share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from floodwitness.analysis.dataset import open_dataset
from floodwitness.report import AnalyzeOptions, analyze

if TYPE_CHECKING:
    from pathlib import Path


def analyse_logs(*paths: Path, options: AnalyzeOptions | None = None) -> dict[str, Any]:
    """The report of ``analyze`` on the logs at ``paths`` (files or folders), its dataset closed after."""
    data = open_dataset([str(p) for p in paths])
    try:
        return analyze(data, options or AnalyzeOptions())
    finally:
        data.close()
