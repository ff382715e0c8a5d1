"""The user's own formats: an nginx ``log_format`` or an Apache ``LogFormat``, compiled to a template.

``nginx:<log_format string>`` is used as it is (the whole directive, ``log_format name '...' '...';``, may be
pasted); ``apache:<LogFormat string>`` is translated directive by directive to the same ``$variable``
template, so both go through the one template parser (fast path and regex path). ``@FILE`` names a TOML
file holding several: ``[formats.NAME]`` tables with an ``nginx = '...'`` or ``apache = '...'`` key.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from floodwitness.errors import FormatError
from floodwitness.formats.template import TemplateFormat

if TYPE_CHECKING:
    from collections.abc import Sequence

_APACHE = re.compile(r"%([<>]?)(!?[0-9]{3}(?:,[0-9]{3})*)?(?:\{([^}]*)\})?([<>]?)([a-zA-Z%])")

#: Apache directive letter -> nginx variable (a plain letter, no {param}).
_APACHE_LETTERS = {
    "h": "$remote_addr", "a": "$remote_addr", "l": "$remote_ident", "u": "$remote_user", "t": "[$time_local]",
    "r": "$request", "s": "$status", "b": "$body_bytes_sent", "B": "$body_bytes_sent", "O": "$bytes_sent",
    "I": "$request_length", "S": "$apache_bytes_transferred", "D": "$request_time_usec",
    "T": "$request_time_sec", "v": "$server_name", "V": "$host", "p": "$server_port", "X": "$connection_status",
    "k": "$connection_requests", "P": "$pid", "L": "$request_log_id", "m": "$request_method", "U": "$uri",
    "q": "$query_string", "H": "$server_protocol", "f": "$request_filename", "A": "$server_addr",
    "R": "$apache_handler",
}
_HEADERS = {"referer": "$http_referer", "user-agent": "$http_user_agent", "x-forwarded-for": "$http_x_forwarded_for",
            "host": "$http_host"}
_TIME_UNITS = {"": "$request_time_sec", "s": "$request_time_sec", "ms": "$request_time_msec",
               "us": "$request_time_usec"}


def apache_to_nginx(log_format: str) -> str:
    """Translate an Apache ``LogFormat`` string to an nginx ``$variable`` template.

    Raises FormatError naming a directive that has no translation (a strftime ``%{...}t``).
    """
    text = log_format.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    text = text.replace('\\"', '"').replace("\\t", "\t")
    out: list[str] = []
    pos = 0
    for m in _APACHE.finditer(text):
        out.append(text[pos:m.start()])
        pos = m.end()
        param, letter = m.group(3), m.group(5)
        out.append(_directive(m.group(0), letter, param))
    out.append(text[pos:])
    return "".join(out)


def _directive(whole: str, letter: str, param: str | None) -> str:
    if letter == "%":
        return "%"
    if param is None:
        if letter not in _APACHE_LETTERS:
            raise FormatError(f"the Apache directive {whole} is not supported",
                              hint="Replace it, or describe the log with an nginx log_format instead.")
        return _APACHE_LETTERS[letter]
    if letter == "i":
        name = param.lower()
        return _HEADERS.get(name, "$http_" + re.sub(r"[^a-z0-9]", "_", name))
    if letter == "T" and param in _TIME_UNITS:
        return _TIME_UNITS[param]
    if letter == "t" and param in ("sec", "%s"):
        return "$msec"
    if letter == "a":
        return "$remote_addr"
    if letter in "eoCnx":
        return "$apache_" + letter + "_" + re.sub(r"[^a-z0-9]", "_", param.lower())
    if letter == "p":
        return "$server_port"
    raise FormatError(f"the Apache directive {whole} is not supported",
                      hint="Times other than [%t], %{sec}t and %{s|ms|us}T cannot be read; use %t for the request "
                           "time.")


def _nginx_template(text: str) -> str:
    """The template of an nginx format, which may be a whole ``log_format name [escape=..] '...' '...';``."""
    body = text.strip()
    if not body.startswith("log_format"):
        return body
    pieces = re.findall(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", body)
    if not pieces:
        raise FormatError("the log_format directive has no quoted format string",
                          hint="Give the format string itself, e.g. nginx:'$remote_addr - ...'.")
    return "".join(a or b for a, b in pieces)


def compile_format(spec: str, name: str | None = None) -> TemplateFormat:
    """``nginx:<log_format>`` or ``apache:<LogFormat>`` as a format named ``name`` (default: from its hash)."""
    kind, sep, body = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in ("nginx", "apache") or not body.strip():
        raise FormatError(f"--log-format {spec[:60]!r}: say which server's syntax it is",
                          hint="Write nginx:'<log_format string>' or apache:'<LogFormat string>', or @FILE for a "
                               "TOML file of several.")
    template = _nginx_template(body) if kind == "nginx" else apache_to_nginx(body)
    digest = hashlib.sha256(spec.encode("utf-8")).hexdigest()[:8]
    return TemplateFormat(name or f"custom_{kind}_{digest}", template,
                          f"Your own {kind} format: {body.strip()[:200]}", example="")


def compile_formats(specs: Sequence[str]) -> tuple[TemplateFormat, ...]:
    """Every spec, where ``@FILE`` expands to the formats of a TOML file."""
    out: list[TemplateFormat] = []
    for spec in specs:
        if spec.startswith("@"):
            out.extend(_from_file(Path(spec[1:])))
        else:
            out.append(compile_format(spec))
    names = [fmt.name for fmt in out]
    if len(set(names)) != len(names):
        raise FormatError("two of your formats have the same name", hint="Give each [formats.NAME] its own name.")
    return tuple(out)


def _from_file(path: Path) -> list[TemplateFormat]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FormatError(f"cannot read the formats file: {exc.strerror}", path=str(path),
                          hint="Check the path given after @.") from None
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"the formats file is not valid TOML: {exc}", path=str(path),
                          hint="Write one [formats.NAME] table per format with nginx = '...' or apache = '...'.") \
            from None
    tables = data.get("formats")
    if not isinstance(tables, dict) or not tables:
        raise FormatError("the formats file has no [formats.NAME] table", path=str(path),
                          hint="Write one [formats.NAME] table per format with nginx = '...' or apache = '...'.")
    out = []
    for name, table in tables.items():
        kinds = [k for k in ("nginx", "apache") if isinstance(table, dict) and isinstance(table.get(k), str)]
        if len(kinds) != 1:
            raise FormatError(f"format {name!r} needs exactly one of nginx = '...' or apache = '...'", path=str(path),
                              hint="Write one [formats.NAME] table per format.")
        out.append(compile_format(f"{kinds[0]}:{table[kinds[0]]}", name=name))
    return out
