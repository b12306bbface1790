"""Controller-side decisions of win_cert_import, checked against real PKCS#12 files and openssl."""

from __future__ import annotations

import base64
import datetime
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

sys.path.insert(0, str(Path(__file__).parent))

import win_fixtures as fx  # noqa: E402

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (  # noqa: E402
    CertificateError,
    WindowsPrepError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._pkcs12 import (  # noqa: E402
    reencode_pkcs12,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._win_import import (  # noqa: E402
    ERROR_HINTS,
    build_import_plan,
    build_module_args,
    check_become,
    choose_payload,
    decode_pkcs12_content,
    interpret_module_result,
    normalise_thumbprint,
    open_pkcs12,
    parse_os_build,
)


@pytest.fixture(scope="module")
def pki() -> fx.Pki:
    return fx.make_pki()


@pytest.fixture(scope="module")
def client(pki: fx.Pki) -> tuple[object, x509.Certificate]:
    return pki.leaf("robot-01")


def openssl_sha1(cert: x509.Certificate, tmp_path: Path) -> str:
    """The thumbprint as openssl computes it: an independent check of ours."""
    path = tmp_path / "cert.pem"
    path.write_bytes(fx.pem(cert))
    out = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-fingerprint", "-sha1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().split("=", 1)[1].replace(":", "")


def plan_for(data: bytes, **kwargs):
    args = {
        "source": "pkcs12_path 'robot.p12'",
        "purpose": "client_auth",
        "store_location": "LocalMachine",
        "chain": "all",
        "friendly_name": None,
    }
    args.update(kwargs)
    passphrase = args.pop("passphrase", fx.PASSPHRASE)
    return build_import_plan(data, passphrase, **args)


def payload_for(data: bytes, plan, build, passphrase: str | None = fx.PASSPHRASE):
    contents = open_pkcs12(data, passphrase, source="pkcs12_path 'robot.p12'")
    return choose_payload(
        data,
        contents,
        plan,
        passphrase=passphrase,
        build=build,
        source="pkcs12_path 'robot.p12'",
    )


def openssl_pkcs12(path: Path, *args: str, passphrase: str = fx.PASSPHRASE) -> str:
    """openssl's own reading of a PKCS#12: -info prints the PBE algorithms and the MAC to stderr."""
    done = subprocess.run(
        ["openssl", "pkcs12", "-in", str(path), "-passin", f"pass:{passphrase}", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout + done.stderr


class TestLeafAndChain:
    def test_leaf_is_the_keyed_certificate_whatever_the_bag_order(
        self, pki, client, tmp_path
    ):
        key, leaf = client
        data = fx.p12(key, leaf, [pki.root, pki.inter])

        plan = plan_for(data)

        assert plan.thumbprint == openssl_sha1(leaf, tmp_path)
        assert plan.subject == leaf.subject.rfc4514_string()
        assert plan.key_algorithm == "RSA"
        assert plan.friendly_name == "robot-01 client"
        assert plan.eku_oid == "1.3.6.1.5.5.7.3.2"

    def test_chain_all_places_intermediate_in_ca_and_root_in_localmachine_root(
        self, pki, client, tmp_path
    ):
        key, leaf = client
        plan = plan_for(fx.p12(key, leaf, [pki.root, pki.inter]), chain="all")

        placed = {(p.role, p.store_location, p.store_name): p for p in plan.placements}
        assert set(placed) == {
            ("intermediate", "LocalMachine", "CA"),
            ("root", "LocalMachine", "Root"),
        }
        inter = placed[("intermediate", "LocalMachine", "CA")]
        root = placed[("root", "LocalMachine", "Root")]
        assert inter.thumbprint == openssl_sha1(pki.inter, tmp_path)
        assert root.thumbprint == openssl_sha1(pki.root, tmp_path)
        # What is sent is the certificate alone, as DER: no key material can ride along.
        sent = x509.load_der_x509_certificate(base64.b64decode(root.der_b64))
        assert sent == pki.root
        assert plan.skipped_chain == ()

    def test_current_user_never_gets_a_root(self, pki, client):
        key, leaf = client
        plan = plan_for(
            fx.p12(key, leaf, [pki.inter, pki.root]),
            chain="all",
            store_location="CurrentUser",
        )

        stores = {(p.role, p.store_location, p.store_name) for p in plan.placements}
        assert stores == {
            ("intermediate", "CurrentUser", "CA"),
            ("root", "LocalMachine", "Root"),
        }
        assert all(
            not (p.store_location == "CurrentUser" and p.store_name == "Root")
            for p in plan.placements
        )

    def test_chain_ca_skips_roots_and_none_skips_all(self, pki, client, tmp_path):
        key, leaf = client
        data = fx.p12(key, leaf, [pki.inter, pki.root])

        ca = plan_for(data, chain="ca")
        none = plan_for(data, chain="none")

        assert [(p.role, p.store_name) for p in ca.placements] == [
            ("intermediate", "CA")
        ]
        assert ca.skipped_chain == (openssl_sha1(pki.root, tmp_path),)
        assert none.placements == ()
        assert set(none.skipped_chain) == {
            openssl_sha1(pki.root, tmp_path),
            openssl_sha1(pki.inter, tmp_path),
        }

    def test_self_signed_leaf_goes_to_root_only_with_chain_all(self, tmp_path):
        key, cert = fx.self_signed()
        data = fx.p12(key, cert)

        with_all = plan_for(data, purpose="code_signing", chain="all")
        with_ca = plan_for(data, purpose="code_signing", chain="ca")

        assert [
            (p.role, p.store_location, p.store_name, p.thumbprint)
            for p in with_all.placements
        ] == [("root", "LocalMachine", "Root", openssl_sha1(cert, tmp_path))]
        assert with_ca.placements == ()

    def test_ecdsa_leaf(self, pki):
        key, leaf = pki.leaf("robot-ec", key=fx.ec_key())

        plan = plan_for(fx.p12(key, leaf, [pki.inter]))

        assert plan.key_algorithm == "ECDSA"

    def test_friendly_name_option_wins_over_the_bag(self, pki, client):
        key, leaf = client

        plan = plan_for(fx.p12(key, leaf), friendly_name="Robot mTLS 2026")

        assert plan.friendly_name == "Robot mTLS 2026"


class TestChecks:
    def test_purpose_must_match_the_eku(self, client):
        key, leaf = client

        with pytest.raises(
            WindowsPrepError,
            match=r"does not allow code_signing \(extended key usage 1\.3\.6\.1\.5\.5\.7\.3\.3 missing\)",
        ):
            plan_for(fx.p12(key, leaf), purpose="code_signing")

    def test_missing_eku_is_refused(self, pki):
        key, leaf = pki.leaf("robot-noeku", ekus=[ExtendedKeyUsageOID.SERVER_AUTH])

        with pytest.raises(
            WindowsPrepError,
            match=r"does not allow client_auth .*1\.3\.6\.1\.5\.5\.7\.3\.2",
        ):
            plan_for(fx.p12(key, leaf))

    def test_expired_certificate_is_refused_but_removable(self, pki):
        past = fx.NOW - datetime.timedelta(days=1)
        key, leaf = pki.leaf("robot-old", not_after=past)
        data = fx.p12(key, leaf)

        with pytest.raises(WindowsPrepError, match="expired on"):
            plan_for(data)
        assert (
            plan_for(data, for_removal=True).thumbprint
            == leaf.fingerprint(fx.hashes.SHA1()).hex().upper()
        )

    def test_base64_text_file_is_named_as_such(self, client, tmp_path):
        key, leaf = client
        text = base64.encodebytes(fx.p12(key, leaf))

        with pytest.raises(
            WindowsPrepError, match="base64 text, not the binary PKCS#12"
        ) as err:
            plan_for(text)
        assert "\n" not in str(err.value)

    def test_pem_given_where_pkcs12_expected(self, client):
        leaf = client[1]

        with pytest.raises(WindowsPrepError, match="is a PEM file, not a PKCS#12"):
            plan_for(fx.pem(leaf))

    def test_certificate_only_pkcs12(self, pki, tmp_path):
        # A trust-store style file made by openssl: certificates, no key bag.
        (tmp_path / "root.pem").write_bytes(fx.pem(pki.root))
        out = tmp_path / "trust.p12"
        subprocess.run(
            [
                "openssl",
                "pkcs12",
                "-export",
                "-nokeys",
                "-in",
                str(tmp_path / "root.pem"),
                "-out",
                str(out),
                "-passout",
                "pass:" + fx.PASSPHRASE,
            ],
            check=True,
            capture_output=True,
        )

        with pytest.raises(WindowsPrepError, match="holds no private key"):
            plan_for(out.read_bytes())

    def test_wrong_password(self, client):
        key, leaf = client

        with pytest.raises(WindowsPrepError, match="wrong pkcs12 passphrase") as err:
            plan_for(fx.p12(key, leaf), passphrase="not-the-password")
        assert "not-the-password" not in str(err.value)
        assert fx.PASSPHRASE not in str(err.value)


@pytest.fixture(scope="module")
def pem_pair(tmp_path_factory, pki):
    folder = tmp_path_factory.mktemp("openssl")
    key, leaf = pki.leaf("robot-openssl")
    (folder / "leaf.pem").write_bytes(fx.pem(leaf))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            fx.serialization.Encoding.PEM,
            fx.serialization.PrivateFormat.PKCS8,
            fx.serialization.NoEncryption(),
        )
    )
    return folder


class TestProfile:
    def _openssl_p12(self, folder: Path, *extra: str) -> bytes:
        out = folder / "out.p12"
        cmd = [
            "openssl",
            "pkcs12",
            "-export",
            "-in",
            str(folder / "leaf.pem"),
            "-inkey",
            str(folder / "key.pem"),
        ]
        cmd += ["-out", str(out), "-passout", "pass:" + fx.PASSPHRASE, *extra]
        subprocess.run(cmd, check=True, capture_output=True)
        return out.read_bytes()

    def test_openssl3_default_is_modern_and_needs_17763(self, pem_pair):
        data = self._openssl_p12(pem_pair)
        plan = plan_for(data)

        assert plan.profile == "modern"
        assert plan.min_build == 17763
        assert payload_for(data, plan, 17763).data == data
        assert payload_for(data, plan, 14393).profile == "legacy"

    def test_openssl_legacy_3des_imports_everywhere(self, pem_pair):
        data = self._openssl_p12(
            pem_pair,
            "-certpbe",
            "PBE-SHA1-3DES",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
        )
        plan = plan_for(data)

        assert plan.profile == "legacy"
        assert plan.min_build == 0
        for build in (None, 9600, 17763):
            payload = payload_for(data, plan, build)
            assert payload.data == data
            assert payload.legacy_fallback is None
            assert payload.min_build == 0

    def test_other_pbes2_variants_also_need_17763(self, pem_pair):
        data = self._openssl_p12(
            pem_pair, "-certpbe", "AES-128-CBC", "-keypbe", "AES-128-CBC"
        )
        plan = plan_for(data)

        assert plan.profile == "other"
        assert plan.min_build == 17763
        assert payload_for(data, plan, 14393).profile == "legacy"

    @pytest.mark.parametrize(
        ("vector", "profile", "min_build", "openssl_pbe"),
        [
            # Older OpenSSL and Windows exports: RC2-40 certificates, 3DES key; every build imports it.
            ("cert-rc2-key-3des.p12", "other", 0, "pbeWithSHA1And40BitRC2-CBC"),
            # AES-256 with a SHA-1 MAC is not the exact modern profile, yet PBES2 still needs build 17763.
            ("cert-key-aes256cbc.p12", "other", 17763, "PBES2, PBKDF2, AES-256-CBC"),
        ],
    )
    def test_real_world_vectors(
        self, tmp_path, vector, profile, min_build, openssl_pbe
    ):
        import cryptography_vectors

        data = cryptography_vectors.open_vector_file(f"pkcs12/{vector}", "rb").read()
        path = tmp_path / vector
        path.write_bytes(data)
        info = subprocess.run(
            [
                "openssl",
                "pkcs12",
                "-in",
                str(path),
                "-passin",
                "pass:cryptography",
                "-info",
                "-noout",
                "-legacy",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        certs = subprocess.run(
            [
                "openssl",
                "pkcs12",
                "-in",
                str(path),
                "-passin",
                "pass:cryptography",
                "-nokeys",
                "-clcerts",
                "-legacy",
            ],
            capture_output=True,
            check=True,
        ).stdout

        plan = plan_for(data, passphrase="cryptography", purpose=None)

        assert openssl_pbe in info
        assert plan.profile == profile
        assert plan.min_build == min_build
        assert plan.thumbprint == openssl_sha1(
            x509.load_pem_x509_certificate(certs), tmp_path
        )
        assert plan.key_algorithm == "ECDSA"

    @pytest.mark.parametrize(
        ("value", "build"),
        [
            ("10.0.17763.0", 17763),
            ("10.0.14393", 14393),
            ("6.3.9600.0", 9600),
            (20348, 20348),
            ("", None),
            (None, None),
            ("Server", None),
        ],
    )
    def test_parse_os_build(self, value, build):
        assert parse_os_build(value) == build


def key_in(path: Path) -> object:
    """The private key openssl decrypts from a PKCS#12 (openssl does the PKCS#12 work, not our code)."""
    pem = openssl_pkcs12(path, "-nocerts", "-nodes")
    return fx.serialization.load_pem_private_key(
        pem[pem.index("-----BEGIN") :].encode(), password=None
    )


def certs_in(path: Path, which: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(
        openssl_pkcs12(path, "-nokeys", which).encode()
    )


class TestPayload:
    """Which bytes reach the host, and that a re-encoding is the same identity in the legacy profile."""

    @pytest.fixture
    def modern(self, pki, client) -> bytes:
        return fx.p12(*client, [pki.inter, pki.root], profile="modern")

    def test_known_old_build_gets_only_a_legacy_reencoding(
        self, pki, client, modern, tmp_path
    ):
        key, leaf = client
        plan = plan_for(modern)

        payload = payload_for(modern, plan, 14393)

        assert (payload.profile, payload.min_build) == ("legacy", 0)
        assert payload.legacy_fallback is None
        path = tmp_path / "reencoded.p12"
        path.write_bytes(payload.data)
        info = openssl_pkcs12(path, "-info", "-noout")
        assert "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC" in info
        assert "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC" in info
        assert "MAC: sha1" in info
        assert "PBES2" not in info and "AES" not in info
        # The same key, leaf, chain and friendly name, read back by openssl, not by our parser.
        assert key_in(path).private_numbers() == key.private_numbers()
        assert certs_in(path, "-clcerts") == [leaf]
        assert set(certs_in(path, "-cacerts")) == {pki.inter, pki.root}
        assert "friendlyName: robot-01 client" in openssl_pkcs12(
            path, "-nokeys", "-clcerts"
        )
        assert openssl_sha1(certs_in(path, "-clcerts")[0], tmp_path) == plan.thumbprint

    def test_reencoding_opens_in_java(self, client, modern, tmp_path):
        path = tmp_path / "reencoded.p12"
        path.write_bytes(payload_for(modern, plan_for(modern), 9600).data)

        listing = subprocess.run(
            ["keytool", "-list", "-v", "-storetype", "PKCS12", "-keystore", str(path)]
            + ["-storepass", fx.PASSPHRASE],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

        assert "Entry type: PrivateKeyEntry" in listing
        assert "Certificate chain length: 3" in listing
        assert "robot-01 client" in listing

    @pytest.mark.parametrize("build", [17763, 20348, 26100])
    def test_known_new_build_gets_the_file_as_it_is(self, modern, build):
        plan = plan_for(modern)

        payload = payload_for(modern, plan, build)

        assert payload.data == modern
        assert (payload.profile, payload.min_build) == ("modern", 17763)
        assert payload.legacy_fallback is None

    def test_unknown_build_gets_both_and_the_host_chooses(
        self, client, modern, tmp_path
    ):
        key, leaf = client
        plan = plan_for(modern)

        payload = payload_for(modern, plan, None)

        assert payload.data == modern
        assert (payload.profile, payload.min_build) == ("modern", 17763)
        assert payload.legacy_fallback is not None
        path = tmp_path / "fallback.p12"
        path.write_bytes(payload.legacy_fallback)
        info = openssl_pkcs12(path, "-info", "-noout")
        assert "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC" in info
        assert "MAC: sha1" in info
        assert certs_in(path, "-clcerts") == [leaf]

    def test_reencoding_keeps_the_passphrase_out_of_its_repr(self, modern):
        payload = payload_for(modern, plan_for(modern), None)

        assert fx.PASSPHRASE not in repr(payload)
        assert base64.b64encode(payload.data).decode()[:40] not in repr(payload)

    def test_a_file_without_key_is_not_reencoded(self, pki, tmp_path):
        (tmp_path / "root.pem").write_bytes(fx.pem(pki.root))
        out = tmp_path / "trust.p12"
        subprocess.run(
            [
                "openssl",
                "pkcs12",
                "-export",
                "-nokeys",
                "-in",
                str(tmp_path / "root.pem"),
            ]
            + ["-out", str(out), "-passout", "pass:" + fx.PASSPHRASE],
            check=True,
            capture_output=True,
        )
        contents = open_pkcs12(
            out.read_bytes(), fx.PASSPHRASE, source="trust.p12", require_key=False
        )

        with pytest.raises(CertificateError, match="holds no private key"):
            reencode_pkcs12(contents, passphrase=fx.PASSPHRASE, profile="legacy")

    def test_modern_file_without_passphrase_cannot_be_reencoded(self, pem_pair):
        out = pem_pair / "nopass.p12"
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-in", str(pem_pair / "leaf.pem")]
            + [
                "-inkey",
                str(pem_pair / "key.pem"),
                "-passout",
                "pass:",
                "-out",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        data = out.read_bytes()
        plan = plan_for(data, passphrase=None)

        assert payload_for(data, plan, 17763, passphrase=None).data == data
        with pytest.raises(
            WindowsPrepError,
            match=r"Windows build 14393 cannot import, and has no passphrase to re-encode it",
        ) as err:
            payload_for(data, plan, 14393, passphrase=None)
        assert "\n" not in str(err.value)


class TestInputs:
    def test_content_must_be_base64(self):
        with pytest.raises(
            WindowsPrepError, match="pkcs12_content is not valid base64"
        ):
            decode_pkcs12_content("this is %% not base64")

    def test_content_pem_is_named(self, client):
        with pytest.raises(WindowsPrepError, match="pkcs12_content is PEM text"):
            decode_pkcs12_content(fx.pem(client[1]).decode())

    def test_content_wrapped_base64_decodes(self, client):
        data = fx.p12(*client)

        assert decode_pkcs12_content(base64.encodebytes(data).decode()) == data

    @pytest.mark.parametrize("value", ["ab cd", "Z" * 40, "A" * 39])
    def test_bad_thumbprint(self, value):
        with pytest.raises(WindowsPrepError, match="is not 40 hexadecimal digits"):
            normalise_thumbprint(value)

    def test_thumbprint_as_windows_shows_it(self):
        assert normalise_thumbprint("ab:cd " + "0" * 36) == "ABCD" + "0" * 36

    @pytest.mark.parametrize(
        ("location", "storage", "method", "fails"),
        [
            ("CurrentUser", "auto", None, True),
            ("CurrentUser", "auto", "ansible.builtin.runas", False),
            ("CurrentUser", "auto", "runas", False),
            ("CurrentUser", "machine", None, True),
            ("LocalMachine", "user", None, True),
            ("LocalMachine", "auto", None, False),
            ("LocalMachine", "machine", None, False),
        ],
    )
    def test_user_keys_need_become_runas(self, location, storage, method, fails):
        if fails:
            with pytest.raises(
                WindowsPrepError, match="become: true, become_method: runas"
            ):
                check_become(
                    store_location=location, key_storage=storage, become_method=method
                )
        else:
            check_become(
                store_location=location, key_storage=storage, become_method=method
            )


PARAMS = {
    "state": "present",
    "store_location": "LocalMachine",
    "store_name": "My",
    "key_storage": "auto",
    "exportable": False,
    "remove_superseded": True,
    "key_readers": ["NT SERVICE\\RobotSvc"],
    "key_readers_exact": True,
    "thumbprint": None,
}


class TestModuleArgs:
    def test_present_sends_bytes_and_plan(self, pki, client):
        data = fx.p12(*client, [pki.inter, pki.root])
        plan = plan_for(data)

        payload = payload_for(data, plan, None)

        args = build_module_args(
            plan, PARAMS, payload=payload, passphrase=fx.PASSPHRASE
        )

        assert base64.b64decode(args["_pkcs12_content"]) == data
        assert args["_pkcs12_passphrase"] == fx.PASSPHRASE
        assert args["thumbprint"] == plan.thumbprint
        assert args["_plan"]["min_build"] == 0
        assert "_pkcs12_legacy_content" not in args
        assert [p["store_name"] for p in args["_plan"]["placements"]] == ["CA", "Root"]
        assert args["key_readers"] == ["NT SERVICE\\RobotSvc"]
        assert args["key_readers_exact"] is True
        # Only the leaf's PFX carries a key; placements are certificates.
        assert all(
            set(p)
            == {
                "thumbprint",
                "subject",
                "role",
                "store_location",
                "store_name",
                "der_b64",
            }
            for p in args["_plan"]["placements"]
        )

    def test_absent_by_thumbprint_sends_no_pkcs12(self):
        args = build_module_args(
            None,
            dict(PARAMS, state="absent", thumbprint="ab" * 20),
            payload=None,
            passphrase=None,
        )

        assert args["thumbprint"] == "AB" * 20
        assert "_pkcs12_content" not in args
        assert "_pkcs12_passphrase" not in args

    def test_absent_from_pkcs12_sends_only_the_thumbprint(self, client):
        data = fx.p12(*client)
        plan = plan_for(data, for_removal=True)

        payload = payload_for(data, plan, None)

        args = build_module_args(
            plan,
            dict(PARAMS, state="absent"),
            payload=payload,
            passphrase=fx.PASSPHRASE,
        )

        assert args["thumbprint"] == plan.thumbprint
        assert "_pkcs12_content" not in args
        assert fx.PASSPHRASE not in repr(args)

    def test_unknown_build_sends_the_file_and_its_legacy_reencoding(self, pki, client):
        data = fx.p12(*client, [pki.inter], profile="modern")
        plan = plan_for(data)
        payload = payload_for(data, plan, None)

        args = build_module_args(
            plan, PARAMS, payload=payload, passphrase=fx.PASSPHRASE
        )

        assert base64.b64decode(args["_pkcs12_content"]) == data
        assert (
            base64.b64decode(args["_pkcs12_legacy_content"]) == payload.legacy_fallback
        )
        assert (args["_plan"]["profile"], args["_plan"]["min_build"]) == (
            "modern",
            17763,
        )

    def test_known_old_build_sends_only_the_reencoding_as_importable_everywhere(
        self, pki, client
    ):
        data = fx.p12(*client, [pki.inter], profile="modern")
        plan = plan_for(data)
        payload = payload_for(data, plan, 14393)

        args = build_module_args(
            plan, PARAMS, payload=payload, passphrase=fx.PASSPHRASE
        )

        assert base64.b64decode(args["_pkcs12_content"]) == payload.data != data
        assert "_pkcs12_legacy_content" not in args
        # The host's own build check then lets it through on any build.
        assert (args["_plan"]["profile"], args["_plan"]["min_build"]) == ("legacy", 0)
        assert plan.min_build == 17763


class TestModuleAnswer:
    def test_success_keeps_facts_and_adds_plan_facts(self, client):
        plan = plan_for(fx.p12(*client), chain="ca")
        answer = {
            "changed": True,
            "thumbprint": plan.thumbprint,
            "store": "LocalMachine\\My",
            "machine_key": True,
            "key_provider": "Microsoft Enhanced RSA and AES Cryptographic Provider",
            "identity": "EXAMPLE\\ansible",
            "chain": [],
            "invocation": {
                "module_args": {
                    "_pkcs12_passphrase": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
                }
            },
            "diff": {"before": {"state": "absent"}, "after": {"state": "present"}},
        }

        result = interpret_module_result(answer, plan=plan)

        assert result["changed"] is True
        assert result["machine_key"] is True
        assert result["not_after"] == plan.not_after
        assert result["profile"] == "legacy"
        assert result["diff"]["after"] == {"state": "present"}
        assert "invocation" not in result
        assert "failed" not in result

    @pytest.mark.parametrize(
        ("build", "host_says", "profile", "reencoded"),
        [
            (None, "modern", "modern", False),
            (None, "legacy", "legacy", True),
            (14393, "legacy", "legacy", True),
            (14393, None, "legacy", True),
            (17763, "modern", "modern", False),
            (17763, "nonsense", "modern", False),
        ],
    )
    def test_profile_is_what_the_host_chose(
        self, client, build, host_says, profile, reencoded
    ):
        data = fx.p12(*client, profile="modern")
        plan = plan_for(data)
        payload = payload_for(data, plan, build)
        answer = {"changed": True, "thumbprint": plan.thumbprint}
        if host_says is not None:
            answer["profile"] = host_says

        result = interpret_module_result(answer, plan=plan, payload=payload)

        assert (result["profile"], result["reencoded"]) == (profile, reencoded)

    def test_legacy_file_is_never_reported_reencoded(self, client):
        data = fx.p12(*client)
        plan = plan_for(data)

        result = interpret_module_result(
            {"changed": False, "profile": "legacy"},
            plan=plan,
            payload=payload_for(data, plan, None),
        )

        assert (result["profile"], result["reencoded"]) == ("legacy", False)

    def test_unchanged(self, client):
        plan = plan_for(fx.p12(*client))

        result = interpret_module_result(
            {"changed": False, "thumbprint": plan.thumbprint}, plan=plan
        )

        assert result["changed"] is False

    @pytest.mark.parametrize(
        ("error", "extra", "expected"),
        [
            (
                {"code": "os_build"},
                {"os_build": 14393},
                "Windows build 14393 cannot import",
            ),
            (
                {"code": "no_user_credentials"},
                {"identity": "EXAMPLE\\robot"},
                "this logon (EXAMPLE\\robot) is a network logon",
            ),
            ({"code": "bad_password"}, {}, "legacy profile"),
            (
                {"code": "store_access_denied", "store": "LocalMachine\\Root"},
                {"identity": "EXAMPLE\\robot"},
                "store LocalMachine\\Root was denied for EXAMPLE\\robot",
            ),
            (
                {"code": "key_not_usable", "detail": "Keyset does not exist"},
                {},
                "private key does not open: Keyset does not exist",
            ),
            (
                {
                    "code": "key_readers",
                    "detail": "account 'nobody' could not be resolved to a SID",
                },
                {},
                "account 'nobody' could not be resolved",
            ),
        ],
    )
    def test_error_answers_get_their_fix(self, client, error, extra, expected):
        plan = plan_for(fx.p12(*client))
        answer = {"failed": True, "msg": "host said no", "error": error, **extra}

        result = interpret_module_result(answer, plan=plan)

        assert result["failed"] is True
        assert expected in result["msg"]
        assert result["error_code"] == error["code"]
        assert "\n" not in result["msg"]

    def test_every_error_code_has_a_hint(self):
        assert set(ERROR_HINTS) == {
            "os_build",
            "no_user_credentials",
            "bad_password",
            "store_access_denied",
            "key_not_usable",
            "key_readers",
        }

    def test_unknown_failure_keeps_the_host_message(self):
        result = interpret_module_result(
            {"failed": True, "msg": "Cannot find drive Cert"}, plan=None
        )

        assert result == {
            "failed": True,
            "changed": False,
            "msg": "Cannot find drive Cert",
        }

    def test_failure_without_message_still_says_something(self):
        result = interpret_module_result({"failed": True}, plan=None)

        assert result["msg"] == "win_cert_import failed on the host without a message"
