"""Combine a device's evidence into a classification: OS family and version, device type, vendor.

Strategy: evidence votes by weight, not by arrival. Within one dimension, each source counts
once per candidate (its strongest item, a little more when repeated); sources of one protocol
(a DHCP request's option list, vendor class and hostname) count as the strongest plus a share
of the rest, and protocols add up, so agreement between independent protocols is what builds
confidence. A generic OS family
(Linux, Darwin) supports its specific children (Android, ChromeOS; macOS, iOS) instead of
opposing them. Confidence grows with the winning score (`score / (score + CONFIDENCE_HALF)`,
so one DHCP packet alone stays below 0.7) and shrinks with the runner-up's share. A previous
decision is kept until a challenger beats it by `switch_ratio` and `switch_margin`
(hysteresis), and strong evidence that disagrees is reported as a contradiction, not averaged
away. Pure: evidence and the previous result in, a `Classification` out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from signatures.evidence import Evidence

# Generic OS families and the specific ones that run on them.
OS_PARENT = {
    "Android": "Linux",
    "ChromeOS": "Linux",
    "webOS": "Linux",
    "Tizen": "Linux",
    "macOS": "Darwin",
    "iOS": "Darwin",
    "tvOS": "Darwin",
}
# Device types an OS implies when nothing names the device type directly.
OS_IMPLIED_TYPE = {"ChromeOS": "chromebook", "tvOS": "tv/streamer", "webOS": "tv/streamer", "Tizen": "tv/streamer"}
_EMBEDDED = frozenset(("camera", "printer", "iot", "network equipment", "voip phone"))
_DESKTOP_OS = frozenset(("Windows", "macOS", "ChromeOS"))
# (device type set, OS families that cannot run on them)
_INCOMPATIBLE = (
    (_EMBEDDED, frozenset(("Windows", "macOS", "iOS", "ChromeOS", "Darwin"))),
    (frozenset(("phone", "tablet")), _DESKTOP_OS),
    (frozenset(("chromebook",)), frozenset(("Windows", "macOS", "iOS", "Darwin", "Android"))),
    (frozenset(("laptop", "desktop")), frozenset(("iOS",))),
    (frozenset(("tv/streamer",)), frozenset(("Windows",))),
)


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    confidence_half: float = 0.5  # winning score at which confidence is one half (before the margin)
    repeat_bonus: float = 0.1  # extra weight per repeat of the same observation...
    repeat_cap: int = 5  # ...for at most this many repeats
    switch_ratio: float = 1.25  # a challenger must exceed the incumbent's score by this factor...
    switch_margin: float = 0.2  # ...plus this much, to replace it (hysteresis)
    strong: float = 0.5  # scores at or above this are "strong": disagreement between them is shown
    cross_strong: float = 0.3  # device type vs OS incompatibility is shown from this score on
    contradiction_penalty: float = 0.85  # overall confidence factor per contradiction (two at most)
    same_protocol_share: float = 0.25  # how much a second source of the same protocol adds (one packet
    # carries several: a DHCP request's option 55, vendor class and hostname are not independent)


@dataclass(frozen=True, slots=True)
class Decision:
    value: str | None = None
    confidence: float = 0.0
    score: float = 0.0
    sources: tuple[str, ...] = ()
    runner_up: str | None = None
    runner_up_score: float = 0.0


@dataclass(frozen=True, slots=True)
class Contradiction:
    a: str  # "dimension=value"
    a_sources: tuple[str, ...]
    a_score: float
    b: str
    b_sources: tuple[str, ...]
    b_score: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "between": [self.a, self.b],
            "sources": [list(self.a_sources), list(self.b_sources)],
            "scores": [round(self.a_score, 3), round(self.b_score, 3)],
        }


@dataclass(frozen=True, slots=True)
class Classification:
    os_family: Decision = field(default_factory=Decision)
    os_version: str | None = None
    device_type: Decision = field(default_factory=Decision)
    vendor: Decision = field(default_factory=Decision)
    confidence: float = 0.0
    contradictions: tuple[Contradiction, ...] = ()


_Scores = dict[str, dict[str, float]]  # candidate -> source -> best effective weight


def _effective(ev: Evidence, count: int, cfg: ClassifierConfig) -> float:
    return ev.weight * (1.0 + cfg.repeat_bonus * min(max(count - 1, 0), cfg.repeat_cap))


def _vote(scores: _Scores, value: str | None, source: str, w: float) -> None:
    if not value:
        return
    per = scores.setdefault(value, {})
    if w > per.get(source, 0.0):
        per[source] = w


@functools.lru_cache(maxsize=256)
def _protocol(source: str) -> str:
    return source.split("_", 1)[0]


def _total(per: dict[str, float], same_protocol_share: float) -> float:
    """Sum over protocols of (strongest source + a share of the others from the same protocol)."""
    groups: dict[str, list[float]] = {}
    for source, w in per.items():
        groups.setdefault(_protocol(source), []).append(w)
    total = 0.0
    for ws in groups.values():
        top = max(ws)
        total += top + same_protocol_share * (sum(ws) - top)
    return total


@functools.lru_cache(maxsize=4096)
def _vendor_key(name: str) -> str:
    word = name.split(",")[0].split()[0] if name.split() else name
    return "".join(c for c in word.lower() if c.isalnum())


def _compatible_os(a: str, b: str) -> bool:
    return a == b or OS_PARENT.get(a) == b or OS_PARENT.get(b) == a


def _decide(
    scores: dict[str, float],
    sources: dict[str, tuple[str, ...]],
    previous: str | None,
    compatible: Callable[[str, str], bool],
    cfg: ClassifierConfig,
) -> Decision:
    if not scores:
        return Decision()
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    best, best_score = ranked[0]
    if previous and previous != best and previous in scores:
        prev_score = scores[previous]
        if best_score <= prev_score * cfg.switch_ratio + cfg.switch_margin:
            best, best_score = previous, prev_score
    rivals = [(v, s) for v, s in ranked if v != best and not compatible(v, best)]
    runner, runner_score = rivals[0] if rivals else (None, 0.0)
    strength = best_score / (best_score + cfg.confidence_half)
    margin = max(0.0, best_score - runner_score) / best_score if best_score > 0 else 0.0
    return Decision(best, round(strength * margin, 3), best_score, sources.get(best, ()), runner, runner_score)


def classify(
    evidence: Iterable[tuple[Evidence, int]],
    previous: Classification | None = None,
    config: ClassifierConfig | None = None,
) -> Classification:
    """Classify from (evidence, times seen) pairs; `previous` gives the hysteresis incumbent."""
    cfg = config or ClassifierConfig()
    os_s: _Scores = {}
    type_s: _Scores = {}
    vendor_s: _Scores = {}
    vendor_names: dict[str, str] = {}
    versions: dict[str, list[tuple[float, str]]] = {}
    for ev, count in evidence:
        w = _effective(ev, count, cfg)
        s = ev.suggests
        _vote(os_s, s.os_family, ev.source, w)
        _vote(type_s, s.device_type, ev.source, w)
        if s.vendor:
            key = _vendor_key(s.vendor)
            _vote(vendor_s, key, ev.source, w)
            if ev.source == "oui" or key not in vendor_names:
                vendor_names[key] = s.vendor
        if s.os_family and s.os_version:
            versions.setdefault(s.os_family, []).append((w, s.os_version))

    # OS: a child family also collects its parent's votes.
    os_scores = {fam: _total(per, cfg.same_protocol_share) for fam, per in os_s.items()}
    os_sources = {fam: tuple(sorted(per)) for fam, per in os_s.items()}
    for fam in list(os_scores):
        parent = OS_PARENT.get(fam)
        if parent in os_s:
            os_scores[fam] += _total(os_s[parent], cfg.same_protocol_share)
            os_sources[fam] = tuple(sorted(set(os_sources[fam]) | set(os_s[parent])))
    prev = previous or Classification()
    os_dec = _decide(os_scores, os_sources, prev.os_family.value, _compatible_os, cfg)

    type_scores = {t: _total(per, cfg.same_protocol_share) for t, per in type_s.items()}
    type_sources = {t: tuple(sorted(per)) for t, per in type_s.items()}
    implied = OS_IMPLIED_TYPE.get(os_dec.value or "")
    if implied and implied not in type_scores and os_dec.score > 0:
        type_scores[implied] = os_dec.score * 0.5
        type_sources[implied] = tuple(f"os:{s}" for s in os_dec.sources)
    type_dec = _decide(type_scores, type_sources, prev.device_type.value, lambda a, b: a == b, cfg)

    vendor_scores = {k: _total(per, cfg.same_protocol_share) for k, per in vendor_s.items()}
    vendor_sources = {k: tuple(sorted(per)) for k, per in vendor_s.items()}
    prev_vendor = _vendor_key(prev.vendor.value) if prev.vendor.value else None
    v = _decide(vendor_scores, vendor_sources, prev_vendor, lambda a, b: a == b, cfg)
    vendor_dec = Decision(
        vendor_names.get(v.value, v.value) if v.value else None,
        v.confidence,
        v.score,
        v.sources,
        vendor_names.get(v.runner_up, v.runner_up) if v.runner_up else None,
        v.runner_up_score,
    )

    version = None
    if os_dec.value:
        cands = versions.get(os_dec.value, [])
        if cands:
            version = max(cands, key=lambda wv: (wv[0], len(wv[1])))[1]

    contradictions = _contradictions(os_dec, type_dec, {"os_family": os_sources, "device_type": type_sources}, cfg)
    confs = [d.confidence for d in (type_dec, os_dec) if d.value]
    overall = sum(confs) / len(confs) if confs else 0.0
    overall *= cfg.contradiction_penalty ** min(len(contradictions), 2)
    return Classification(os_dec, version, type_dec, vendor_dec, round(overall, 3), contradictions)


def _contradictions(
    os_dec: Decision,
    type_dec: Decision,
    sources: dict[str, dict[str, tuple[str, ...]]],
    cfg: ClassifierConfig,
) -> tuple[Contradiction, ...]:
    out: list[Contradiction] = []
    for dim, d in (("os_family", os_dec), ("device_type", type_dec)):
        if d.value and d.runner_up and d.score >= cfg.strong and d.runner_up_score >= cfg.strong:
            rival_sources = sources[dim].get(d.runner_up, ())
            out.append(
                Contradiction(
                    f"{dim}={d.value}", d.sources, d.score, f"{dim}={d.runner_up}", rival_sources,
                    d.runner_up_score,
                )
            )  # fmt: skip
    t, o = type_dec.value, os_dec.value
    if t and o and type_dec.score >= cfg.cross_strong and os_dec.score >= cfg.cross_strong:
        for types, bad_os in _INCOMPATIBLE:
            if t in types and o in bad_os:
                out.append(
                    Contradiction(
                        f"device_type={t}", type_dec.sources, type_dec.score, f"os_family={o}", os_dec.sources,
                        os_dec.score,
                    )
                )  # fmt: skip
                break
    return tuple(out)
