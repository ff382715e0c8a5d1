"""Writing rows as nginx access-log lines (combined format plus request and upstream times)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from floodwitness.simulate.events import (
    F64,
    I8,
    I16,
    I32,
    METHODS,
    PROTOCOLS,
    U64,
    Interner,
    escape_field,
    is_template,
    render,
)

if TYPE_CHECKING:
    from pathlib import Path

CHUNK = 200_000
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class Lines:
    """The columns of the log lines, in the order they are written."""

    t: F64  # completion time (nginx logs a request when it finishes), seconds from the log start
    ip: I32
    ua: I32
    meth: I8
    path: I32
    proto: I8
    ref: I32
    tok: U64
    status: I16
    size: npt.NDArray[np.int32]
    rt: F64
    ut: F64  # -1: no upstream


def time_table(local_start: datetime, tz: str, n_sec: int) -> list[str]:
    """``$time_local`` text for every second of the log."""
    out = []
    for s in range(n_sec + 1):
        d = local_start + timedelta(seconds=s)
        out.append(f"{d.day:02d}/{_MONTHS[d.month - 1]}/{d.year}:"
                   f"{d.hour:02d}:{d.minute:02d}:{d.second:02d} {tz}")
    return out


def _column(values: list[str]) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_]]:
    escaped = np.array([escape_field(v) if v != "-" else v for v in values] or [""], dtype=object)
    templ = np.array([is_template(v) for v in values] or [False])
    return escaped, templ


def _strings(ids: I32, tok: U64, table: npt.NDArray[np.object_], templ: npt.NDArray[np.bool_], *,
             raw: Interner, salt: int) -> list[str]:
    out = table[ids]
    is_t = templ[ids]
    if is_t.any():
        rows = np.flatnonzero(is_t)
        tid = ids[rows]
        for u in np.unique(tid).tolist():
            sel = rows[tid == u]
            out[sel] = render(raw.values[u], tok[sel] ^ np.uint64(salt)).astype(object)
    return out.tolist()  # type: ignore[no-any-return]


_MS_LIMIT = 120_000


def _ms_table() -> npt.NDArray[np.object_]:
    """``%.3f`` text of every whole number of milliseconds up to two minutes, then ``-``."""
    return np.array([f"{k // 1000}.{k % 1000:03d}" for k in range(_MS_LIMIT + 1)] + ["-"], dtype=object)


def _times_text(values: F64, table: npt.NDArray[np.object_], none: bool) -> list[str]:
    """``%.3f`` text of each value (``-`` for negative ones when ``none``)."""
    ms = np.round(values * 1000.0).astype(np.int64)
    idx = np.where(ms < 0, _MS_LIMIT + 1, np.minimum(ms, _MS_LIMIT)) if none else np.clip(ms, 0, _MS_LIMIT)
    out: list[str] = table[idx].tolist()
    for i in np.flatnonzero(ms > _MS_LIMIT).tolist():
        out[i] = f"{int(ms[i]) // 1000}.{int(ms[i]) % 1000:03d}"
    return out


def write(path: Path, lines: Lines, order: npt.NDArray[np.intp], *, ips: Interner, uas: Interner,
          paths: Interner, refs: Interner, local_start: datetime, tz: str, n_sec: int) -> int:
    """Write the rows ``order`` of ``lines`` (in that order, which must be time order) to ``path``;
    returns the number of lines written."""
    times = np.array(time_table(local_start, tz, n_sec), dtype=object)
    ip_t = np.array(ips.values or [""], dtype=object)
    ua_t, _ = _column(uas.values)
    path_t, path_templ = _column(paths.values)
    ref_t, ref_templ = _column(refs.values)
    meth_t = np.array(METHODS, dtype=object)
    proto_t = np.array(PROTOCOLS, dtype=object)
    ms_t = _ms_table()
    n = int(order.shape[0])
    with path.open("w", encoding="ascii", newline="\n") as fh:
        for a in range(0, n, CHUNK):
            rows = order[a:min(n, a + CHUNK)]
            tok = lines.tok[rows]
            ip = ip_t[lines.ip[rows]].tolist()
            tm = times[np.clip(lines.t[rows].astype(np.int64), 0, n_sec)].tolist()
            me = meth_t[lines.meth[rows]].tolist()
            pa = _strings(lines.path[rows], tok, path_t, path_templ, raw=paths, salt=0)
            pr = proto_t[lines.proto[rows]].tolist()
            st = lines.status[rows].tolist()
            sz = lines.size[rows].tolist()
            rf = _strings(lines.ref[rows], tok, ref_t, ref_templ, raw=refs, salt=0x5EED)
            ua = ua_t[lines.ua[rows]].tolist()
            rt = _times_text(lines.rt[rows], ms_t, none=False)
            up = _times_text(lines.ut[rows], ms_t, none=True)
            fh.write("".join([
                f'{i} - - [{t}] "{m} {p} {q}" {s} {z} "{r}" "{u}" {x} {y}\n'
                for i, t, m, p, q, s, z, r, u, x, y in zip(ip, tm, me, pa, pr, st, sz, rf, ua, rt, up,
                                                            strict=True)
            ]))
    return n
