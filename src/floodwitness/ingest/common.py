"""What the DuckDB ingest (:mod:`~floodwitness.ingest.pipeline`) and the Spark one
(:mod:`~floodwitness.ingest.spark`) share: the options, the SQL compiler that makes every time parse a
try-parse, and the accounting read back from the written store (``read = parsed + rejected``, checked); with the
flow readers, the read-ahead of line groups."""

from __future__ import annotations

import importlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import sqlglot

from floodwitness.errors import FloodwitnessError
from floodwitness.ingest.store import RejectSample
from floodwitness.inputs.lines import DEFAULT_BATCH_BYTES, DEFAULT_MAX_LINE_BYTES

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

    from floodwitness.engine import Engine

SAMPLES_PER_REASON = 5


@dataclass(frozen=True)
class IngestOptions:
    format: str = "auto"
    #: The user's own formats: ``nginx:<log_format>`` or ``apache:<LogFormat>`` (see formats.custom).
    log_formats: tuple[str, ...] = ()
    #: Networks whose X-Forwarded-For is believed (see formats.clientip); empty: client_ip is the peer.
    trust_proxy: tuple[str, ...] = ()
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    batch_bytes: int = DEFAULT_BATCH_BYTES
    #: Text handed to the engine at once (several batches, so it parses them on every core).
    group_bytes: int = 64 << 20
    #: The store is deleted after one analysis (``analyze`` on log files): its parts are written uncompressed
    #: and without statistics of their text columns, in a quarter less CPU than zstd with every statistic, at
    #: twice the size (still a tenth of the log's).
    throwaway: bool = False
    #: Flow inputs (#21): packet captures, nfcapd files or folders, nfdump CSV/JSON exports, NetFlow/IPFIX export
    #: captures (files, folders, globs); read by :func:`floodwitness.ingest.flows.run.ingest_flows`.
    flows: tuple[str, ...] = ()
    #: The flow exports are 1:N sampled and their counts not yet scaled (rates an input announces are always used).
    flow_sampling: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "max_line_bytes": self.max_line_bytes}
        if self.flows:
            out["flows"] = list(self.flows)
        if self.flow_sampling:
            out["flow_sampling"] = self.flow_sampling
        if self.log_formats:
            out["log_formats"] = list(self.log_formats)
        if self.trust_proxy:
            out["trust_proxy"] = list(self.trust_proxy)
        return out


class InternalError(FloodwitnessError):
    """A broken invariant inside floodwitness (a bug): never expected, always reported."""


def compile_sql(expr: Any, dialect: str | Any) -> str:
    """SQL for ``expr`` where every string-to-time parse is a *try*-parse (a malformed time gives null).

    ``dialect``: an ibis SQL dialect name, or an ibis compiler (the Spark engine brings its own).
    ibis compiles ``as_timestamp`` to the engine's strict parser (DuckDB ``STRPTIME``), which fails the
    whole query on one bad line; the same node marked ``safe`` is ``TRY_STRPTIME`` on DuckDB and
    ``TRY_TO_TIMESTAMP`` on Spark.
    """
    compiler = (importlib.import_module(f"ibis.backends.sql.compilers.{dialect}").compiler
                if isinstance(dialect, str) else dialect)
    tree = compiler.to_sqlglot(expr.unbind())

    def safe(node: sqlglot.exp.Expression) -> sqlglot.exp.Expression:
        if isinstance(node, sqlglot.exp.StrToTime):
            node.set("safe", True)
        return node

    return str(tree.transform(safe).sql(dialect=compiler.dialect, pretty=True))


@dataclass
class StoredCounts:
    """What the store holds for one input, read back from the written Parquet (not from the parser)."""

    parsed: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    first_ts: str | None = None
    last_ts: str | None = None
    samples: list[RejectSample] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(self.by_reason.values())


def stored_counts(engine: Engine, paths: list[str]) -> dict[int, StoredCounts]:
    """Per ``file_id`` in the Parquet ``paths``: parsed lines, rejections by reason, time range, and the
    first rejected lines of each reason. Portable (ibis), so both engines account the same way."""
    out: dict[int, StoredCounts] = {}
    if not paths:
        return out
    t = engine.parquet(paths)
    counts = t.group_by(["file_id", "reject_reason"]).aggregate(n=t.count(), lo=t.ts.min(), hi=t.ts.max())
    for row in engine.ibis.to_pyarrow(counts).to_pylist():
        record = out.setdefault(row["file_id"], StoredCounts())
        if row["reject_reason"] is None:
            record.parsed = row["n"]
            record.first_ts = row["lo"].isoformat() if row["lo"] else None
            record.last_ts = row["hi"].isoformat() if row["hi"] else None
        else:
            record.by_reason[row["reject_reason"]] = row["n"]
    rejected = t.filter(t.reject_reason.notnull())
    rejected = rejected.mutate(rank=ibis.row_number().over(group_by=["file_id", "reject_reason"], order_by="line"))
    first = rejected.filter(rejected.rank < SAMPLES_PER_REASON).select("file_id", "line", "reject_reason", "raw")
    for row in engine.ibis.to_pyarrow(first.order_by(["file_id", "line"])).to_pylist():
        out[row["file_id"]].samples.append(RejectSample(row["line"], row["reject_reason"], row["raw"] or ""))
    return out


def check_accounting(path: str, lines_read: int, counts: StoredCounts) -> None:
    """``read = parsed + rejected``, or an internal error: a line was lost or made up on the way."""
    if counts.parsed + counts.rejected != lines_read:
        raise InternalError(
            f"accounting mismatch: read {lines_read} lines but stored {counts.parsed} parsed + {counts.rejected} "
            "rejected", path=path, hint="This is a bug in floodwitness; please report it with the file.")


def prefetched(groups: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Read the next group on a worker thread while the engine parses the current one (the engine and
    numpy release the GIL, so reading and parsing overlap on two cores); one group in flight at most."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fw-read") as pool:
        ahead: Future[pa.Table | None] = pool.submit(next, groups, None)
        while True:
            group = ahead.result()
            if group is None:
                return
            ahead = pool.submit(next, groups, None)
            yield group
