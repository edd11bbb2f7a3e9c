"""Signed bundles: build, verify, and every way a bundle is refused."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry import bundle as b

FILES = {
    "rules/local.rules": b'alert tcp any any -> any 80 (msg:"x"; content:"evil"; sid:1000001; rev:1;)\n',
    "ioc/hosts.txt": b"bad.example.com\n",
    "fingerprints/dhcp.tsv": b"1,3,6\tLinux\n",
}


@pytest.fixture(scope="module")
def keys() -> tuple[object, object]:
    pem, public = b.generate_key()
    return b.load_private_key(pem), b.load_public_key(public)


def _retar(archive: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    """Rewrite an archive's members through `edit(name, data) -> list[(name, data)]`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as src, tarfile.open(fileobj=out, mode="w") as tar:
        for info in src:
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            for name, new in edit(info.name, data):
                ti = tarfile.TarInfo(name)
                ti.size = len(new)
                tar.addfile(ti, io.BytesIO(new))
    return gzip.compress(out.getvalue())


def test_round_trip_and_determinism(keys) -> None:  # type: ignore[no-untyped-def]
    private, public = keys
    one = b.build(FILES, "2026.11.22-1", 1_700_000_000.0, private, "school policy")
    two = b.build(dict(reversed(FILES.items())), "2026.11.22-1", 1_700_000_000.0, private, "school policy")
    assert one == two
    opened = b.open_bundle(one, public, expected_digest=b.digest(one))
    assert dict(opened.files) == FILES
    assert opened.version == "2026.11.22-1"
    assert opened.manifest.key_id == b.key_id(public)
    assert [f.path for f in opened.manifest.files] == sorted(FILES)
    assert b.read_manifest(one) == opened.manifest


def test_forged_signature_refused(keys) -> None:  # type: ignore[no-untyped-def]
    _, public = keys
    other_pem, _ = b.generate_key()
    forged = b.build(FILES, "1", 0.0, b.load_private_key(other_pem))
    with pytest.raises(b.BundleError) as err:
        b.open_bundle(forged, public)
    assert err.value.reason == "bad_signature"


def test_tampered_file_refused(keys) -> None:  # type: ignore[no-untyped-def]
    private, public = keys
    good = b.build(FILES, "1", 0.0, private)

    def swap(name: str, data: bytes) -> list[tuple[str, bytes]]:
        return [(name, b"pass all\n" if name == "files/rules/local.rules" else data)]

    with pytest.raises(b.BundleError) as err:
        b.open_bundle(_retar(good, swap), public)
    assert err.value.reason == "digest_mismatch"
    assert "rules/local.rules" in str(err.value)


def test_tampered_manifest_refused(keys) -> None:  # type: ignore[no-untyped-def]
    private, public = keys
    good = b.build(FILES, "1", 0.0, private)

    def bump(name: str, data: bytes) -> list[tuple[str, bytes]]:
        if name == b.MANIFEST:
            body = json.loads(data)
            body["version"] = "2"
            data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return [(name, data)]

    with pytest.raises(b.BundleError, match="bad_signature"):
        b.open_bundle(_retar(good, bump), public)


def test_extra_and_missing_files_refused(keys) -> None:  # type: ignore[no-untyped-def]
    private, public = keys
    good = b.build(FILES, "1", 0.0, private)
    extra = _retar(good, lambda n, d: [(n, d)] + ([("files/rules/extra.rules", b"x")] if n == b.MANIFEST else []))
    with pytest.raises(b.BundleError, match=r"extra_file: rules/extra\.rules"):
        b.open_bundle(extra, public)
    missing = _retar(good, lambda n, d: [] if n == "files/ioc/hosts.txt" else [(n, d)])
    with pytest.raises(b.BundleError, match=r"missing_file: ioc/hosts\.txt"):
        b.open_bundle(missing, public)


def test_unsafe_paths_refused(keys) -> None:  # type: ignore[no-untyped-def]
    private, public = keys
    for bad in ("../etc/passwd", "/abs", "a//b", ".hidden", "a/./b"):
        with pytest.raises(b.BundleError, match="unsafe_path"):
            b.build({bad: b"x"}, "1", 0.0, private)
    good = b.build(FILES, "1", 0.0, private)
    escape = _retar(good, lambda n, d: [(n.replace("files/ioc/", "files/../"), d)])
    with pytest.raises(b.BundleError, match="unsafe_path"):
        b.open_bundle(escape, public)


def test_digest_mismatch_and_bomb(keys) -> None:  # type: ignore[no-untyped-def]
    private, public = keys
    good = b.build(FILES, "1", 0.0, private)
    with pytest.raises(b.BundleError, match="digest_mismatch"):
        b.open_bundle(good, public, expected_digest="0" * 64)
    bomb = gzip.compress(b"\0" * (b.MAX_TOTAL + b.MAX_MANIFEST + (b.MAX_FILES + 4) * 2048 + 1), compresslevel=1)
    with pytest.raises(b.BundleError, match="too_large"):
        b.open_bundle(bomb, public)


def test_keys_text_forms() -> None:
    pem, public = b.generate_key()
    key = b.load_private_key(pem)
    assert b.public_key_text(key.public_key()) == public
    with pytest.raises(b.BundleError, match="bad_key"):
        b.load_public_key("AAAA")
    with pytest.raises(b.BundleError, match="bad_key"):
        b.load_private_key(b"not a key")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_only_raise_bundle_error(data: bytes) -> None:
    _, public = b.generate_key()
    with pytest.raises(b.BundleError):
        b.open_bundle(data, b.load_public_key(public))


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=4000), st.integers(min_value=0, max_value=255))
def test_mutated_archive_never_verifies_differently(offset: int, xor: int) -> None:
    pem, public = b.generate_key()
    archive = b.build(FILES, "1", 0.0, b.load_private_key(pem))
    mutated = bytearray(archive)
    if offset < len(mutated) and xor:
        mutated[offset] ^= xor
    try:
        opened = b.open_bundle(bytes(mutated), b.load_public_key(public))
    except b.BundleError:
        return
    assert dict(opened.files) == FILES
