"""Signed content bundles (rules, IOC lists, fingerprint databases) that the collector publishes to agents.

A bundle is a gzip-compressed tar holding `manifest.json`, `manifest.sig` and the content under
`files/`. The manifest lists every file with its size and SHA-256, the bundle's version, when it was
created and the id of the signing key; `manifest.sig` is the Ed25519 signature (RFC 8032) of the manifest's
exact bytes, by the collector's key. An agent configured with the public key trusts a bundle only when the
signature verifies, every listed file is present with its digest, and nothing else is in the archive.
The bundle's `digest` (SHA-256 of the archive bytes) names one exact archive in the API and in logs.

Pure: bytes in, values out (the collector reads the folder, the agent writes the extracted files).
Building is deterministic: sorted paths, fixed owners, modes and times, gzip mtime 0, so the same
content, version and time give the same archive. Reading is capped against hostile archives.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT: Final = 1
MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
PREFIX: Final = "files/"
# Caps. ET Open, the largest public rule set, is ~60k rules in ~40 MB of text; the largest fingerprint
# database we ship is a few MB. 64 MiB of content and 4,096 files cover that with room; a manifest is a
# line per file (~150 B), so 1 MiB; a path is at most 255 bytes (POSIX NAME_MAX per component, kept short).
MAX_TOTAL: Final = 64 * 1024 * 1024
MAX_FILES: Final = 4096
MAX_MANIFEST: Final = 1024 * 1024
MAX_PATH: Final = 255
# Ed25519 signatures are 64 bytes, public keys 32 (RFC 8032 5.1.5, 5.1.6).
SIG_BYTES: Final = 64
KEY_BYTES: Final = 32
VERSION_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_PATH_PART: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


class BundleError(ValueError):
    """A bundle that cannot be built or trusted; `reason` is a short code, the message says what and where."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a bundle holds and who signed it."""

    version: str
    created: float
    key_id: str
    files: tuple[FileEntry, ...]
    format: int = FORMAT
    description: str = ""

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces): the exact bytes that are signed."""
        body: dict[str, Any] = {
            "format": self.format,
            "version": self.version,
            "created": self.created,
            "key_id": self.key_id,
            "description": self.description,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Bundle:
    """A verified bundle: its manifest, its files (path -> bytes) and the digest of the archive."""

    manifest: Manifest
    files: Mapping[str, bytes]
    digest: str

    @property
    def version(self) -> str:
        return self.manifest.version


# ---- keys -------------------------------------------------------------------------------------------
def generate_key() -> tuple[bytes, str]:
    """A new signing key: (private key PEM, PKCS#8 unencrypted; public key as base64 of its 32 raw bytes)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, public_key_text(private.public_key())


def public_key_text(key: Ed25519PublicKey) -> str:
    """The base64 text of a public key's raw bytes (what agents are configured with)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM; BundleError naming the problem otherwise."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BundleError("bad_key", f"not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError("bad_key", f"expected an Ed25519 key, got {type(key).__name__}")
    return key


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from base64 of its 32 raw bytes, or from PEM."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise BundleError("bad_key", f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise BundleError("bad_key", f"expected an Ed25519 key, got {type(key).__name__}")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise BundleError("bad_key", "public key is neither PEM nor base64") from None
    if len(raw) != KEY_BYTES:
        raise BundleError("bad_key", f"public key has {len(raw)} bytes, Ed25519 keys have {KEY_BYTES}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(key: Ed25519PublicKey) -> str:
    """Short id of a public key: the first 16 hex digits of SHA-256 over its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# ---- build ------------------------------------------------------------------------------------------
def check_path(path: str) -> str:
    """A bundle file path: relative, `/`-separated, no `..`, no hidden or empty parts; BundleError otherwise."""
    if not path or len(path.encode()) > MAX_PATH:
        raise BundleError("unsafe_path", f"{path!r}: empty or longer than {MAX_PATH} bytes")
    parts = path.split("/")
    for part in parts:
        if not _PATH_PART.match(part) or part in (".", ".."):
            raise BundleError("unsafe_path", f"{path!r}: part {part!r} is not a plain file or folder name")
    return path


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def build(
    files: Mapping[str, bytes], version: str, created: float, private_key: Ed25519PrivateKey, description: str = ""
) -> bytes:
    """A signed bundle archive of `files` (path -> content); deterministic for the same inputs."""
    if not VERSION_RE.match(version):
        raise BundleError("bad_version", f"{version!r}: 1-64 of letters, digits and ._+- (first a letter/digit)")
    if not files:
        raise BundleError("empty", "a bundle needs at least one file")
    if len(files) > MAX_FILES:
        raise BundleError("too_large", f"{len(files)} files, at most {MAX_FILES}")
    total = sum(len(v) for v in files.values())
    if total > MAX_TOTAL:
        raise BundleError("too_large", f"{total} bytes of content, at most {MAX_TOTAL}")
    entries = tuple(
        FileEntry(check_path(p), len(files[p]), hashlib.sha256(files[p]).hexdigest()) for p in sorted(files)
    )
    manifest = Manifest(version, created, key_id(private_key.public_key()), entries, description=description)
    manifest_bytes = manifest.to_bytes()
    signature = base64.b64encode(private_key.sign(manifest_bytes))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _tar_member(tar, MANIFEST, manifest_bytes, created)
        _tar_member(tar, SIGNATURE, signature, created)
        for entry in entries:
            _tar_member(tar, PREFIX + entry.path, files[entry.path], created)

    return gzip.compress(raw.getvalue(), mtime=0)


def digest(archive: bytes) -> str:
    """The bundle digest: hex SHA-256 of the archive bytes."""
    return hashlib.sha256(archive).hexdigest()


# ---- read and verify --------------------------------------------------------------------------------
def _gunzip(archive: bytes) -> bytes:
    # Tar headers and padding add at most 512 B per member plus two trailing blocks (POSIX ustar), and PAX
    # headers a few hundred more: twice that per file on top of the content cap.
    cap = MAX_TOTAL + MAX_MANIFEST + (MAX_FILES + 4) * 2048
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(archive, cap + 1)
    except zlib.error as exc:
        raise BundleError("malformed", f"not a gzip archive: {exc}") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise BundleError("too_large", f"archive expands past {cap} bytes")
    if not inflater.eof:
        raise BundleError("malformed", "gzip stream is cut short")
    return out


def _parse_manifest(data: bytes) -> Manifest:
    try:
        body = json.loads(data)
        files = tuple(FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in body["files"])
        manifest = Manifest(
            version=str(body["version"]),
            created=float(body["created"]),
            key_id=str(body["key_id"]),
            files=files,
            format=int(body["format"]),
            description=str(body.get("description", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError("malformed", f"{MANIFEST}: {type(exc).__name__}: {exc}") from None
    if manifest.format != FORMAT:
        raise BundleError("malformed", f"{MANIFEST}: format {manifest.format}, this agent reads {FORMAT}")
    if not VERSION_RE.match(manifest.version):
        raise BundleError("malformed", f"{MANIFEST}: version {manifest.version!r}")
    if len(files) > MAX_FILES:
        raise BundleError("too_large", f"{MANIFEST}: {len(files)} files, at most {MAX_FILES}")
    for entry in files:
        check_path(entry.path)
    return manifest


def open_bundle(archive: bytes, public_key: Ed25519PublicKey, expected_digest: str | None = None) -> Bundle:
    """Verify a bundle archive and return its content; BundleError naming the first problem found.

    Checks, in order: the archive digest (when the caller was told one), the archive's shape (regular
    files only, no unsafe path, within the caps), the Ed25519 signature of the manifest, then every file's
    size and SHA-256 against the manifest, and that no file is missing or extra.
    """
    found = digest(archive)
    if expected_digest is not None and found != expected_digest.lower():
        raise BundleError("digest_mismatch", f"archive sha256 {found}, expected {expected_digest}")
    raw = _gunzip(archive)
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    raise BundleError("unsafe_path", f"{info.name!r}: only regular files are allowed")
                if info.name in members:
                    raise BundleError("malformed", f"{info.name!r} appears twice")
                if info.name not in (MANIFEST, SIGNATURE):
                    if not info.name.startswith(PREFIX):
                        raise BundleError("malformed", f"{info.name!r} is outside {PREFIX}")
                    check_path(info.name[len(PREFIX) :])
                if len(members) > MAX_FILES + 2:
                    raise BundleError("too_large", f"more than {MAX_FILES} files")
                handle = tar.extractfile(info)
                if handle is None:
                    raise BundleError("malformed", f"{info.name!r} cannot be read")
                members[info.name] = handle.read()
    except tarfile.TarError as exc:
        raise BundleError("malformed", f"not a tar archive: {exc}") from None
    manifest_bytes = members.pop(MANIFEST, None)
    signature_text = members.pop(SIGNATURE, None)
    if manifest_bytes is None or signature_text is None:
        raise BundleError("malformed", f"{MANIFEST} and {SIGNATURE} are required")
    if len(manifest_bytes) > MAX_MANIFEST:
        raise BundleError("too_large", f"{MANIFEST} larger than {MAX_MANIFEST} bytes")
    try:
        signature = base64.b64decode(signature_text.strip(), validate=True)
    except ValueError:
        raise BundleError("bad_signature", f"{SIGNATURE} is not base64") from None
    if len(signature) != SIG_BYTES:
        raise BundleError("bad_signature", f"{SIGNATURE} has {len(signature)} bytes, expected {SIG_BYTES}")
    try:
        public_key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise BundleError("bad_signature", f"{SIGNATURE} does not verify with key {key_id(public_key)}") from None
    manifest = _parse_manifest(manifest_bytes)
    files: dict[str, bytes] = {}
    for entry in manifest.files:
        data = members.pop(PREFIX + entry.path, None)
        if data is None:
            raise BundleError("missing_file", f"{entry.path} is listed in the manifest but absent")
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise BundleError("digest_mismatch", f"{entry.path}: content does not match its manifest sha256")
        files[entry.path] = data
    if members:
        extra = sorted(members)[0][len(PREFIX) :]
        raise BundleError("extra_file", f"{extra} is in the archive but not in the signed manifest")
    return Bundle(manifest, files, found)


def read_manifest(archive: bytes) -> Manifest:
    """The manifest of an archive without checking its signature (for listings of bundles already trusted)."""
    raw = _gunzip(archive)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            info = tar.getmember(MANIFEST)
            handle = tar.extractfile(info)
            data = handle.read(MAX_MANIFEST + 1) if handle is not None else b""
    except (tarfile.TarError, KeyError) as exc:
        raise BundleError("malformed", f"no readable {MANIFEST}: {exc}") from None
    return _parse_manifest(data)
