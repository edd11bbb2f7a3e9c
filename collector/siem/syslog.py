"""EVE records to a syslog server: RFC 5424 messages, octet-counted framing (RFC 6587 3.4.1) over TCP or TLS.

    LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [veille@32473 site="..." agent="..."] {EVE JSON}

HOSTNAME is the agent (the sensor that saw it), APP-NAME `veille`, MSGID the EVE event_type; the
structured-data element uses the documentation enterprise number 32473 (RFC 5612) until Veille has its
own. MSG is the EVE JSON without a BOM (RFC 5424 6.4 MSG-ANY), which is what JSON-parsing SIEM inputs
expect. Severity follows the alert's: EVE severity 1 -> critical, 2 -> error, 3 -> warning; other events
are informational. TLS (RFC 5425) verifies the server certificate against `cafile` (or the system store).
The connection is opened lazily and re-opened once per send after a failure; a send that still fails
raises, and the hub counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from telemetry.eve import EveRecord

_encode = msgspec.json.Encoder().encode
# RFC 5424 6.2.1: facility local0 = 16; severities 2 critical, 3 error, 4 warning, 6 informational.
FACILITY_LOCAL0: Final = 16
ALERT_SEVERITY: Final = {1: 2, 2: 3, 3: 4}
SEVERITY_INFO: Final = 6
SD_ID: Final = "veille@32473"
# RFC 5424 6.2.4-6.2.7 field limits: HOSTNAME 255, APP-NAME 48, MSGID 32 printable US-ASCII characters.
MAX_HOSTNAME: Final = 255
MAX_MSGID: Final = 32
APP_NAME: Final = "veille"


def _printable(text: str, limit: int) -> str:
    out = "".join(c for c in text if 33 <= ord(c) <= 126)[:limit]
    return out or "-"


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424_timestamp(eve_ts: str) -> str:
    """RFC 5424 TIMESTAMP (RFC 3339 with a colon in the offset) from EVE's `...+0000`."""
    if len(eve_ts) >= 5 and eve_ts[-5] in "+-" and eve_ts[-4:].isdigit():
        return f"{eve_ts[:-2]}:{eve_ts[-2:]}"
    return eve_ts or "-"


def format_message(record: Mapping[str, Any], hostname: str | None = None) -> bytes:
    """One RFC 5424 message (without framing) carrying an EVE record."""
    kind = str(record.get("event_type", "-"))
    severity = SEVERITY_INFO
    if kind == "alert":
        severity = ALERT_SEVERITY.get(int(record.get("alert", {}).get("severity", 3)), SEVERITY_INFO)
    pri = FACILITY_LOCAL0 * 8 + severity
    host = _printable(hostname or str(record.get("host") or "-"), MAX_HOSTNAME)
    veille = record.get("veille") or {}
    params = [("agent", str(record.get("host") or "")), ("site", str(veille.get("site") or ""))]
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_value(v)}"' for k, v in params if v) + "]"
    header = f"<{pri}>1 {rfc5424_timestamp(str(record.get('timestamp', '')))} {host} {APP_NAME} - "
    header += f"{_printable(kind, MAX_MSGID)} {sd} "
    return header.encode("ascii", "replace") + _encode(record)


def frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: the message length in decimal, a space, the message."""
    return str(len(message)).encode() + b" " + message


class SyslogSink:
    """Sends EVE records to a syslog receiver over TCP, or TLS when `tls` is true."""

    def __init__(
        self,
        host: str,
        port: int,
        tls: bool = False,
        cafile: str | None = None,
        server_hostname: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.name = "syslog+tls" if tls else "syslog"
        self.host = host
        self.port = port
        self.timeout = timeout
        self.server_hostname = server_hostname
        self._ssl: ssl.SSLContext | None = None
        if tls:
            self._ssl = ssl.create_default_context(cafile=cafile)
        self._writer: asyncio.StreamWriter | None = None
        self.sent = 0

    async def start(self) -> None:
        """Nothing to do up front: the connection opens with the first send (a SIEM may start later)."""

    async def _connect(self) -> asyncio.StreamWriter:
        if self._writer is None or self._writer.is_closing():
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=(self.server_hostname or self.host) if self._ssl else None,
                ),
                self.timeout,
            )
            self._writer = writer
        return self._writer

    async def send(self, items: Sequence[tuple[str, EveRecord]]) -> None:
        data = b"".join(frame(format_message(record)) for _, record in items)
        for attempt in (1, 2):
            try:
                writer = await self._connect()
                writer.write(data)
                await asyncio.wait_for(writer.drain(), self.timeout)
                self.sent += len(items)
                return
            except (OSError, TimeoutError, ssl.SSLError):
                await self._drop()
                if attempt == 2:
                    raise

    async def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await self._writer.wait_closed()
            self._writer = None

    async def close(self) -> None:
        await self._drop()
