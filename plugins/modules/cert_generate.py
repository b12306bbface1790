#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cert_generate
short_description: Issue and renew a robot's key and certificate (client authentication, code signing or CA) on the controller
version_added: 0.1.0
description:
  - Makes a private key and an X.509 certificate in one task, the way KeyStore Explorer does for ServiceNow RPA Hub
    robots (generate the key pair, fill in the subject, pick the extensions, sign), with one profile per robot use.
  - O(purpose=client_auth) gives the Unattended Robot's mutual TLS certificate (EKU clientAuth, key usage
    digitalSignature, plus keyEncipherment for RSA). O(purpose=code_signing) gives Design Studio's package signing
    certificate (EKU codeSigning, key usage digitalSignature). O(purpose=ca) gives a robot CA (basicConstraints CA:TRUE,
    key usage keyCertSign and cRLSign) that issues the others.
  - With O(issuer_cert_path) and O(issuer_privatekey_path) the certificate is issued by that CA; without them it is
    self-signed. A self-signed O(purpose=ca) certificate is a root CA; any other self-signed certificate draws a warning,
    because ServiceNow blocks self-signed certificates for certificate-based authentication by default.
  - The common name is never copied into a DNS subject alternative name (a robot is not a host); an O(subject.email_address)
    is repeated as an e-mail subject alternative name, as RFC 5280 asks. Certificates lint clean under pkilint.
  - Idempotent. The key and certificate are kept while they match the options, the issuer still verifies the certificate
    and it expires later than O(renew_before_days) from now. Otherwise the certificate is renewed, keeping the key unless
    O(key_type), O(key_size), O(curve) changed or O(force=true).
  - Runs in the controller process (action plugin), so a fleet run ships no module to the robots.
author:
  - snowrpa.robot_certs contributors (@snowrpa)
extends_documentation_fragment:
  - snowrpa.robot_certs.cryptography_dep
options:
  path:
    description:
      - Certificate file (PEM) to create or keep, on the controller. Written with mode C(0644).
    type: path
    required: true
  privatekey_path:
    description:
      - Private key file (PKCS#8 PEM) to create or keep, on the controller. Written atomically with mode C(0600);
        missing parent folders are created with mode C(0700).
    type: path
    required: true
  privatekey_passphrase:
    description:
      - Passphrase that encrypts the key file. Without it the key file is not encrypted.
      - Adding or removing the passphrase rewrites the key file with the same key.
    type: str
  purpose:
    description:
      - The certificate profile.
    type: str
    choices: [client_auth, code_signing, ca]
    default: client_auth
  subject:
    description:
      - Subject distinguished name. Give at least O(subject.common_name), or O(subject_alt_names).
    type: dict
    suboptions:
      common_name:
        description: Common name (CN), for example the robot's name. At most 64 characters.
        type: str
      organization_name:
        description: Organization (O).
        type: str
      organizational_unit_name:
        description: Organizational unit (OU).
        type: str
      locality_name:
        description: Locality or city (L).
        type: str
      state_or_province_name:
        description: State or province (ST).
        type: str
      country_name:
        description: Two-letter ISO 3166 country code (C), for example C(DE).
        type: str
      email_address:
        description:
          - E-mail address in the subject; it is also added as an C(email:) subject alternative name.
          - Must be an ASCII address of the shape C(local@domain) (RFC 5322 addr-spec without quoted local parts).
        type: str
  subject_alt_names:
    description:
      - Subject alternative names, each with a prefix - C(email:) (rfc822Name), C(upn:) (Microsoft user principal name,
        otherName 1.3.6.1.4.1.311.20.2.3), C(uri:) or C(dns:).
      - Each value is checked before anything is written. C(email:) takes C(local@domain) (RFC 5322 addr-spec, ASCII).
        C(upn:) takes C(local@domain) where the domain is a host name; the local part may be non-ASCII. C(uri:) takes
        an absolute URI with a scheme and a fully qualified host, such as C(https://rpa.example.com/robot01) (RFC 3986;
        C(urn:) names are refused because pkilint reports them). C(dns:) takes a fully qualified host name of letters,
        digits and hyphens between dots that ends in a top-level domain (RFC 1034 preferred name syntax, no wildcard,
        ASCII; IDNA-encode other names); e-mail domains follow the same rule.
    type: list
    elements: str
    default: []
  extended_key_usages:
    description:
      - Extended key usages added after the one of O(purpose), as names (V(server_auth), V(client_auth),
        V(code_signing), V(email_protection), V(time_stamping), V(ocsp_signing), V(smart_card_logon),
        V(document_signing), or their camelCase forms such as V(clientAuth)) or dotted OIDs.
    type: list
    elements: str
    default: []
  key_type:
    description:
      - Type of a new private key.
    type: str
    choices: [rsa, ecdsa]
    default: rsa
  key_size:
    description:
      - RSA key size in bits, one of 2048, 3072 or 4096; other sizes are refused.
      - Ignored for O(key_type=ecdsa).
    type: int
    default: 2048
  curve:
    description:
      - Curve of an ECDSA key. The signature hash follows the issuer key (SHA-256, or SHA-384/SHA-512 for P-384/P-521 issuers).
    type: str
    choices: [secp256r1, secp384r1, secp521r1]
    default: secp256r1
  valid_days:
    description:
      - Validity of a new certificate in days from now. A certificate never outlives its issuer; it ends with the issuer then.
      - Changing it renews the certificate.
      - Must be greater than O(renew_before_days); otherwise a new certificate would be due for renewal at once and every
        run would issue another one.
    type: int
    default: 365
  renew_before_days:
    description:
      - Renew the certificate when it expires within this many days.
      - A certificate that ends together with its issuer (because the issuer expires first) is kept even inside this
        window, with a warning to renew the issuer CA; a renewal by the same CA could not end any later.
    type: int
    default: 30
  issuer_cert_path:
    description:
      - Certificate of the CA that issues this certificate (PEM). Must be a CA, unexpired, and match O(issuer_privatekey_path).
      - Without it the certificate is self-signed.
    type: path
  issuer_privatekey_path:
    description:
      - Private key of the issuing CA.
    type: path
  issuer_privatekey_passphrase:
    description:
      - Passphrase of O(issuer_privatekey_path).
    type: str
  force:
    description:
      - Make a new key and certificate even when the existing ones match.
    type: bool
    default: false
attributes:
  action:
    description: Indicates this has a corresponding action plugin, so some parts of the work run on the controller.
    support: full
    details: Runs in the controller process; paths are on the controller.
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff shows certificate metadata (subject, issuer, serial, validity, fingerprints), never key material.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run reports no change.
    support: partial
    details: With O(force=true) every run makes a new key and certificate.
notes:
  - Serial numbers are random and positive, at most 159 bits; signatures use SHA-256 or stronger.
  - pkilint checks C(uri:) names with a list of known schemes (http, https, ftp, ftps, sftp, ssh, git, rtsp, telnet) and
    reports other schemes, such as C(ldaps), as invalid URI syntax although RFC 3986 allows them; such names are accepted
    here, so prefer C(https:) URIs where a clean lint matters.
  - A private robot CA is the default design because ServiceNow blocks self-signed certificates for certificate-based
    authentication by default (KB0993615); no switch to allow them is documented.
  - An existing key file that cannot be read with O(privatekey_passphrase), or an existing certificate file that is not a
    certificate, stops the task instead of being replaced, unless O(force=true).
  - The issuer key is decrypted only when a certificate has to be signed, which keeps unchanged fleet runs fast; a wrong
    O(issuer_privatekey_passphrase) is therefore reported at the next issue or renewal, not on a run that changes nothing.
  - An encrypted key file (O(privatekey_passphrase)) is decrypted on every run to compare it with the certificate, which
    costs a key derivation (a few tenths of a second); unencrypted robot keys, protected by mode C(0600), are checked in
    milliseconds.
  - In check mode the returned serial number and fingerprints are V(null) when a new certificate would be issued, because
    they are only known once it is signed.
seealso:
  - module: snowrpa.robot_certs.cert_export
"""

EXAMPLES = r"""
---
- name: Create the robot CA
  snowrpa.robot_certs.cert_generate:
    path: /etc/robot-pki/ca.pem
    privatekey_path: /etc/robot-pki/ca.key
    privatekey_passphrase: "{{ robot_ca_passphrase }}"
    purpose: ca
    valid_days: 3650
    subject:
      common_name: Robot CA
      organization_name: Example Corp
      country_name: DE

- name: Issue the robot's mutual TLS certificate
  snowrpa.robot_certs.cert_generate:
    path: "/etc/robot-pki/{{ inventory_hostname }}/client.pem"
    privatekey_path: "/etc/robot-pki/{{ inventory_hostname }}/client.key"
    purpose: client_auth
    subject:
      common_name: "{{ inventory_hostname }}"
      organization_name: Example Corp
      organizational_unit_name: RPA
      country_name: DE
    subject_alt_names:
      - "upn:{{ robot_account }}@example.com"
    issuer_cert_path: /etc/robot-pki/ca.pem
    issuer_privatekey_path: /etc/robot-pki/ca.key
    issuer_privatekey_passphrase: "{{ robot_ca_passphrase }}"
    renew_before_days: 30

- name: Issue the Design Studio code-signing certificate with an ECDSA key
  snowrpa.robot_certs.cert_generate:
    path: /etc/robot-pki/signing.pem
    privatekey_path: /etc/robot-pki/signing.key
    purpose: code_signing
    key_type: ecdsa
    curve: secp384r1
    subject:
      common_name: RPA Package Signing
      organization_name: Example Corp
    issuer_cert_path: /etc/robot-pki/ca.pem
    issuer_privatekey_path: /etc/robot-pki/ca.key
    issuer_privatekey_passphrase: "{{ robot_ca_passphrase }}"
"""

RETURN = r"""
path:
  description: The certificate file.
  returned: always
  type: str
privatekey_path:
  description: The private key file.
  returned: always
  type: str
purpose:
  description: The profile of the certificate.
  returned: always
  type: str
  sample: client_auth
thumbprint:
  description: Windows thumbprint, SHA-1 of the DER certificate as 40 upper-case hex digits. V(null) in check mode when a new certificate would be issued.
  returned: always
  type: str
  sample: 13C9B75C59421526CE262A67F1C42518E4E6F986
sha256_fingerprint:
  description: SHA-256 fingerprint of the certificate, colon-separated upper-case hex.
  returned: always
  type: str
serial_number:
  description: Serial number of the certificate.
  returned: always
  type: int
not_before:
  description: Start of validity, ISO 8601 UTC.
  returned: always
  type: str
  sample: "2026-12-03T20:12:46Z"
not_after:
  description: End of validity, ISO 8601 UTC.
  returned: always
  type: str
  sample: "2027-12-03T20:17:46Z"
subject:
  description: Subject of the certificate (RFC 4514).
  returned: always
  type: str
  sample: CN=robot01,OU=RPA,O=Example Corp,C=DE
issuer:
  description: Issuer of the certificate (RFC 4514).
  returned: always
  type: str
reasons:
  description: Why the key or certificate was made, renewed or rewritten; empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: ["certificate expires within 30 days"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _cert_generate,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._module_runner import (
    require_cryptography,
    run_module,
    spec_constraints,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=_cert_generate.ARGUMENT_SPEC,
        supports_check_mode=True,
        **spec_constraints(_cert_generate),
    )
    require_cryptography(module)
    run_module(
        module,
        lambda: _cert_generate.run(module.params, check_mode=module.check_mode),
    )


if __name__ == "__main__":
    main()
