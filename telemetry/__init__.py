"""The contract between agent and collector (docs/wire.md).

`schema` (versioned msgspec Structs), `codec` (MessagePack, zstd/gzip with caps), `signing` (per-agent
HMAC-SHA256), `errors` (typed refusals with HTTP status and reason), `community` (Community ID v1), and
the agent side: `config` (the `[collector]` table), `spool` (crash-safe disk spool) and `shipper`.
Imports nothing else of the project's.
"""
