# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Backend of cert_export: argument spec and the write-or-keep decision, shared by module and action."""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _files,
    _pkcs12,
    _pkcs12_record,
    _pki,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "certificate_path": {"type": "path"},
    "privatekey_path": {"type": "path"},
    "privatekey_passphrase": {"type": "str", "no_log": True},
    "chain_paths": {"type": "list", "elements": "path", "default": []},
    "pkcs12_src": {"type": "path"},
    "pkcs12_src_passphrase": {"type": "str", "no_log": True},
    "pem_path": {"type": "path"},
    "pkcs12_path": {"type": "path"},
    "pkcs12_passphrase": {"type": "str", "no_log": True},
    "friendly_name": {"type": "str"},
    "pkcs12_profile": {
        "type": "str",
        "default": "auto",
        "choices": ["auto", "modern", "legacy"],
    },
    "target_os_build": {"type": "int"},
    "purpose": {"type": "str", "choices": list(_pki.PURPOSES)},
    "force": {"type": "bool", "default": False},
}
MUTUALLY_EXCLUSIVE: list[list[str]] = [
    ["certificate_path", "pkcs12_src"],
    ["privatekey_path", "pkcs12_src"],
]
REQUIRED_ONE_OF: list[list[str]] = [
    ["certificate_path", "pkcs12_src"],
    ["pem_path", "pkcs12_path"],
]
REQUIRED_TOGETHER: list[list[str]] = [["pkcs12_path", "pkcs12_passphrase"]]
REQUIRED_IF: list[list[t.Any]] = []
REQUIRED_BY: dict[str, list[str]] = {
    "pkcs12_src_passphrase": ["pkcs12_src"],
}

Outcome = tuple[bool, dict[str, t.Any], dict[str, t.Any], list[str]]


@dataclasses.dataclass
class Identity:
    """The loaded inputs: key (if any), leaf, ordered chain, and the source's friendly name."""

    key: t.Any
    leaf: t.Any
    chain: list[t.Any]
    friendly_name: str | None
    dropped: list[str]


def _load_inputs(params: dict[str, t.Any]) -> Identity:
    extra: list[t.Any] = []
    for path in params.get("chain_paths") or []:
        extra += _pki.load_certificates(
            _files.read_file(path, what="chain_paths entry"),
            source=f"chain_paths entry {path!r}",
        )

    if params.get("pkcs12_src"):
        path = params["pkcs12_src"]
        contents = _pkcs12.load_pkcs12(
            _files.read_file(path, what="pkcs12_src"),
            params.get("pkcs12_src_passphrase"),
            source=f"pkcs12_src {path!r}",
        )
        # Exports often carry certificates of other paths; they are left out with a warning, not refused.
        linked, unrelated = _pki.split_chain(contents.certificate, contents.chain)
        chain = _pki.order_chain(contents.certificate, [*linked, *extra])
        dropped = [c.subject.rfc4514_string() for c in unrelated if c not in chain]
        return Identity(
            contents.private_key,
            contents.certificate,
            chain,
            contents.friendly_name,
            dropped,
        )

    path = params["certificate_path"]
    data = _files.read_file(path, what="certificate_path")
    bundle = _pki.load_certificates(data, source=f"certificate_path {path!r}")
    key = None
    embedded = _pki.private_key_block(data)
    if embedded is not None and not params.get("privatekey_path"):
        # A combined PEM (as `openssl pkcs12 -nodes` writes it) brings its own key.
        key = _pki.load_private_key(
            embedded,
            params.get("privatekey_passphrase"),
            source=f"the private key in certificate_path {path!r}",
            validate=False,
        )
    elif params.get("privatekey_path"):
        key_path = params["privatekey_path"]
        key = _pki.load_private_key(
            _files.read_file(key_path, what="privatekey_path"),
            params.get("privatekey_passphrase"),
            source=f"privatekey_path {key_path!r}",
            validate=False,
        )
    try:
        leaf = _pki.find_leaf(bundle, key, source=f"certificate_path {path!r}")
    except CertificateError as exc:
        if key is not None and "does not match" in str(exc):
            raise CertificateError(
                f"privatekey_path {params['privatekey_path']!r} does not match the certificate in {path!r}; give the key of that certificate"
            ) from None
        raise
    chain = _pki.order_chain(leaf, [c for c in bundle if c != leaf] + extra)
    return Identity(key, leaf, chain, None, [])


def default_friendly_name(leaf: t.Any) -> str:
    """CN (or subject) plus the first thumbprint digits, so each certificate gets its own name.

    Windows PowerShell 5.1 may reuse the friendly name as the CAPI key-container name, so a renewed
    certificate must not reuse the name of the one it replaces.
    """
    names = leaf.subject.get_attributes_for_oid(_pki.SUBJECT_FIELDS["common_name"])
    base = (
        str(names[0].value) if names else leaf.subject.rfc4514_string() or "certificate"
    )
    return f"{base} ({_pki.thumbprint(leaf)[:8]})"


def _pkcs12_state(
    data: bytes | None, passphrase: str, path: str
) -> tuple[_pkcs12.Pkcs12Contents | None, str | None]:
    """The existing PKCS#12 opened with the new passphrase, or why it cannot be compared."""
    if data is None:
        return None, "no PKCS#12 yet"
    try:
        return _pkcs12.load_pkcs12(
            data, passphrase, source=f"existing pkcs12_path {path!r}"
        ), None
    except CertificateError:
        return (
            None,
            "existing PKCS#12 does not open with pkcs12_passphrase or is not ours",
        )


def _unchanged_pkcs12(
    data: bytes | None,
    passphrase: str,
    identity: Identity,
    friendly_name: str,
    profile: str,
) -> bool:
    """Proof that the existing file is what would be written (see _pkcs12.pkcs12_matches)."""
    if data is None or _pkcs12.detect_pkcs12_profile(data) != profile:
        return False
    return _pkcs12.pkcs12_matches(
        data,
        passphrase,
        key_der=_pki.private_key_der(identity.key),
        cert_ders=[_pki.cert_der(c) for c in [identity.leaf, *identity.chain]],
        friendly_name=friendly_name,
    )


def _pkcs12_differences(
    existing: _pkcs12.Pkcs12Contents,
    identity: Identity,
    friendly_name: str,
    profile: str,
) -> list[str]:
    reasons = []
    if existing.private_key is None or _pki.private_key_der(
        existing.private_key
    ) != _pki.private_key_der(identity.key):
        reasons.append("private key differs")
    if existing.certificate != identity.leaf:
        reasons.append("certificate differs")
    if list(existing.chain) != identity.chain:
        reasons.append("chain differs")
    if existing.friendly_name != friendly_name:
        reasons.append("friendly name differs")
    if existing.profile != profile:
        reasons.append(f"encryption profile is {existing.profile}, not {profile}")
    return reasons


def _pkcs12_summary(
    leaf: t.Any, chain: t.Sequence[t.Any], friendly_name: str | None, profile: str
) -> dict[str, t.Any]:
    return {
        "thumbprint": _pki.thumbprint(leaf),
        "chain_thumbprints": [_pki.thumbprint(c) for c in chain],
        "friendly_name": friendly_name,
        "profile": profile,
    }


def run(params: dict[str, t.Any], *, check_mode: bool) -> Outcome:
    """Write or keep the PEM chain and the PKCS#12; return (changed, result, diff, warnings)."""
    _pki.require_cryptography()
    pem_path, pkcs12_path = params.get("pem_path"), params.get("pkcs12_path")
    if pem_path and pkcs12_path and pem_path == pkcs12_path:
        raise CertificateError("pem_path and pkcs12_path must be different files")
    profile = _pkcs12.resolve_profile(
        params["pkcs12_profile"], params.get("target_os_build")
    )
    if pkcs12_path and not params.get("pkcs12_passphrase"):
        raise CertificateError(
            "pkcs12_passphrase must not be empty; Windows import needs a password"
        )

    if check_mode:
        missing = _missing_inputs(params)
        if missing:
            return _pending_export(params, profile, missing)

    identity = _load_inputs(params)
    if pkcs12_path and identity.key is None:
        raise CertificateError(
            "pkcs12_path needs the private key: give privatekey_path (or a pkcs12_src that holds the key)"
        )
    _pki.verify_chain(identity.leaf, identity.chain)
    purpose = params.get("purpose")
    if purpose and not _pki.cert_allows_purpose(identity.leaf, purpose):
        raise CertificateError(
            f"the certificate {identity.leaf.subject.rfc4514_string()!r} is not valid for purpose {purpose}"
            f" (its extended key usage or basic constraints do not allow it); issue it with purpose: {purpose}"
        )
    friendly_name = (
        params.get("friendly_name")
        or identity.friendly_name
        or default_friendly_name(identity.leaf)
    )

    reasons: list[str] = []
    writes: list[_files.PlannedWrite] = []
    current: dict[str, bytes | None] = {}
    names: dict[str, str] = {}
    diff: dict[str, t.Any] = {"before": {}, "after": {}}

    if pem_path:
        pem = b"".join(_pki.cert_pem(c) for c in [identity.leaf, *identity.chain])
        existing_pem = _files.read_optional(pem_path, what="pem_path")
        current[pem_path], names[pem_path] = existing_pem, "pem_path"
        if _files.needs_write(pem_path, pem, _files.PUBLIC_MODE, existing_pem):
            if existing_pem is None:
                reasons.append("no PEM chain yet")
            elif existing_pem != pem:
                reasons.append("PEM chain differs")
            else:
                reasons.append(f"mode of {pem_path} is not 0644")
            writes.append(_files.PlannedWrite(pem_path, pem, _files.PUBLIC_MODE))
        diff["before"]["pem"] = _pem_summary(existing_pem)
        diff["after"]["pem"] = _pem_summary(pem)

    if pkcs12_path:
        existing_data = _files.read_optional(pkcs12_path, what="pkcs12_path")
        current[pkcs12_path], names[pkcs12_path] = existing_data, "pkcs12_path"
        wanted = _pkcs12_summary(identity.leaf, identity.chain, friendly_name, profile)
        state_path = _pkcs12_record.record_path(pkcs12_path)
        state = _pkcs12_record.read(state_path)
        # What goes into the PKCS#12, as its record describes it.
        recorded: dict[str, t.Any] = {
            "key": identity.key,
            "certs": [identity.leaf, *identity.chain],
            "friendly_name": friendly_name,
            "profile": profile,
        }
        by_record = not params["force"] and _pkcs12_record.matches(
            state, existing_data, params["pkcs12_passphrase"], **recorded
        )
        if by_record or (
            not params["force"]
            and _unchanged_pkcs12(
                existing_data,
                params["pkcs12_passphrase"],
                identity,
                friendly_name,
                profile,
            )
        ):
            differences: list[str] = []
            diff["before"]["pkcs12"] = dict(wanted)
            if not by_record and not check_mode and existing_data is not None:
                # Proven unchanged the slow way: (re)write the record so the next run is quick. It
                # describes the file, it is not part of what the task manages, so it is no change.
                _pkcs12_record.write_quietly(
                    state_path,
                    _pkcs12_record.build(
                        existing_data, params["pkcs12_passphrase"], **recorded
                    ),
                )
            elif _files.file_mode(state_path) not in (None, _files.SECRET_MODE):
                reasons.append(f"mode of {state_path} is not 0600")
                current[state_path], names[state_path] = (
                    state,
                    "the record of pkcs12_path",
                )
                writes.append(
                    _files.PlannedWrite(
                        state_path, state or b"", _files.SECRET_MODE, secret=True
                    )
                )
        else:
            existing, why = _pkcs12_state(
                existing_data, params["pkcs12_passphrase"], pkcs12_path
            )
            differences = (
                [why]
                if why
                else _pkcs12_differences(existing, identity, friendly_name, profile)
            )
            if params["force"]:
                differences.append("force")
            diff["before"]["pkcs12"] = (
                _pkcs12_summary(
                    existing.certificate,
                    existing.chain,
                    existing.friendly_name,
                    existing.profile,
                )
                if existing
                else {}
            )
        diff["after"]["pkcs12"] = wanted
        if differences:
            reasons += differences
            # The key was loaded without the RSA check; run it before the key goes into a new file.
            _pki.check_key(identity.key, source="the private key")
            data = _pkcs12.dump_pkcs12(
                identity.key,
                identity.leaf,
                identity.chain,
                passphrase=params["pkcs12_passphrase"],
                friendly_name=friendly_name,
                profile=profile,
            )
            writes.append(
                _files.PlannedWrite(pkcs12_path, data, _files.SECRET_MODE, secret=True)
            )
            current[state_path], names[state_path] = state, "the record of pkcs12_path"
            writes.append(
                _files.PlannedWrite(
                    state_path,
                    _pkcs12_record.build(data, params["pkcs12_passphrase"], **recorded),
                    _files.SECRET_MODE,
                    secret=True,
                )
            )
        elif _files.file_mode(pkcs12_path) != _files.SECRET_MODE:
            reasons.append(f"mode of {pkcs12_path} is not 0600")
            writes.append(
                _files.PlannedWrite(
                    pkcs12_path, existing_data or b"", _files.SECRET_MODE, secret=True
                )
            )

    changed = bool(writes)
    if changed and not check_mode:
        _files.apply_writes(writes, current, what=names)
    elif changed:
        for write in writes:
            _files.check_writable(write.path, what=names[write.path])

    result: dict[str, t.Any] = {
        "pem_path": pem_path,
        "pkcs12_path": pkcs12_path,
        "pkcs12_profile": profile if pkcs12_path else None,
        "friendly_name": friendly_name if pkcs12_path else None,
        "chain_thumbprints": [_pki.thumbprint(c) for c in identity.chain],
        "reasons": reasons,
    }
    result.update(_pki.cert_summary(identity.leaf))
    leaf_name = identity.leaf.subject.rfc4514_string()
    warnings = [
        f"pkcs12_src holds certificate {name!r}, which is not in the chain of {leaf_name!r}; it is left out"
        for name in identity.dropped
    ]
    return changed, result, diff, warnings


def _missing_inputs(params: dict[str, t.Any]) -> list[tuple[str, str]]:
    """(option, path) of each input file that is not there yet."""
    inputs = [
        ("certificate_path", params.get("certificate_path")),
        ("privatekey_path", params.get("privatekey_path")),
        ("pkcs12_src", params.get("pkcs12_src")),
    ] + [("chain_paths entry", p) for p in params.get("chain_paths") or []]
    return [(what, path) for what, path in inputs if path and not _files.exists(path)]


def _pending_export(
    params: dict[str, t.Any], profile: str, missing: list[tuple[str, str]]
) -> Outcome:
    """Check-mode outcome when inputs are missing, as after a cert_generate task that also ran in check mode.

    A real run would fail if they were still missing, so this only predicts the export; the outputs
    must still be writable.
    """
    names = {
        params.get("pem_path"): "pem_path",
        params.get("pkcs12_path"): "pkcs12_path",
    }
    for path, what in names.items():
        if path:
            _files.check_writable(path, what=what)
    reasons = [f"would export once {path} exists" for _what, path in missing]
    warnings = [
        f"{what} {path!r} does not exist yet (in check mode an earlier task may not have written it);"
        f" would export once {path} exists"
        for what, path in missing
    ]
    result: dict[str, t.Any] = {
        "pem_path": params.get("pem_path"),
        "pkcs12_path": params.get("pkcs12_path"),
        "pkcs12_profile": profile if params.get("pkcs12_path") else None,
        "friendly_name": params.get("friendly_name")
        if params.get("pkcs12_path")
        else None,
        "chain_thumbprints": [],
        "reasons": reasons,
        # Nothing is known about a certificate that does not exist yet.
        "subject": None,
        "issuer": None,
        "serial_number": None,
        "not_before": None,
        "not_after": None,
        "thumbprint": None,
        "sha256_fingerprint": None,
    }
    return True, result, {"before": {}, "after": {}}, warnings


def _pem_summary(data: bytes | None) -> dict[str, t.Any]:
    if data is None:
        return {}
    try:
        certs = _pki.load_certificates(data, source="pem_path")
    except CertificateError:
        return {"content": "not a PEM certificate file"}
    return {"thumbprints": [_pki.thumbprint(c) for c in certs]}


__all__ = (
    "ARGUMENT_SPEC",
    "MUTUALLY_EXCLUSIVE",
    "REQUIRED_BY",
    "REQUIRED_IF",
    "REQUIRED_ONE_OF",
    "REQUIRED_TOGETHER",
    "default_friendly_name",
    "run",
)
