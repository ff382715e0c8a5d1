"""Open what the user gave (a store, or log files ingested into a temporary store) as one table."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from floodwitness.engine import Engine
from floodwitness.errors import StoreError, UsageError
from floodwitness.ingest import IngestOptions, Manifest, ingest, open_store
from floodwitness.ingest.checks import require_parsed
from floodwitness.ingest.store import REQUESTS, flow_paths, is_store

if TYPE_CHECKING:
    from floodwitness.ingest.pipeline import Progress


@dataclasses.dataclass
class Dataset:
    """Parsed requests of one analysis, with where they came from."""

    engine: Engine
    manifest: Manifest
    store: Path
    temporary: bool
    _parts: list[str] = dataclasses.field(default_factory=list)

    @functools.cached_property
    def requests(self) -> Any:
        """ibis table of parsed requests (rejected lines excluded): one engine view over the parts, made once
        (each view costs the engine a look at every part's footer)."""
        table = self.engine.parquet(self._parts)
        return table.filter(table.reject_reason.isnull())

    @property
    def flow_parts(self) -> list[str]:
        """The store's flow table parts (#21: flows from packet captures, nfdump files, NetFlow/IPFIX), [] when the
        analysis was given no flows."""
        return flow_paths(self.store, self.manifest)

    @property
    def parquet_glob(self) -> str:
        """What a reproducing query reads (DuckDB syntax)."""
        return str(self.store / REQUESTS / "*.parquet")

    def has_values(self, column: str) -> bool:
        """Whether any row has ``column`` set (e.g. the format logs request times), from the Parquet footers'
        null counts: no data is read. A part without statistics counts as having values."""
        for part in self._parts:
            try:
                meta = pq.ParquetFile(part).metadata
            except OSError:  # not a local file (a cluster's store): assume it has values
                return True
            index = meta.schema.to_arrow_schema().get_field_index(column)
            for group in range(meta.num_row_groups):
                chunk = meta.row_group(group)
                stats = chunk.column(index).statistics
                if stats is None or not stats.has_null_count or stats.null_count < chunk.num_rows:
                    return True
        return False

    def path_of(self, file_id: int) -> str:
        return self.manifest.inputs[file_id].path

    def close(self) -> None:
        self.engine.close()
        if self.temporary:  # the store and the temporary folder made for it
            shutil.rmtree(self.store.parent, ignore_errors=True)


def open_dataset(specs: list[str], *, engine: Engine | None = None, options: IngestOptions | None = None,
                 keep_store: str | None = None, progress: Progress | None = None) -> Dataset:
    """A store (one folder with a manifest) is opened as it is; anything else is ingested first, into
    ``keep_store`` when given (so the evidence queries can be rerun), else into a temporary folder."""
    stores = [spec for spec in specs if is_store(spec)]
    if stores and len(specs) > 1:  # before any work (and before an engine is opened)
        both = "both stores" if len(stores) == len(specs) == 2 else None
        what = (f"{stores[0]} and {stores[1]} are {both}" if both else
                f"{', '.join(stores)} {'is a store' if len(stores) == 1 else 'are stores'} among {len(specs)} inputs")
        raise UsageError(f"analyze reads one store, or log files; not a mix: {what}",
                         hint="Analyse a store alone (`floodwitness analyze STORE`), or give only log files; to "
                              "analyse logs together, ingest them into one store (`floodwitness ingest LOGS --out "
                              "DIR`).")
    if stores and options is not None and options.flows:  # a store's flows are ingested with it, never beside it
        raise UsageError(f"{stores[0]} is a store: --flows cannot be added to it",
                         hint="Ingest the logs and flows together into a new store (`floodwitness ingest LOGS "
                              "--flows FILE_OR_DIR --out DIR`), or give the log files instead of the store.")
    engine = engine or Engine()
    if len(specs) == 1 and is_store(specs[0]):
        store = open_store(specs[0])
        if not store.parts and not store.flow_parts:
            raise StoreError("the store holds no parsed data", path=specs[0],
                             hint="Ingest log files into it first with `floodwitness ingest`.")
        require_parsed(store.manifest, stored=True)
        return Dataset(engine, store.manifest, store.root, temporary=False, _parts=store.parts)
    if keep_store is not None:
        root, temporary = Path(keep_store), False
    else:  # deleted after the analysis: written fast rather than small
        root, temporary = Path(tempfile.mkdtemp(prefix="floodwitness-")) / "store", True
        options = dataclasses.replace(options or IngestOptions(), throwaway=True)
    try:
        manifest = ingest(specs, root, options=options, engine=engine, progress=progress)
    except BaseException:
        if temporary:
            shutil.rmtree(root.parent, ignore_errors=True)
        raise
    parts = [str(root / REQUESTS / p) for i in manifest.inputs for p in i.parts]
    try:
        require_parsed(manifest)  # nothing parsed: say what was rejected and why, not a verdict on nothing
    except BaseException:
        if temporary:
            shutil.rmtree(root.parent, ignore_errors=True)
        raise
    return Dataset(engine, manifest, root, temporary=temporary, _parts=parts)
