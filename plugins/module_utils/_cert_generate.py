# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Backend of cert_generate: argument spec and the issue-or-keep decision, shared by module and action."""

from __future__ import annotations

import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _files, _pki
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)

SELF_SIGNED_WARNING = (
    "the certificate is self-signed: ServiceNow blocks self-signed certificates for certificate-based "
    "authentication by default (KB0993615); issue it from a robot CA with issuer_cert_path and issuer_privatekey_path"
)

_SUBJECT_OPTIONS = {name: {"type": "str"} for name in _pki.SUBJECT_FIELD_NAMES}

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "path": {"type": "path", "required": True},
    "privatekey_path": {"type": "path", "required": True},
    "privatekey_passphrase": {"type": "str", "no_log": True},
    "purpose": {
        "type": "str",
        "default": "client_auth",
        "choices": list(_pki.PURPOSES),
    },
    "subject": {"type": "dict", "options": _SUBJECT_OPTIONS},
    "subject_alt_names": {"type": "list", "elements": "str", "default": []},
    "extended_key_usages": {"type": "list", "elements": "str", "default": []},
    "key_type": {"type": "str", "default": "rsa", "choices": list(_pki.KEY_TYPES)},
    "key_size": {"type": "int", "default": 2048},
    "curve": {
        "type": "str",
        "default": "secp256r1",
        "choices": ["secp256r1", "secp384r1", "secp521r1"],
    },
    "valid_days": {"type": "int", "default": 365},
    "renew_before_days": {"type": "int", "default": 30},
    "issuer_cert_path": {"type": "path"},
    "issuer_privatekey_path": {"type": "path"},
    "issuer_privatekey_passphrase": {"type": "str", "no_log": True},
    "force": {"type": "bool", "default": False},
}
REQUIRED_TOGETHER: list[list[str]] = [["issuer_cert_path", "issuer_privatekey_path"]]
MUTUALLY_EXCLUSIVE: list[list[str]] = []
REQUIRED_ONE_OF: list[list[str]] = []
REQUIRED_IF: list[list[t.Any]] = []
REQUIRED_BY: dict[str, list[str]] = {
    "issuer_privatekey_passphrase": ["issuer_privatekey_path"]
}

Outcome = tuple[bool, dict[str, t.Any], dict[str, t.Any], list[str]]


def _load_issuer_cert(params: dict[str, t.Any]) -> t.Any:
    path = params["issuer_cert_path"]
    cert = _pki.load_certificate(
        _files.read_file(path, what="issuer_cert_path"),
        source=f"issuer_cert_path {path!r}",
    )
    _pki.check_issuer(cert, None, source=repr(path))
    return cert


# Issuer keys this process has loaded and checked, by file content and passphrase: a batch signs
# many certificates with one CA, and decrypting and checking its key each time would dominate.
_ISSUER_KEYS: dict[tuple[bytes, str | None], t.Any] = {}


def _load_issuer_key(params: dict[str, t.Any], cert: t.Any) -> t.Any:
    """The issuer key, checked against its certificate; only read when something must be signed."""
    path = params["issuer_privatekey_path"]
    data = _files.read_file(path, what="issuer_privatekey_path")
    passphrase = params.get("issuer_privatekey_passphrase")
    key = _ISSUER_KEYS.get((data, passphrase))
    if key is None:
        key = _pki.load_private_key(
            data, passphrase, source=f"issuer_privatekey_path {path!r}"
        )
    _pki.check_issuer(cert, key, source=repr(params["issuer_cert_path"]))
    _ISSUER_KEYS[(data, passphrase)] = key
    return key


def run(params: dict[str, t.Any], *, check_mode: bool) -> Outcome:
    """Issue, renew or keep the key and certificate; return (changed, result, diff, warnings)."""
    _pki.require_cryptography()
    purpose = params["purpose"]
    key_type, key_size, curve = params["key_type"], params["key_size"], params["curve"]
    passphrase = params.get("privatekey_passphrase")
    if params["valid_days"] < 1:
        raise CertificateError(
            f"valid_days must be 1 or more, got {params['valid_days']}"
        )
    if params["renew_before_days"] < 0:
        raise CertificateError(
            f"renew_before_days must be 0 or more, got {params['renew_before_days']}"
        )
    if params["valid_days"] <= params["renew_before_days"]:
        # A new certificate would already be due for renewal, so every run would issue another one.
        raise CertificateError(
            f"valid_days {params['valid_days']} must be greater than renew_before_days {params['renew_before_days']};"
            " raise valid_days or lower renew_before_days"
        )
    _pki.check_key_options(key_type, key_size, curve)
    subject = _pki.build_subject(params.get("subject"))
    san = _pki.parse_san(params.get("subject_alt_names"))
    extra_ekus = _pki.parse_eku(params.get("extended_key_usages"))
    if not len(subject) and not san:
        raise CertificateError(
            "give subject (at least common_name) or subject_alt_names"
        )
    cert_path, key_path = params["path"], params["privatekey_path"]
    if cert_path == key_path:
        raise CertificateError("path and privatekey_path must be different files")

    issuer_cert = _load_issuer_cert(params) if params.get("issuer_cert_path") else None

    key_bytes = _files.read_optional(key_path, what="privatekey_path")
    cert_bytes = _files.read_optional(cert_path, what="path")
    old_cert = None
    if cert_bytes is not None:
        remedy = "fix or remove the file, or set force: true to replace it"
        try:
            found = _pki.load_certificates(
                cert_bytes, source=f"existing path {cert_path!r}", remedy=remedy
            )
            if len(found) != 1:
                raise CertificateError(
                    f"existing path {cert_path!r} holds {len(found)} certificates where one is expected; {remedy}"
                )
            old_cert = found[0]
        except CertificateError:
            if not params["force"]:
                raise

    reasons: list[str] = []
    key = None
    if key_bytes is not None:
        try:
            # An unencrypted key file is read as it is, so adding a passphrase re-encrypts the same key.
            key = _pki.load_private_key(
                key_bytes,
                passphrase if _is_encrypted(key_bytes) else None,
                source=f"existing privatekey_path {key_path!r}",
                validate=False,
                or_else="set force: true to replace key and certificate",
            )
        except CertificateError:
            if not params["force"]:
                raise
        if params["force"]:
            reasons.append("force")
            key = None
        elif not _pki.key_matches_options(key, key_type, key_size, curve):
            reasons.append("key options changed")
            key = None
    else:
        reasons.append("no private key yet")
    new_key = key is None
    if key is None and check_mode:
        # Check mode writes no key and reports nothing that depends on one (a new certificate's
        # serial and fingerprints are unknown), so a P-256 key stands in: an RSA key would cost as
        # much as the real run. The options were checked above.
        key = _pki.generate_private_key("ecdsa", key_size, "secp256r1")
    elif key is None:
        key = _pki.generate_private_key(key_type, key_size, curve)

    cert = None if new_key else old_cert
    if cert is not None and not _pki.public_key_matches(key, cert):
        reasons.append("certificate does not match the private key")
        cert = None
    elif cert is not None:
        differences = _pki.certificate_differences(
            cert,
            purpose=purpose,
            subject=subject,
            san=san,
            extra_ekus=extra_ekus,
            valid_days=params["valid_days"],
            issuer_cert=issuer_cert,
        )
        # A leaf cut short to end with its issuer cannot get a later end date from that issuer,
        # so renewing it would only change the serial on every run; the CA's renewal is the fix.
        if _pki.expires_within(cert, params["renew_before_days"]) and not _ends_with(
            cert, issuer_cert
        ):
            differences.append(
                f"certificate expires within {params['renew_before_days']} days"
            )
        reasons.extend(differences)
        cert = None if differences else cert
    elif cert_bytes is None:
        reasons.append("no certificate yet")

    warnings = [SELF_SIGNED_WARNING] if issuer_cert is None and purpose != "ca" else []
    if cert is None:
        # Decrypting the issuer key costs a KDF run; an unchanged certificate does not need it.
        issuer_key = _load_issuer_key(params, issuer_cert) if issuer_cert else None
        cert = _pki.build_certificate(
            purpose=purpose,
            subject=subject,
            san=san,
            extra_ekus=extra_ekus,
            public_key=key.public_key(),
            valid_days=params["valid_days"],
            issuer_cert=issuer_cert,
            issuer_key=issuer_key or key,
        )

    key_out = (
        key_bytes
        if not new_key
        and key_bytes is not None
        and _key_protection_ok(key_bytes, passphrase)
        else None
    )
    if key_out is None:
        key_out = _pki.serialize_private_key(key, passphrase)
        if not new_key:
            reasons.append("private key protection changed")
    cert_out = _pki.cert_pem(cert)
    if _ends_with(cert, issuer_cert) and _pki.expires_within(
        cert, params["renew_before_days"]
    ):
        warnings.append(_issuer_expiry_warning(issuer_cert))
    writes = [
        _files.PlannedWrite(key_path, key_out, _files.SECRET_MODE, secret=True),
        _files.PlannedWrite(cert_path, cert_out, _files.PUBLIC_MODE),
    ]
    current = {key_path: key_bytes, cert_path: cert_bytes}
    pending = [
        w for w in writes if _files.needs_write(w.path, w.data, w.mode, current[w.path])
    ]
    for write in pending:
        if current[write.path] == write.data:
            reasons.append(f"mode of {write.path} is not {write.mode:04o}")
    changed = bool(pending)

    if changed and not new_key:
        # The kept key was loaded without the RSA check (costly on every unchanged run).
        _pki.check_key(key, source=f"privatekey_path {key_path!r}")
    if changed and not check_mode:
        _files.apply_writes(
            pending, current, what={key_path: "privatekey_path", cert_path: "path"}
        )
    elif changed:
        for write in pending:
            _files.check_writable(
                write.path, what="privatekey_path" if write.path == key_path else "path"
            )

    result: dict[str, t.Any] = {
        "path": cert_path,
        "privatekey_path": key_path,
        "purpose": purpose,
        "reasons": reasons if changed else [],
    }
    summary = _pki.cert_summary(cert)
    if check_mode and cert_out != cert_bytes:
        # Nothing was issued: serial and fingerprints of the certificate a real run makes are not known yet.
        summary.update(serial_number=None, thumbprint=None, sha256_fingerprint=None)
    result.update(summary)
    diff = {
        "before": _pki.cert_summary(old_cert) if old_cert is not None else {},
        "after": dict(summary),
    }
    return changed, result, diff, warnings


def _ends_with(cert: t.Any, issuer_cert: t.Any) -> bool:
    """True when CERT was cut short to end together with ISSUER_CERT."""
    return (
        issuer_cert is not None
        and cert.not_valid_after_utc == issuer_cert.not_valid_after_utc
    )


def _issuer_expiry_warning(issuer_cert: t.Any) -> str:
    end = issuer_cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"issuer CA {issuer_cert.subject.rfc4514_string()} expires on {end}; renew the CA"


def _is_encrypted(key_bytes: bytes) -> bool:
    return b"ENCRYPTED" in key_bytes


def _key_protection_ok(key_bytes: bytes, passphrase: str | None) -> bool:
    return _is_encrypted(key_bytes) == bool(passphrase)


__all__ = (
    "ARGUMENT_SPEC",
    "MUTUALLY_EXCLUSIVE",
    "REQUIRED_BY",
    "REQUIRED_IF",
    "REQUIRED_ONE_OF",
    "REQUIRED_TOGETHER",
    "SELF_SIGNED_WARNING",
    "run",
)
