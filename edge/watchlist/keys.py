"""Ed25519 keys for signing watchlist bundles (the hub) and verifying them (the devices).

Keys are PEM files: the private key PKCS#8 (unencrypted, written with mode 0600; keep it on the
hub only), the public key SubjectPublicKeyInfo. A key id is the first 16 hex digits of the
sha256 of the raw 32-byte public key; manifests name the id of the key that signed them, so a
refusal can say which key was expected and which one signed.

Which key a device trusts: ``--pubkey``, else ``watchlist.public_key``, else its trust store,
``<state_dir>/trusted/<key id>.pem`` (``edge keys trust PUB.pem`` installs one). A store of
several keys accepts a bundle signed by any of them: the key whose id the manifest names checks
the signature (:class:`KeySet`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import BundleError, WatchlistError
from edge.system.inputs import read_bounded

PRIVATE_KEY_NAME = "watchlist-signing.key"
PUBLIC_KEY_NAME = "watchlist-signing.pub"
SIGNATURE_BYTES = 64
TRUSTED_SUFFIX = ".pem"
NO_KEY_HINT = (
    "pass --pubkey, set watchlist.public_key in the config, or trust the hub's key once "
    "with `edge keys trust PUB.pem`"
)
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


class KeySet:
    """Several trusted keys (a trust store holding more than one). A signature is checked with
    the key whose id the manifest names; when it names none of them, with each in turn."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], where: Path) -> None:
        self.keys = dict(sorted(keys.items()))
        self.where = where

    @property
    def ids(self) -> list[str]:
        return list(self.keys)

    def for_signer(self, signer_id: str | None) -> Ed25519PublicKey:
        """The key that signed (by the id a manifest names), or a one-line refusal."""
        key = self.keys.get(signer_id or "")
        if key is None:
            raise BundleError(
                "signature",
                f"signed by key {signer_id}, which is not among the trusted keys "
                f"{', '.join(self.ids)} ({self.where})",
            )
        return key


# What a verifier is given: one key, or a device's several trusted keys.
TrustedKey: TypeAlias = Ed25519PublicKey | KeySet


def trust_store_keys(store: Path) -> dict[str, Ed25519PublicKey]:
    """The keys of a trust store folder by key id ({} when it does not exist)."""
    try:
        paths = sorted(p for p in store.iterdir() if p.suffix == TRUSTED_SUFFIX and p.is_file())
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise WatchlistError(f"cannot read trusted keys in {store}: {exc.strerror or exc}") from exc
    return {key_id(key): key for key in (load_public_key(path) for path in paths)}


def find_trusted_key(
    given: Path | None, configured: Path | None, store: Path | None = None
) -> TrustedKey | None:
    """``--pubkey``, else ``watchlist.public_key``, else the trust store's key(s), else None."""
    path = given or configured
    if path is not None:
        return load_public_key(path)
    keys = trust_store_keys(store) if store is not None else {}
    if len(keys) == 1:
        return next(iter(keys.values()))
    if keys:
        assert store is not None
        return KeySet(keys, store)
    return None


def trusted_key(
    given: Path | None, configured: Path | None, store: Path | None = None
) -> TrustedKey:
    """The hub key(s) bundles must be signed with (:func:`find_trusted_key`), or a one-line
    error that says how to give one."""
    key = find_trusted_key(given, configured, store)
    if key is None:
        where = f" (none in {store})" if store is not None else ""
        raise WatchlistError(f"no trusted public key{where}: {NO_KEY_HINT}")
    return key


def describe(key: TrustedKey) -> str:
    """'key 3f2a...' or 'keys 3f2a..., 9c1d... (DIR)', for messages."""
    if isinstance(key, KeySet):
        return f"keys {', '.join(key.ids)} ({key.where})"
    return f"key {key_id(key)}"


def trust(store: Path, public_key_path: Path) -> tuple[str, Path, bool]:
    """Install a public key into a trust store: ``<store>/<key id>.pem``, written whole (staged,
    fsync'd, renamed into place), mode 0644. Returns (key id, path, newly added)."""
    key = load_public_key(public_key_path)
    kid = key_id(key)
    target = store / f"{kid}{TRUSTED_SUFFIX}"
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if target.is_file():
        return kid, target, False
    staged: str | None = None
    try:
        store.mkdir(parents=True, exist_ok=True)
        fd, staged = tempfile.mkstemp(prefix=".trust-", suffix=".tmp", dir=store)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fchmod(fh.fileno(), 0o644)
            os.fsync(fh.fileno())
        os.replace(staged, target)
        staged = None
        dir_fd = os.open(store, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise WatchlistError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        if staged is not None:
            with contextlib.suppress(OSError):
                os.unlink(staged)
    return kid, target, True


def sign(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    return private_key.sign(message)


def signer_hint(unverified: bytes) -> str | None:
    """The key id an unverified signed document names, only to word a refusal."""
    found = _SIGNER.search(unverified)
    return found.group(1).decode("ascii") if found is not None else None


def verify_signature(
    public_key: TrustedKey, message: bytes, signature: bytes, signer_id: str | None
) -> None:
    """Raise :class:`BundleError` (check ``signature``) unless ``signature`` is valid (under
    one of a :class:`KeySet`'s keys: the one ``signer_id`` names, else any)."""
    if len(signature) != SIGNATURE_BYTES:
        raise BundleError(
            "signature",
            f"manifest.sig is {len(signature)} bytes, an Ed25519 signature is {SIGNATURE_BYTES}",
        )
    if isinstance(public_key, KeySet):
        named = public_key.keys.get(signer_id or "")
        for key in [named] if named is not None else list(public_key.keys.values()):
            try:
                key.verify(signature, message)
                return
            except InvalidSignature:
                continue
        trusted = ", ".join(public_key.ids)
        if signer_id is not None and named is None:
            detail = f"signed by key {signer_id}, but the trusted keys are {trusted}"
        else:
            detail = f"signature does not match the manifest under trusted keys {trusted}"
        raise BundleError("signature", detail)
    try:
        public_key.verify(signature, message)
    except InvalidSignature as exc:
        trusted = key_id(public_key)
        if signer_id is not None and signer_id != trusted:
            detail = f"signed by key {signer_id}, but the trusted key is {trusted}"
        else:
            detail = f"signature does not match the manifest under trusted key {trusted}"
        raise BundleError("signature", detail) from exc
