"""Stage 5: detectors. Each turns the analysed tables of an incident into findings with evidence.

Detectors register by name in :data:`DETECTORS` (the name is the function's name, so it cannot drift);
each takes a :class:`Context` and returns findings. Renderers and the verdict read only findings.
"""

# importing registers the detectors, in this order (the findings are listed in it)
# isort: off
from floodwitness.detectors import rules as _rules  # noqa: F401
from floodwitness.detectors import abuse as _abuse  # noqa: F401
from floodwitness.detectors import browsing as _browsing  # noqa: F401
from floodwitness.detectors import network as _network  # noqa: F401
# isort: on
from floodwitness.detectors.base import DETECTORS, FINDING_KINDS, Context, Evidence, Finding, detectors_for

__all__ = ["DETECTORS", "FINDING_KINDS", "Context", "Evidence", "Finding", "detectors_for"]
