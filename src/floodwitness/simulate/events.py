"""Columnar request events and the string tables they point into.

Every generator returns an :class:`Events` block: one numpy array per attribute, one row per request.
Strings (IPs, paths, referers, UAs) live once in :class:`Tables` and rows hold their index, so millions
of rows cost a few bytes each and no Python object per request exists until a chunk is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Sequence

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I16 = npt.NDArray[np.int16]
I8 = npt.NDArray[np.int8]
U64 = npt.NDArray[np.uint64]

# Who sent a request (never written to the log; used for the truth file and for reactions).
HUMAN: Final = 0
CRAWLER: Final = 1
API: Final = 2
AUTOMATION: Final = 3  # feed readers, uptime monitors
PROBE: Final = 4
ATTACK: Final = 5
SURGE: Final = 6  # flash-crowd visitors

# Who answers a request.
STATIC: Final = 0  # a file nginx serves itself (upstream time "-")
DYNAMIC: Final = 1  # proxied to the application

# Flags.
RETRY: Final = 1  # an automatic retry by an API client
RELOAD: Final = 2  # a person reloading an error page
NOUP: Final = 4  # nginx answered without the upstream
FIXED: Final = 8  # the status was decided when the request was generated

# Methods and protocols (indices into these tuples).
METHODS: Final[tuple[str, ...]] = ("GET", "POST", "HEAD")
GET: Final = 0
POST: Final = 1
PROTOCOLS: Final[tuple[str, ...]] = ("HTTP/1.1", "HTTP/2.0", "HTTP/1.0")
H11: Final = 0
H2: Final = 1
H10: Final = 2


@dataclass
class Events:
    """A block of requests, one row per request, not necessarily in time order."""

    t: F64  # arrival, seconds from the start of the log
    ip: I32
    ua: I32
    meth: I8
    path: I32
    proto: I8
    ref: I32
    tok: U64  # random token that fills the placeholders of templated paths/referers
    cls: I8
    status: I16  # status when nothing goes wrong (or the decided status when FIXED)
    size: I32  # body bytes for that status
    svc: F64  # application service time when healthy and idle
    role: I8
    flags: I8
    grp: I64  # page view a request belongs to (assets share their page's), -1 for none

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def take(self, idx: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> Events:
        """The rows at ``idx`` (an index array or a boolean mask)."""
        return Events(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(blocks: Sequence[Events]) -> Events:
        """All rows of ``blocks``, one after the other."""
        if not blocks:
            return empty()
        return Events(**{f.name: np.concatenate([getattr(b, f.name) for b in blocks])
                         for f in fields(Events)})


_DTYPES: Final[dict[str, type[np.generic]]] = {
    "t": np.float64, "ip": np.int32, "ua": np.int32, "meth": np.int8, "path": np.int32,
    "proto": np.int8, "ref": np.int32, "tok": np.uint64, "cls": np.int8, "status": np.int16,
    "size": np.int32, "svc": np.float64, "role": np.int8, "flags": np.int8, "grp": np.int64,
}

Col = npt.ArrayLike


def make(t: F64, *, ip: Col, ua: Col, path: Col, size: Col, svc: Col, role: int, ref: Col = 0,
         meth: Col = GET, proto: Col = H11, tok: Col | None = None, cls: Col = DYNAMIC,
         status: Col = 200, flags: Col = 0, grp: Col = -1, rng: np.random.Generator | None = None) -> Events:
    """Build a block of ``len(t)`` rows; every other column is a scalar or an array of that length.

    Without ``tok``, a token is drawn from ``rng`` when one is given (so templated paths get a fresh
    random string per row) and is 0 otherwise.
    """
    n = int(t.shape[0])

    def col(name: str, value: Col) -> npt.NDArray[Any]:
        arr = np.asarray(value, dtype=_DTYPES[name])
        if arr.ndim == 0:
            return np.full(n, arr, dtype=_DTYPES[name])
        if arr.shape[0] != n:
            raise ValueError(f"column {name} has {arr.shape[0]} rows, expected {n}")
        return arr

    if tok is None:
        tok = rng.integers(0, 2**63, size=n, dtype=np.uint64) if rng is not None else 0
    return Events(
        t=cast("F64", np.asarray(t, dtype=np.float64)), ip=col("ip", ip), ua=col("ua", ua),
        meth=col("meth", meth), path=col("path", path), proto=col("proto", proto), ref=col("ref", ref),
        tok=col("tok", tok), cls=col("cls", cls), status=col("status", status), size=col("size", size),
        svc=col("svc", svc), role=np.full(n, role, dtype=np.int8), flags=col("flags", flags),
        grp=col("grp", grp),
    )


def empty() -> Events:
    """A block with no rows."""
    return make(np.zeros(0), ip=0, ua=0, path=0, size=0, svc=0.0, role=HUMAN)


class Interner:
    """A list of distinct strings; each string's index is its id."""

    def __init__(self, first: Sequence[str] = ()) -> None:
        self.values: list[str] = []
        self._ids: dict[str, int] = {}
        for s in first:
            self.id(s)

    def id(self, s: str) -> int:
        """The id of ``s``, adding it when new."""
        got = self._ids.get(s)
        if got is None:
            got = len(self.values)
            self._ids[s] = got
            self.values.append(s)
        return got

    def ids(self, strings: Sequence[str]) -> I32:
        """The ids of ``strings``, in order."""
        return np.fromiter((self.id(s) for s in strings), dtype=np.int32, count=len(strings))

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class Tables:
    """The strings rows point into. Referer id 0 and UA id 0 are ``-`` (absent)."""

    ips: Interner
    uas: Interner
    paths: Interner
    refs: Interner

    @staticmethod
    def new() -> Tables:
        return Tables(ips=Interner(), uas=Interner(["-"]), paths=Interner(), refs=Interner(["-"]))


# --- templates --------------------------------------------------------------------------------
# A templated path or referer holds placeholders such as {x12} that are filled per row from the
# row's token: x = lower-case hex, l = lower-case letters, U = upper-case letters, d = digits,
# a = GoldenEye's alphabet (letters and digits without z, Z and 9).

ALPHABETS: Final[dict[str, str]] = {
    "x": "0123456789abcdef",
    "l": "abcdefghijklmnopqrstuvwxyz",
    "U": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "d": "0123456789",
    "a": "abcdefghijklmnopqrstuvwxyABCDEFGHIJKLMNOPQRSTUVWXY012345678",
}
_PLACEHOLDER: Final = re.compile(r"\{([xlUda])(\d+)\}")


def is_template(s: str) -> bool:
    return _PLACEHOLDER.search(s) is not None


@lru_cache(maxsize=1024)
def _parse(template: str) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    literals: list[str] = []
    holes: list[tuple[str, int]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        literals.append(template[pos:m.start()])
        holes.append((m.group(1), int(m.group(2))))
        pos = m.end()
    literals.append(template[pos:])
    return tuple(literals), tuple(holes)


def mix64(x: U64) -> U64:
    """SplitMix64 finaliser: a well-spread 64-bit value from ``x`` (wraps, never warns)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _random_text(tok: U64, alphabet: str, length: int) -> npt.NDArray[np.str_]:
    base = np.uint64(len(alphabet))
    table = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
    per_word = max(1, int(np.floor(63 / np.log2(len(alphabet)))))
    codes = np.empty((tok.shape[0], length), dtype=np.uint8)
    x = tok
    for j in range(length):
        if j % per_word == 0:
            x = mix64(tok + np.uint64((j * 0x632BE59BD9B4E019 + 1) & 0xFFFFFFFFFFFFFFFF))
        codes[:, j] = table[(x % base).astype(np.intp)]
        x = x // base
    return codes.view(f"S{length}").ravel().astype(f"U{length}")


def render(template: str, tok: U64, escape: bool = True) -> npt.NDArray[np.str_]:
    """``template`` with its placeholders filled from each token (one string per token)."""
    literals, holes = _parse(template)
    lit = [escape_field(s) for s in literals] if escape else list(literals)
    out: npt.NDArray[np.str_] = np.full(tok.shape[0], lit[0])
    for k, (kind, length) in enumerate(holes):
        sub = tok if k == 0 else mix64(tok ^ np.uint64(0xA5A5A5A5 * (k + 1)))
        out = np.char.add(out, _random_text(sub, ALPHABETS[kind], length))
        out = np.char.add(out, lit[k + 1])
    return out


def escape_field(s: str) -> str:
    """Escape as nginx does in access logs: ``"``, ``\\``, control and non-ASCII bytes become ``\\xHH``."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return s
    out: list[str] = []
    for ch in s:
        if ch.isascii() and ch.isprintable() and ch not in '"\\':
            out.append(ch)
        else:
            out.extend(f"\\x{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)
