"""The charting library for the HTML report, offline: Vega, Vega-Lite and vega-embed as one JavaScript bundle.

The bundle comes from the ``vl-convert-python`` wheel (the Vega project's own converter, which carries the
libraries' sources and bundles them without any network access). Bundling takes a few seconds, so the result
is cached per library version in ``$FLOODWITNESS_CACHE_DIR`` (default: ``$XDG_CACHE_HOME/floodwitness`` or
``~/.cache/floodwitness``); a cache that cannot be written only costs the time again.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from floodwitness.errors import FloodwitnessError
from floodwitness.render.files import write_atomic

#: What the bundle exports: the three libraries as globals, for the report's own small script.
_GLOBALS = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"


@dataclass(frozen=True)
class VegaBundle:
    javascript: str
    vega: str       #: Vega version, e.g. "6.2.0"
    vega_lite: str  #: Vega-Lite version the bundle compiles, e.g. "6.4"
    embed: str      #: vega-embed version

    @property
    def schema(self) -> str:
        """The ``$schema`` of specs for this bundle (vega-embed reads the major version; nothing is fetched)."""
        return f"https://vega.github.io/schema/vega-lite/v{self.vega_lite.split('.')[0]}.json"


def cache_dir() -> Path:
    explicit = os.environ.get("FLOODWITNESS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "floodwitness"


@functools.cache
def vega_bundle() -> VegaBundle:
    """The Vega + Vega-Lite + vega-embed bundle (cached on disk and in memory)."""
    try:
        import vl_convert  # noqa: PLC0415 - a large native module, only the HTML report needs it
    except ImportError:  # pragma: no cover - a declared dependency
        raise FloodwitnessError("the HTML report needs the vl-convert-python package",
                                hint="Reinstall floodwitness: pip install floodwitness") from None
    vl_version = vl_convert.get_vegalite_versions()[-1]
    vega, embed = vl_convert.get_vega_version(), vl_convert.get_vega_embed_version()
    package = metadata.version("vl-convert-python")
    name = re.sub(r"[^0-9A-Za-z.]+", "_", f"vega-bundle-{package}-{vega}-{vl_version}-{embed}") + ".js"
    path = cache_dir() / name
    try:
        return VegaBundle(path.read_text(encoding="utf-8"), vega, vl_version, embed)
    except OSError:
        pass
    javascript = vl_convert.javascript_bundle(_GLOBALS, vl_version=vl_version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, javascript, what="the chart library cache")
    except (OSError, FloodwitnessError):
        pass  # no cache: the next report bundles again
    return VegaBundle(javascript, vega, vl_version, embed)
