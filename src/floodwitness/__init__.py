"""floodwitness: evidence-based DDoS forensics and detection from access logs.

The package is a pipeline, one folder per stage, each importing only from the stages before it::

    inputs (files, decompression, lines, hashing)
      -> formats (detect + parse into the normalized schema)
      -> ingest (stream lines through a format into a Parquet store, with accounting)
      -> analysis (series, baselines, clients)      [engine: ibis over DuckDB, or Spark]
      -> detectors (findings with evidence) -> verdict -> mitigation
      -> render (terminal / JSON)

``schema`` (the normalized request table), ``errors`` and ``safe`` (attacker-controlled text made safe to
print or write) are shared by every stage. ``report`` assembles a report from the stages; ``watch`` (the live
mode), ``simulate`` and the ``cli`` sit on top. tests/test_architecture.py holds the full order and enforces it.
"""

__version__ = "0.1.0"
