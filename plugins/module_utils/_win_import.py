# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Controller-side decisions for win_cert_import: what the PKCS#12 holds, where each
certificate goes, which encoding of it the target can import, and how the PowerShell answer
becomes the task result. Nothing here talks to a host."""

from __future__ import annotations

import base64
import binascii
import datetime
import typing as t
from dataclasses import dataclass, field

try:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import Encoding
except (
    ImportError
):  # pragma: no cover - the action plugin reports the missing requirement
    pass

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
    WindowsPrepError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._pkcs12 import (
    MODERN_MIN_OS_BUILD,
    PROFILES,
    Pkcs12Contents,
    load_pkcs12,
    pkcs12_algorithms,
    reencode_pkcs12,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._pki import (
    HAS_CRYPTOGRAPHY,
    MINIMUM_CRYPTOGRAPHY_VERSION,
    PURPOSE_EKU,
    cert_allows_purpose,
    cert_summary,
    check_not_expired,
    is_self_signed,
    thumbprint,
)

# REFERENCE 3: PBES2 (AES) PKCS#12 files import only on Windows 10 / Server 2019 build 17763+.
MODERN_PROFILE_MIN_BUILD = MODERN_MIN_OS_BUILD
_OID_PBES2 = "1.2.840.113549.1.5.13"

# Windows' own store names; the controller decides placement, the host only executes it.
INTERMEDIATE_STORE = "CA"
ROOT_STORE_LOCATION = "LocalMachine"
ROOT_STORE = "Root"

CHAIN_MODES = ("none", "ca", "all")
STORE_LOCATIONS = ("LocalMachine", "CurrentUser")
KEY_STORAGES = ("auto", "machine", "user")

# Error codes the PowerShell module puts in result["error"]["code"]; anything else keeps its msg.
ERROR_HINTS: dict[str, str] = {
    # Only reached when the controller was told a build of 17763 or later: otherwise it sends a legacy copy too.
    "os_build": (
        "the PKCS#12 uses PBES2 (AES) encryption, which Windows build {build} cannot import (it needs build "
        f"{MODERN_PROFILE_MIN_BUILD} or later), and the controller was told this host has a newer build "
        "(target_os_build, robot_os_build or gathered facts); correct that value and the controller re-encodes "
        "the file with the legacy profile (3DES, SHA-1 MAC) for this host"
    ),
    "no_user_credentials": (
        "a CurrentUser import needs the robot user's credentials and loaded profile, and this logon ({identity}) "
        "is a network logon or has no loaded profile; run the task with become: true, become_method: runas, "
        "become_user: <the robot user> and its become_password"
    ),
    "bad_password": (
        "Windows rejected the PKCS#12 password although it opens on the controller; on builds before "
        f"{MODERN_PROFILE_MIN_BUILD} this means the encryption profile is unsupported: re-export it with the "
        "legacy profile (3DES, SHA-1 MAC)"
    ),
    "store_access_denied": (
        "access to the certificate store {store} was denied for {identity}; LocalMachine stores and "
        "LocalMachine\\Root need an administrator, CurrentUser stores need become as the store's user"
    ),
    "key_not_usable": (
        "the certificate {thumbprint} was imported to {store} but its private key does not open: {detail}"
    ),
    "key_readers": "{detail}",
}


@dataclass(frozen=True)
class Pkcs12Payload:
    """The PKCS#12 bytes the host receives, chosen on the controller for the host's build."""

    data: bytes = field(repr=False)
    # profile and minimum build of DATA, which the host checks against its own build
    profile: str
    min_build: int
    # a legacy re-encoding sent beside DATA when the build is unknown: the host picks by its build
    legacy_fallback: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Placement:
    """One chain certificate and the store the controller chose for it."""

    thumbprint: str
    subject: str
    role: str
    store_location: str
    store_name: str
    der_b64: str

    def as_module_arg(self) -> dict[str, str]:
        return {
            "thumbprint": self.thumbprint,
            "subject": self.subject,
            "role": self.role,
            "store_location": self.store_location,
            "store_name": self.store_name,
            "der_b64": self.der_b64,
        }


@dataclass(frozen=True)
class ImportPlan:
    """Everything the host needs to know about the leaf, computed once on the controller."""

    thumbprint: str
    subject: str
    subject_der_b64: str
    issuer: str
    not_before: str
    not_after: str
    key_algorithm: str
    purpose: str | None
    eku_oid: str | None
    profile: str
    min_build: int
    friendly_name: str | None
    placements: tuple[Placement, ...]
    skipped_chain: tuple[str, ...]

    def as_module_arg(self) -> dict[str, t.Any]:
        return {
            "thumbprint": self.thumbprint,
            "subject": self.subject,
            "subject_der_b64": self.subject_der_b64,
            "not_after": self.not_after,
            "key_algorithm": self.key_algorithm,
            "eku_oid": self.eku_oid,
            "profile": self.profile,
            "min_build": self.min_build,
            "friendly_name": self.friendly_name,
            "placements": [p.as_module_arg() for p in self.placements],
        }


def decode_pkcs12_content(content: str) -> bytes:
    """Decode the base64 text of O(pkcs12_content), refusing anything that is not base64."""
    text = "".join(content.split())
    if text.startswith("-----BEGIN"):
        raise WindowsPrepError(
            "pkcs12_content is PEM text, not a base64 PKCS#12; give the base64 of the .p12/.pfx file "
            "(for example the output of 'base64 -w0 robot.p12')"
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WindowsPrepError(
            f"pkcs12_content is not valid base64 ({exc}); give the base64 of the .p12/.pfx file"
        ) from exc


def _uses_pbes2(data: bytes, profile: str) -> bool:
    """Any PBES2 bag, not only the exact modern profile, needs the newer Windows import code."""
    if profile == "modern":
        return True
    algorithms = pkcs12_algorithms(data) or {}
    used = algorithms.get("key", []) + algorithms.get("certificates", [])
    return any(name.startswith(_OID_PBES2) for name in used)


def _key_algorithm(key: object) -> str:
    if key is None:
        return "none"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ECDSA"
    return type(key).__name__


def plan_placements(
    leaf: x509.Certificate,
    chain: t.Sequence[x509.Certificate],
    *,
    mode: str,
    store_location: str,
) -> tuple[tuple[Placement, ...], tuple[str, ...]]:
    """Intermediates to <store_location>\\CA, roots to LocalMachine\\Root, never CurrentUser\\Root.

    Returns the placements and the thumbprints left out by O(chain)."""
    if mode not in CHAIN_MODES:
        raise WindowsPrepError(
            f"chain must be one of {', '.join(CHAIN_MODES)}, got {mode!r}"
        )
    placements: list[Placement] = []
    skipped: list[str] = []
    leaf_thumbprint = thumbprint(leaf)
    seen = {leaf_thumbprint}
    candidates = list(chain)
    # A self-signed leaf is its own root: with chain=all its certificate (never its key) goes to Root too.
    if is_self_signed(leaf):
        candidates.append(leaf)
        seen.discard(leaf_thumbprint)
    for cert in candidates:
        tp = thumbprint(cert)
        if tp in seen:
            continue
        seen.add(tp)
        is_root = is_self_signed(cert)
        if mode == "none" or (is_root and mode != "all"):
            skipped.append(tp)
            continue
        placements.append(
            Placement(
                thumbprint=tp,
                subject=cert.subject.rfc4514_string(),
                role="root" if is_root else "intermediate",
                store_location=ROOT_STORE_LOCATION if is_root else store_location,
                store_name=ROOT_STORE if is_root else INTERMEDIATE_STORE,
                der_b64=base64.b64encode(cert.public_bytes(Encoding.DER)).decode(
                    "ascii"
                ),
            )
        )
    return tuple(placements), tuple(skipped)


def open_pkcs12(
    data: bytes, passphrase: str | None, *, source: str, require_key: bool = True
) -> Pkcs12Contents:
    """Decrypt the PKCS#12 on the controller, once per task: the plan and the payload both use it."""
    if not HAS_CRYPTOGRAPHY:
        raise WindowsPrepError(
            f"win_cert_import opens the PKCS#12 on the controller and needs cryptography >= "
            f"{MINIMUM_CRYPTOGRAPHY_VERSION} there; install it in the controller's Python"
        )
    try:
        return load_pkcs12(data, passphrase, source=source, require_key=require_key)
    except CertificateError as exc:
        raise WindowsPrepError(str(exc)) from exc


def build_import_plan(
    data: bytes,
    passphrase: str | None,
    *,
    source: str,
    purpose: str | None,
    store_location: str,
    chain: str,
    friendly_name: str | None,
    for_removal: bool = False,
    now: datetime.datetime | None = None,
    contents: Pkcs12Contents | None = None,
) -> ImportPlan:
    """Decide everything about the import that does not need the host.

    CONTENTS is DATA already opened by open_pkcs12; without it DATA is opened here.
    FOR_REMOVAL skips the key, purpose and expiry checks: an expired certificate must stay removable."""
    if store_location not in STORE_LOCATIONS:
        raise WindowsPrepError(
            f"store_location must be one of {', '.join(STORE_LOCATIONS)}, got {store_location!r}"
        )
    if contents is None:
        contents = open_pkcs12(
            data, passphrase, source=source, require_key=not for_removal
        )
    leaf = contents.certificate
    tp = thumbprint(leaf)

    eku_oid: str | None = None
    if purpose is not None and not for_removal:
        if purpose not in PURPOSE_EKU:
            raise WindowsPrepError(
                f"purpose must be one of {', '.join(sorted(PURPOSE_EKU))}, got {purpose!r}"
            )
        eku_oid = PURPOSE_EKU[purpose].dotted_string
        if not cert_allows_purpose(leaf, purpose):
            raise WindowsPrepError(
                f"the certificate {leaf.subject.rfc4514_string()} ({tp}) in {source} does not allow {purpose} "
                f"(extended key usage {eku_oid} missing); Windows would not offer it for that use: "
                "issue a certificate with that EKU"
            )

    try:
        if not for_removal:
            check_not_expired(
                leaf,
                what=f"the certificate {leaf.subject.rfc4514_string()} ({tp}) in {source}",
                now=now,
            )
    except CertificateError as exc:
        raise WindowsPrepError(str(exc)) from exc
    summary = cert_summary(leaf)

    placements, skipped = plan_placements(
        leaf, contents.chain, mode=chain, store_location=store_location
    )
    return ImportPlan(
        thumbprint=tp,
        subject=leaf.subject.rfc4514_string(),
        subject_der_b64=base64.b64encode(leaf.subject.public_bytes()).decode("ascii"),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=summary["not_before"],
        not_after=summary["not_after"],
        key_algorithm=_key_algorithm(contents.private_key),
        purpose=purpose,
        eku_oid=eku_oid,
        profile=contents.profile,
        min_build=MODERN_PROFILE_MIN_BUILD
        if _uses_pbes2(data, contents.profile)
        else 0,
        friendly_name=friendly_name or contents.friendly_name,
        placements=placements,
        skipped_chain=skipped,
    )


def parse_os_build(version: object) -> int | None:
    """The build number from a Windows version such as '10.0.17763.0' (ansible_distribution_version)."""
    if isinstance(version, int):
        return version
    if not isinstance(version, str):
        return None
    parts = version.strip().split(".")
    if len(parts) >= 3 and parts[2].isdigit():
        return int(parts[2])
    if len(parts) == 1 and parts[0].isdigit():
        return int(parts[0])
    return None


def choose_payload(
    data: bytes,
    contents: Pkcs12Contents,
    plan: ImportPlan,
    *,
    passphrase: str | None,
    build: int | None,
    source: str,
) -> Pkcs12Payload:
    """The PKCS#12 a host of BUILD (None: unknown) can import, without an extra module run to ask it.

    A file every build imports goes as it is, and so does a PBES2 file for a build known to read it.
    For a build known to be older, the same key and certificates are re-encoded as legacy (3DES,
    SHA-1 MAC, same passphrase) in memory and sent instead; for an unknown build both go and the
    host picks by its own build (REFERENCE 3)."""
    if not plan.min_build or (build is not None and build >= plan.min_build):
        return Pkcs12Payload(data=data, profile=plan.profile, min_build=plan.min_build)
    if not passphrase:
        what = (
            f"Windows build {build}"
            if build is not None
            else f"a Windows build below {plan.min_build}"
        )
        raise WindowsPrepError(
            f"{source} uses PBES2 (AES) encryption, which {what} cannot import, and has no passphrase to "
            "re-encode it with as legacy (3DES, SHA-1 MAC); give a passphrase-protected PKCS#12"
        )
    try:
        legacy = reencode_pkcs12(contents, passphrase=passphrase, profile="legacy")
    except CertificateError as exc:
        raise WindowsPrepError(f"cannot re-encode {source} as legacy: {exc}") from exc
    if build is not None:
        return Pkcs12Payload(data=legacy, profile="legacy", min_build=0)
    return Pkcs12Payload(
        data=data,
        profile=plan.profile,
        min_build=plan.min_build,
        legacy_fallback=legacy,
    )


def check_become(
    *, store_location: str, key_storage: str, become_method: str | None
) -> None:
    """A user keyset needs the user's credentials on the host: only become (runas) gives them over WinRM."""
    uses_user_keys = key_storage == "user" or (
        key_storage == "auto" and store_location == "CurrentUser"
    )
    if not uses_user_keys and store_location != "CurrentUser":
        return
    method = (become_method or "").rsplit(".", 1)[-1]
    if method != "runas":
        what = (
            "a CurrentUser import"
            if store_location == "CurrentUser"
            else "a user key (key_storage=user)"
        )
        raise WindowsPrepError(
            f"{what} needs the robot user's credentials and profile on the host, which a WinRM logon does not "
            "have; run the task with become: true, become_method: runas, become_user: <the robot user>"
        )


def build_module_args(
    plan: ImportPlan | None,
    params: t.Mapping[str, t.Any],
    *,
    payload: Pkcs12Payload | None,
    passphrase: str | None,
) -> dict[str, t.Any]:
    """The arguments of the PowerShell module: host options, the chosen PKCS#12 bytes and the plan."""
    args: dict[str, t.Any] = {
        "state": params["state"],
        "store_location": params["store_location"],
        "store_name": params["store_name"],
        "key_storage": params["key_storage"],
        "exportable": params["exportable"],
        "remove_superseded": params["remove_superseded"],
        "key_readers": list(params.get("key_readers") or []),
        "key_readers_exact": params["key_readers_exact"],
    }
    if plan is None:
        args["thumbprint"] = normalise_thumbprint(params["thumbprint"])
        return args
    args["thumbprint"] = plan.thumbprint
    args["friendly_name"] = plan.friendly_name
    args["_plan"] = plan.as_module_arg()
    if params["state"] == "present" and payload is not None:
        # The host checks its build against what it receives, which may be the re-encoding.
        args["_plan"].update(profile=payload.profile, min_build=payload.min_build)
        args["_pkcs12_content"] = base64.b64encode(payload.data).decode("ascii")
        args["_pkcs12_passphrase"] = passphrase or ""
        if payload.legacy_fallback is not None:
            args["_pkcs12_legacy_content"] = base64.b64encode(
                payload.legacy_fallback
            ).decode("ascii")
    return args


def normalise_thumbprint(value: str) -> str:
    """Windows shows thumbprints with spaces or colons and in any case; compare the bare hex."""
    cleaned = "".join(ch for ch in value if ch.isalnum()).upper()
    if len(cleaned) != 40 or any(ch not in "0123456789ABCDEF" for ch in cleaned):
        raise WindowsPrepError(
            f"thumbprint {value!r} is not 40 hexadecimal digits (a SHA-1 thumbprint)"
        )
    return cleaned


# Keys of the module answer copied to the task result as they are.
RESULT_KEYS = (
    "changed",
    "thumbprint",
    "subject",
    "not_after",
    "store",
    "friendly_name",
    "has_private_key",
    "key_provider",
    "machine_key",
    "exportable",
    "chain",
    "superseded",
    "identity",
    "key_acl",
    "os_build",
    "warnings",
    "deprecations",
    "diff",
    "failed",
    "msg",
    "exception",
    "skipped",
    # A crash of the PowerShell module: its error record and exit code, never its raw stdout.
    "module_stderr",
    "rc",
)


def interpret_module_result(
    answer: t.Mapping[str, t.Any],
    *,
    plan: ImportPlan | None,
    payload: Pkcs12Payload | None = None,
) -> dict[str, t.Any]:
    """Turn the PowerShell answer into the task result, replacing coded errors with full messages."""
    result: dict[str, t.Any] = {
        key: answer[key] for key in RESULT_KEYS if key in answer
    }
    result.setdefault("changed", False)

    error = answer.get("error")
    if answer.get("failed") or error:
        result["failed"] = True
        code = error.get("code") if isinstance(error, t.Mapping) else None
        hint = ERROR_HINTS.get(code or "")
        if hint is not None:
            fields = {
                "build": answer.get("os_build", "?"),
                "identity": answer.get("identity", "?"),
                "store": (error or {}).get("store") or answer.get("store", "?"),
                "thumbprint": answer.get("thumbprint")
                or (plan.thumbprint if plan else "?"),
                "detail": (error or {}).get("detail") or answer.get("msg", ""),
            }
            result["msg"] = hint.format(**fields)
            result["error_code"] = code
        elif not result.get("msg"):
            result["msg"] = "win_cert_import failed on the host without a message"
        return result

    if plan is not None:
        result.setdefault("thumbprint", plan.thumbprint)
        result.setdefault("subject", plan.subject)
        result.setdefault("not_after", plan.not_after)
        result["profile"] = plan.profile
        if payload is not None:
            # The host says which of the bytes it was sent it chose; a re-encoding is always legacy.
            chosen = answer.get("profile")
            if chosen not in (*PROFILES, "other"):
                chosen = payload.profile
            result["profile"] = chosen
            result["reencoded"] = chosen != plan.profile
        result["chain_skipped"] = list(plan.skipped_chain)
    return result


__all__ = (
    "CHAIN_MODES",
    "ERROR_HINTS",
    "INTERMEDIATE_STORE",
    "KEY_STORAGES",
    "MODERN_PROFILE_MIN_BUILD",
    "ROOT_STORE",
    "ROOT_STORE_LOCATION",
    "STORE_LOCATIONS",
    "ImportPlan",
    "Pkcs12Payload",
    "Placement",
    "build_import_plan",
    "build_module_args",
    "check_become",
    "choose_payload",
    "decode_pkcs12_content",
    "interpret_module_result",
    "normalise_thumbprint",
    "parse_os_build",
    "plan_placements",
)
