"""Hostile behaviours that are not floods (scanning, brute force, scraping) as data: the rule file's format,
its validation, and each signature's request predicate.

The bundled rules are ``floodwitness/data/behaviours.json``: ``{"behaviours": {NAME: BEHAVIOUR}, "signatures":
[SIGNATURE, ...]}`` (top-level keys starting with ``_`` are comments). A BEHAVIOUR has a ``description``, the
``finding`` kind it is reported as (a ``FINDING_KINDS`` entry of :mod:`floodwitness.detectors.base`),
``min_source_requests`` (a source with fewer requests in the window is not judged) and ``names_incident`` (the
share of an incident's excess, or of its requests without history, that the behaving sources must make for the
behaviour to name the incident). The order of the behaviours is their precedence: a source that shows two is
counted under the first.

A SIGNATURE has a ``name``, the ``behaviour`` it shows, a ``description``, a ``source`` (the public rule set its
facts come from: required), request conditions and a per-source threshold over the window. The conditions are
the fingerprint rules' (:data:`~floodwitness.detectors.fingerprints.CONDITIONS`: ``user_agent_regex``,
``path_regex``, ``query_regex``, ``query_absent``, ``methods``, ``status``...) plus ``status_at_least``,
``status_below``, ``status_in`` (a list) and ``non_asset`` (``true``: not an image, script or style sheet). The
threshold: ``min_requests`` (matching requests), ``min_distinct_paths`` (distinct paths among them),
``min_source_share`` (the share of the source's own requests that match) and ``min_distinct_share`` (distinct
paths per matching request: each page fetched about once). ``supporting: true`` marks a signature that is
reported but never shows its behaviour alone (many 404s are also what a random-URI flood draws).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import ibis

from floodwitness.analysis.composition import is_asset
from floodwitness.detectors.fingerprints import CONDITIONS, Rule, parse_rules
from floodwitness.errors import UsageError

#: the conditions a signature adds to the fingerprint rules' ones, with their types
EXTRA_CONDITIONS: dict[str, type] = {"status_at_least": int, "status_below": int, "status_in": list,
                                     "non_asset": bool}
THRESHOLDS: dict[str, type | tuple[type, ...]] = {"min_requests": int, "min_distinct_paths": int,
                                                  "min_source_share": (int, float),
                                                  "min_distinct_share": (int, float)}
OTHER_KEYS = {"name", "behaviour", "description", "source", "supporting"}
BEHAVIOUR_KEYS = {"description", "finding", "min_source_requests", "names_incident"}
BUNDLED = "floodwitness/data/behaviours.json"


@dataclass(frozen=True)
class Signature:
    name: str
    behaviour: str
    description: str
    source: str
    rule: Rule  # the fingerprint conditions (its predicate)
    extra: dict[str, Any]  # the conditions of :data:`EXTRA_CONDITIONS` it names
    min_requests: int = 1
    min_distinct_paths: int = 0
    min_source_share: float = 0.0
    min_distinct_share: float = 0.0
    supporting: bool = False

    @property
    def spec(self) -> dict[str, Any]:
        """Its conditions, as written in the rule file (cited with the query that reproduces a finding)."""
        return self.rule.spec | self.extra

    def predicate(self, t: Any) -> Any:
        """True for the requests of ``t`` that match every condition."""
        cond = self.rule.predicate(t) if self.rule.per_request else ibis.literal(True)
        x = self.extra
        if "status_at_least" in x:
            cond = cond & (t.status >= x["status_at_least"])
        if "status_below" in x:
            cond = cond & (t.status < x["status_below"])
        if "status_in" in x:
            cond = cond & t.status.isin(x["status_in"])
        if x.get("non_asset"):
            cond = cond & ~is_asset(t)
        return cond.fill_null(False)


@dataclass(frozen=True)
class Behaviour:
    name: str
    description: str
    finding: str  # its finding kind
    min_source_requests: int
    names_incident: float


@dataclass(frozen=True)
class BehaviourRules:
    behaviours: tuple[Behaviour, ...]  # in precedence order
    signatures: tuple[Signature, ...]
    origin: str

    def of(self, behaviour: str) -> tuple[Signature, ...]:
        return tuple(s for s in self.signatures if s.behaviour == behaviour)


def _fail(origin: str, what: str) -> UsageError:
    return UsageError(f"behaviour rules {origin}: {what}",
                      hint="See the format in floodwitness/detectors/abuse_rules.py (and data/behaviours.json).")


def _behaviour(origin: str, name: str, spec: Any) -> Behaviour:
    if not isinstance(spec, dict) or set(spec) != BEHAVIOUR_KEYS:
        raise _fail(origin, f"behaviour {name!r} needs exactly {', '.join(sorted(BEHAVIOUR_KEYS))}")
    if not isinstance(spec["finding"], str):  # (a finding kind of detectors/base.py: a Finding checks its kind)
        raise _fail(origin, f"behaviour {name!r}: finding must be the name of a finding kind")
    share = spec["names_incident"]
    if not isinstance(share, int | float) or not 0 < share <= 1:
        raise _fail(origin, f"behaviour {name!r}: names_incident must be a share in (0, 1]")
    if not isinstance(spec["min_source_requests"], int) or spec["min_source_requests"] < 1:
        raise _fail(origin, f"behaviour {name!r}: min_source_requests must be an integer >= 1")
    return Behaviour(name, str(spec["description"]), spec["finding"], spec["min_source_requests"], float(share))


def _signature(origin: str, i: int, s: Any, behaviours: set[str]) -> Signature:
    if not isinstance(s, dict):
        raise _fail(origin, f"signature #{i + 1} is not an object")
    name = s.get("name")
    unknown = sorted(set(s) - OTHER_KEYS - set(CONDITIONS) - set(EXTRA_CONDITIONS) - set(THRESHOLDS))
    if unknown:
        raise _fail(origin, f"signature {name!r}: unknown key(s) {', '.join(unknown)}")
    if s.get("behaviour") not in behaviours:
        raise _fail(origin, f"signature {name!r}: behaviour must be one of {', '.join(sorted(behaviours))}")
    if not isinstance(s.get("source"), str) or not s["source"].strip():
        raise _fail(origin, f"signature {name!r}: a source (the public rule set its facts come from) is required")
    for key, kind in (EXTRA_CONDITIONS | THRESHOLDS).items():
        if key in s and (not isinstance(s[key], kind) or isinstance(s[key], bool) is not (kind is bool)):
            raise _fail(origin, f"signature {name!r}: {key} must be a {getattr(kind, '__name__', 'number')}")
    if "status_in" in s and not all(isinstance(x, int) for x in s["status_in"]):
        raise _fail(origin, f"signature {name!r}: status_in must be a list of integers")
    if not any(k in s for k in THRESHOLDS):
        raise _fail(origin, f"signature {name!r}: give a threshold ({', '.join(THRESHOLDS)})")
    # the fingerprint conditions are validated (names, types, regular expressions) by the fingerprint parser
    fields = {k: v for k, v in s.items() if k in CONDITIONS or k in ("name", "description")}
    if not any(k in CONDITIONS for k in fields):
        fields["per_source"] = {}  # no request condition of that kind: a rule over every request
    (rule,) = parse_rules(json.dumps({"rules": [fields]}), origin)
    return Signature(rule.name, s["behaviour"], rule.description, s["source"], rule,
                     {k: s[k] for k in EXTRA_CONDITIONS if k in s}, int(s.get("min_requests", 1)),
                     int(s.get("min_distinct_paths", 0)), float(s.get("min_source_share", 0.0)),
                     float(s.get("min_distinct_share", 0.0)), bool(s.get("supporting", False)))


def parse_behaviours(text: str, origin: str) -> BehaviourRules:
    """The behaviour rules of one file's text, validated (every error names the file and the rule)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _fail(origin, f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("behaviours"), dict) \
            or not isinstance(data.get("signatures"), list):
        raise _fail(origin, 'expected an object with a "behaviours" object and a "signatures" list')
    behaviours = tuple(_behaviour(origin, name, spec) for name, spec in data["behaviours"].items())
    names = {b.name for b in behaviours}
    signatures = tuple(_signature(origin, i, s, names) for i, s in enumerate(data["signatures"]))
    seen = [s.name for s in signatures]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise _fail(origin, f"signature name(s) used twice: {', '.join(dupes)}")
    for b in behaviours:
        if not any(not s.supporting for s in signatures if s.behaviour == b.name):
            raise _fail(origin, f"behaviour {b.name!r} has no signature that can show it")
    return BehaviourRules(behaviours, signatures, origin)


@cache
def bundled_behaviours() -> BehaviourRules:
    text = resources.files("floodwitness").joinpath("data/behaviours.json").read_text("utf-8")
    return parse_behaviours(text, BUNDLED)

