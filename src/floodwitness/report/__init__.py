"""Assembling the report: runs the stages in order and produces the JSON contract (schema
``floodwitness.report/1``) that every renderer, script and dashboard reads."""

from floodwitness.report.build import AnalyzeOptions, analyze

__all__ = ["AnalyzeOptions", "analyze"]
