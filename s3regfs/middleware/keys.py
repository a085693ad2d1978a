"""Throwaway RSA key pairs for CloudFront signing (tests and ``s3regfs demo``).

Owns :func:`generate_keypair`: a fresh RSA key written as a PEM file with
mode 0600 (created that way, never widened), and the public key PEM that a
CloudFront key group (or the test CloudFront server) verifies against.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KeyFormat = Literal["pkcs1", "pkcs8"]

_FORMATS = {
    "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,  # BEGIN RSA PRIVATE KEY (upstream's format)
    "pkcs8": serialization.PrivateFormat.PKCS8,  # BEGIN PRIVATE KEY
}


def generate_keypair(
    directory: str | os.PathLike[str], *, key_format: KeyFormat = "pkcs1", bits: int = 2048
) -> tuple[Path, bytes]:
    """Write a new RSA private key PEM (mode 0600) in ``directory``.

    Returns ``(private_key_path, public_key_pem)``; the public key is
    SubjectPublicKeyInfo PEM (``BEGIN PUBLIC KEY``), the form CloudFront takes.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, _FORMATS[key_format], serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd, name = tempfile.mkstemp(prefix="cloudfront-pk-", suffix=".pem", dir=os.fspath(directory))
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # mkstemp's mode already; stated, not assumed
            out.write(private_pem)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), public_pem
