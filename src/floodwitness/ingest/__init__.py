"""Stage 3: ingest. Stream each input's lines through its format into a zstd Parquet store, with
per-file accounting (SHA-256, bytes, lines read = parsed + rejected, reasons, samples)."""

from floodwitness.ingest.common import IngestOptions
from floodwitness.ingest.pipeline import ingest
from floodwitness.ingest.store import Manifest, Store, open_store

__all__ = ["IngestOptions", "Manifest", "Store", "ingest", "open_store"]
