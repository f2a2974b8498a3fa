"""Ed25519 keys for signing watchlist bundles (the hub) and verifying them (the devices).

Keys are PEM files: the private key PKCS#8 (unencrypted, written with mode 0600; keep it on the
hub only), the public key SubjectPublicKeyInfo. A key id is the first 16 hex digits of the
sha256 of the raw 32-byte public key; manifests name the id of the key that signed them, so a
refusal can say which key was expected and which one signed.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import BundleError, WatchlistError
from edge.system.inputs import read_bounded

PRIVATE_KEY_NAME = "watchlist-signing.key"
PUBLIC_KEY_NAME = "watchlist-signing.pub"
SIGNATURE_BYTES = 64
# An Ed25519 key in PEM is under 200 bytes; 64 KiB leaves room for comments and nothing more.
MAX_KEY_BYTES = 64 * 1024
# The signer's key id as canonical JSON writes it. Read from bytes whose signature has not been
# checked yet, so a pattern (linear, bounded) rather than the JSON parser.
_SIGNER = re.compile(rb'"signing_key_id":"([0-9a-f]{1,64})"')


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(out_dir: Path) -> tuple[Path, Path]:
    """Write a new key pair into ``out_dir``; refuses to overwrite existing key files."""
    private_path = out_dir / PRIVATE_KEY_NAME
    public_path = out_dir / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise WatchlistError(f"{path} already exists: refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem)
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise WatchlistError(f"cannot write keys to {out_dir}: {exc.strerror or exc}") from exc
    return private_path, public_path


def _read(path: Path, what: str) -> bytes:
    return read_bounded(path, MAX_KEY_BYTES, what, WatchlistError)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise WatchlistError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise WatchlistError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise WatchlistError(f"{path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise WatchlistError(f"{path} is not an Ed25519 public key")
    return key


def trusted_key(given: Path | None, configured: Path | None) -> Ed25519PublicKey:
    """The hub key bundles must be signed with: ``--pubkey``, else ``watchlist.public_key``."""
    path = given or configured
    if path is None:
        raise WatchlistError(
            "no trusted public key: pass --pubkey or set watchlist.public_key in the config"
        )
    return load_public_key(path)


def sign(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    return private_key.sign(message)


def signer_hint(unverified: bytes) -> str | None:
    """The key id an unverified signed document names, only to word a refusal."""
    found = _SIGNER.search(unverified)
    return found.group(1).decode("ascii") if found is not None else None


def verify_signature(
    public_key: Ed25519PublicKey, message: bytes, signature: bytes, signer_id: str | None
) -> None:
    """Raise :class:`BundleError` (check ``signature``) unless ``signature`` is valid."""
    if len(signature) != SIGNATURE_BYTES:
        raise BundleError(
            "signature",
            f"manifest.sig is {len(signature)} bytes, an Ed25519 signature is {SIGNATURE_BYTES}",
        )
    try:
        public_key.verify(signature, message)
    except InvalidSignature as exc:
        trusted = key_id(public_key)
        if signer_id is not None and signer_id != trusted:
            detail = f"signed by key {signer_id}, but the trusted key is {trusted}"
        else:
            detail = f"signature does not match the manifest under trusted key {trusted}"
        raise BundleError("signature", detail) from exc
