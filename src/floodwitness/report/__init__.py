"""Assembling the report: runs the stages in order and produces the JSON contract (schema
``floodwitness.report/1``, :mod:`floodwitness.report.contract`) that every renderer, script and dashboard reads.

``analyze`` and ``AnalyzeOptions`` load the analysis stack on first use, so reading a saved report (the contract
alone) does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floodwitness.report.results import AnalyzeOptions
    from floodwitness.report.run import analyze

__all__ = ["AnalyzeOptions", "analyze"]


def __getattr__(name: str) -> Any:
    if name == "AnalyzeOptions":
        from floodwitness.report.results import AnalyzeOptions  # noqa: PLC0415 - loaded when asked for

        return AnalyzeOptions
    if name == "analyze":
        from floodwitness.report.run import analyze  # noqa: PLC0415 - the analysis stack, loaded when asked for

        return analyze
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
