"""What the agent knows besides packets: rules, IOC lists, LAN detections and the p0f database,
loaded together so a reload swaps them at once or not at all (`ReloadError` names what failed)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.health import files_version, label

log = logging.getLogger("veille.agent")


class ReloadError(Exception):
    """New knowledge that cannot replace the running one; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Knowledge:
    """What SIGHUP reloads: rules, IOC lists, LAN detections and fingerprint databases."""

    ruleset: Any = None
    engine: Any = None
    ioc: Any = None
    lan: Any = None
    p0f: Any = None
    detections: dict[str, Any] = dataclasses.field(default_factory=dict)
    rules_version: str | None = None
    fingerprints_version: str | None = None
    skipped: tuple[str, ...] = ()


def _variables(config: AgentConfig) -> dict[str, str]:
    home = config.rules.home_net
    return {"HOME_NET": "[" + ",".join(home) + "]"} if home else {}


def build_knowledge(config: AgentConfig, previous: Knowledge | None = None) -> Knowledge:
    """Load rules, IOCs, detections and p0f from `config`; raises `ReloadError` naming what failed.

    Rules that do not parse are skipped (as at start), except a rule whose sid the running set has
    loaded: a reload never silently loses a working rule. A rule set that loads nothing from files
    that hold rules is broken as a whole.
    """
    r, fp = config.rules, config.fingerprints
    ruleset = engine = ioc = p0f = None
    try:
        rules_v = files_version(r.files)
        ioc_v = files_version(r.ioc_files)
        p0f_path = fp.p0f if fp.p0f and Path(fp.p0f).is_file() else None
        fp_v = files_version([p for p in (p0f_path, fp.dhcp_db) if p])
    except OSError as exc:
        raise ReloadError(f"cannot read {exc.filename}: {exc.strerror}") from None
    if r.files:
        from signatures.rules import EngineConfig, RuleEngine, load_rules
        from signatures.rules.errors import RuleError

        try:
            ruleset = load_rules(r.files, _variables(config))
        except RuleError as exc:
            raise ReloadError(f"rules: {exc}") from None
        if not ruleset.loaded and ruleset.skipped:
            raise ReloadError(f"rules: none of {len(ruleset.skipped)} rules loaded; first: {ruleset.skipped[0]}")
        if previous is not None and previous.ruleset is not None:
            running = {rule.sid for rule in previous.ruleset.rules}
            lost = [s for s in ruleset.skipped if s.sid is not None and s.sid in running]
            if lost:
                raise ReloadError(f"rules: {len(lost)} running rules no longer load; first: {lost[0]}")
        engine = RuleEngine(ruleset, EngineConfig(encryption_handling=r.encryption_handling))
    if r.ioc_files:
        from signatures.ioc import IocSet

        try:
            ioc = IocSet.load(r.ioc_files)
        except (OSError, ValueError) as exc:
            raise ReloadError(f"ioc_files: {exc}") from None
    detections = dataclasses.asdict(config.detections)
    if previous is not None and previous.lan is not None and previous.detections == detections:
        lan = previous.lan  # same settings: keep the detector's learnt state
    else:
        from agent.detections import LanDetector

        try:
            lan = LanDetector(detections)
        except (ValueError, TypeError) as exc:
            raise ReloadError(f"detections: {exc}") from None
    if p0f_path is not None:
        from signatures.p0f import P0fDatabase

        try:
            p0f = P0fDatabase.load(p0f_path)
        except (OSError, ValueError) as exc:
            raise ReloadError(f"fingerprints.p0f: {exc}") from None
    return Knowledge(
        ruleset=ruleset,
        engine=engine,
        ioc=ioc,
        lan=lan,
        p0f=p0f,
        detections=detections,
        rules_version=label({"rules": rules_v, "ioc": ioc_v}),
        fingerprints_version=label({"fp": fp_v}),
        skipped=tuple(str(s) for s in ruleset.skipped) if ruleset is not None else (),
    )
