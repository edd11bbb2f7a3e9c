"""Each parser's `fields()` has exactly the fields README.md lists for its event type, in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from capture.protocols.dhcp import parse_dhcp
from capture.protocols.dhcp6 import parse_dhcp6
from capture.protocols.dns import parse_dns
from capture.protocols.http import parse_http_request
from capture.protocols.nbns import parse_nbns
from capture.protocols.ssdp import parse_ssdp
from tests.capture.protocols import test_dhcp, test_dhcp6, test_dns, test_http, test_nbns, test_ssdp


def contract_fields(doc: str, event: str) -> list[str]:
    """Backticked names in the event's table row, with parenthesised notes removed."""
    for line in doc.splitlines():
        if line.startswith(f"| `{event}` |"):
            cell = line.split("|")[2]
            return re.findall(r"`([a-z_0-9]+)`", re.sub(r"\([^()]*\)", "", cell))
    raise AssertionError(f"event {event} not in README.md")


@pytest.mark.parametrize(
    ("event", "value"),
    [
        ("dhcp", lambda: parse_dhcp(test_dhcp.DISCOVER)),
        ("dhcp6", lambda: parse_dhcp6(test_dhcp6.SOLICIT)),
        ("dns", lambda: parse_dns(test_dns.RESPONSE)),
        ("nbns", lambda: parse_nbns(test_nbns.QUERY)),
        ("ssdp", lambda: parse_ssdp(test_ssdp.NOTIFY)),
        ("http", lambda: parse_http_request(test_http.REQUEST)),
    ],
)
def test_fields_match_the_event_contract(repo: Path, event: str, value: object) -> None:
    doc = (repo / "README.md").read_text()
    expected = contract_fields(doc, event)
    assert expected, event
    assert list(value().fields()) == expected  # type: ignore[operator]


def test_dns_answer_items_match_the_contract(repo: Path) -> None:
    doc = (repo / "README.md").read_text()
    keys = re.search(r"`answers` \(list of `\{([a-z, ]+)\}`\)", doc)
    assert keys is not None
    answers = parse_dns(test_dns.RESPONSE).fields()["answers"]
    assert isinstance(answers, list) and answers
    assert list(answers[0]) == [k.strip() for k in keys.group(1).split(",")]
