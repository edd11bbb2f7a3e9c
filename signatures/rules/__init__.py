"""Suricata-subset rules: parse rule files into a `RuleSet`, evaluate them with a `RuleEngine`."""

from signatures.rules.engine import EngineConfig, RuleEngine
from signatures.rules.errors import RuleError
from signatures.rules.parser import RuleFileError, RuleSet, SkippedRule, load_rules, load_text, parse_rule

__all__ = [
    "EngineConfig",
    "RuleEngine",
    "RuleError",
    "RuleFileError",
    "RuleSet",
    "SkippedRule",
    "load_rules",
    "load_text",
    "parse_rule",
]
