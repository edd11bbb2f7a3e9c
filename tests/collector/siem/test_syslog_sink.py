"""Syslog sink against real loopback receivers: plain TCP and TLS, RFC 6587 octet counting, RFC 5424 fields."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from collector.siem.syslog import SyslogSink
from tests.collector.certs import self_signed

# RFC 5424 section 6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d) (?P<host>[!-~]{1,255}) "
    rb"(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) (?P<sd>-|\[.*?[^\\]\]) (?P<msg>.*)$",
    re.S,
)


class Receiver:
    """A syslog receiver reading RFC 6587 octet-counted frames until the client closes."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.got = asyncio.Event()
        self.want = 0
        self.writers: list[asyncio.StreamWriter] = []

    def drop(self) -> None:
        for writer in self.writers:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while True:
                length = await reader.readuntil(b" ")
                assert length[:-1].isdigit(), length
                self.messages.append(await reader.readexactly(int(length[:-1])))
                if len(self.messages) >= self.want:
                    self.got.set()
        except (asyncio.IncompleteReadError, ConnectionResetError, asyncio.CancelledError):
            writer.close()


@pytest.fixture(params=["tcp", "tls"])
async def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Receiver, SyslogSink]]:
    rx = Receiver()
    context = None
    cafile = None
    if request.param == "tls":
        cert, key = self_signed(tmp_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        cafile = str(cert)
    server = await asyncio.start_server(rx.handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    sink = SyslogSink("127.0.0.1", port, tls=request.param == "tls", cafile=cafile)
    await sink.start()
    yield rx, sink
    await sink.close()
    server.close()
    await server.wait_closed()


async def test_records_arrive_framed_and_parse(receiver, lan_records: list[tuple[str, dict[str, Any]]]) -> None:  # type: ignore[no-untyped-def]
    rx, sink = receiver
    items = lan_records[:120]
    rx.want = len(items)
    await sink.send(items[:60])
    await sink.send(items[60:])
    await asyncio.wait_for(rx.got.wait(), 10)
    assert len(rx.messages) == len(items)
    for raw, (_, record) in zip(rx.messages, items, strict=True):
        m = RFC5424.match(raw)
        assert m, raw[:200]
        assert json.loads(m["msg"]) == json.loads(json.dumps(record))
        assert m["host"] == b"agent-1" and m["app"] == b"veille" and m["procid"] == b"-"
        assert m["msgid"].decode() == record["event_type"]
        assert m["ts"].decode().replace(":", "")[-5:] == record["timestamp"][-5:]
        assert m["ts"].decode()[:26] == record["timestamp"][:26]
        assert m["sd"] == b'[veille@32473 agent="agent-1" site="school-a"]'
        pri = int(m["pri"])
        assert pri // 8 == 16
        if record["event_type"] == "alert":
            assert pri % 8 == {1: 2, 2: 3, 3: 4}[record["alert"]["severity"]]
        else:
            assert pri % 8 == 6


async def test_reconnects_after_the_receiver_drops(
    tmp_path: Path, lan_records: list[tuple[str, dict[str, Any]]]
) -> None:
    rx = Receiver()
    rx.want = 1
    server = await asyncio.start_server(rx.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = SyslogSink("127.0.0.1", port)
    await sink.send(lan_records[:1])
    await asyncio.wait_for(rx.got.wait(), 5)
    server.close()
    rx.drop()
    await server.wait_closed()
    with pytest.raises(OSError):
        for _ in range(50):  # the kernel may accept a write or two before the reset is seen
            await sink.send(lan_records[:1])
            await asyncio.sleep(0.02)
    rx2 = Receiver()
    rx2.want = 1
    server2 = await asyncio.start_server(rx2.handle, "127.0.0.1", port)
    await sink.send(lan_records[1:2])
    await asyncio.wait_for(rx2.got.wait(), 5)
    assert json.loads(RFC5424.match(rx2.messages[0])["msg"])["timestamp"] == lan_records[1][1]["timestamp"]  # type: ignore[index]
    await sink.close()
    server2.close()
    await server2.wait_closed()
