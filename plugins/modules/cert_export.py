#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cert_export
short_description: Write a robot certificate's PEM chain and PKCS#12 file on the controller
version_added: 0.1.0
description:
  - Takes a key and certificate (O(certificate_path), O(privatekey_path), O(chain_paths)), a PEM bundle (several
    certificates in O(certificate_path), in any order), or an existing PKCS#12 (O(pkcs12_src), the path for certificates
    exported from AD CS), and writes what ServiceNow and the robot machines need (the PEM chain for the instance, the
    PKCS#12 for the robot's certificate store).
  - O(pem_path) receives the certificate chain without the key - leaf, then intermediates, then root, base64 wrapped at
    64 columns - for the ServiceNow CA record and user mapping.
  - O(pkcs12_path) receives key, leaf and chain, protected by O(pkcs12_passphrase), for the import on Windows. Its
    encryption follows O(pkcs12_profile), because older Windows builds cannot read AES-256 PKCS#12 files.
  - Before writing, it checks that the key matches the certificate, that each chain certificate issued the one before it
    and is a CA, that nothing has expired, and, with O(purpose), that the certificate carries that purpose's extended key
    usage.
  - Idempotent without rewriting every run. The existing PKCS#12 is opened with O(pkcs12_passphrase) and its key,
    certificates, friendly name and encryption profile are compared; it is rewritten only when one of them differs (the
    encryption is random, so an unconditional rewrite would change the file every time). The PEM file is compared byte by byte.
  - Each PKCS#12 it writes gets a record next to it, C(<pkcs12_path>.state) with mode 0600. It holds the SHA-256 of the
    file, the fingerprints of the key and certificates that went in, friendly name, profile and a PBKDF2 check value of
    the passphrase. A run that finds the same file, inputs and passphrase knows the file is unchanged without opening it
    (opening runs the RSA key check, nearly all the work of an unchanged fleet run). Without a matching record the
    PKCS#12 is opened as described above, and once it is proven unchanged its record is written again (outside check
    mode, and not reported as a change, since the record describes the file rather than being managed by the task).
  - Runs in the controller process (action plugin), so a fleet run ships no module to the robots.
author:
  - snowrpa.robot_certs contributors (@snowrpa)
extends_documentation_fragment:
  - snowrpa.robot_certs.cryptography_dep
options:
  certificate_path:
    description:
      - Certificate (PEM or DER), or a PEM bundle with the certificate and its chain in any order. The leaf is the
        certificate that matches the key, or without a key the one that issued none of the others.
      - A combined PEM that also holds the private key (as C(openssl pkcs12 -nodes) writes it) is accepted; its key is
        used when O(privatekey_path) is not given.
      - Exactly one of O(certificate_path) and O(pkcs12_src) is required.
    type: path
  privatekey_path:
    description:
      - Private key of the certificate (PEM or DER). Required for O(pkcs12_path) unless O(pkcs12_src) is used.
    type: path
  privatekey_passphrase:
    description:
      - Passphrase of O(privatekey_path), or of the key inside O(certificate_path).
    type: str
  chain_paths:
    description:
      - Further certificate files (PEM, each may hold several) with the intermediates and the root. Order does not matter;
        the output is always ordered from the leaf's issuer up to the root.
    type: list
    elements: path
    default: []
  pkcs12_src:
    description:
      - An existing PKCS#12 (.pfx/.p12) that holds the key, the certificate and possibly its chain, for example an AD CS
        export. It must be the binary file; base64 text is refused with a hint to decode it.
    type: path
  pkcs12_src_passphrase:
    description:
      - Passphrase of O(pkcs12_src). Leave it out for a file without a password.
    type: str
  pem_path:
    description:
      - File to write the PEM chain to (mode C(0644)). At least one of O(pem_path) and O(pkcs12_path) is required.
    type: path
  pkcs12_path:
    description:
      - File to write the PKCS#12 to, atomically with mode C(0600).
    type: path
  pkcs12_passphrase:
    description:
      - Passphrase that protects O(pkcs12_path). Required with O(pkcs12_path); must not be empty.
    type: str
  friendly_name:
    description:
      - Friendly name stored in the PKCS#12; Windows shows it in the certificate store.
      - Defaults to the friendly name of O(pkcs12_src), or else the common name followed by the first eight thumbprint
        digits, so that a renewed certificate gets a new name.
    type: str
  pkcs12_profile:
    description:
      - V(modern) - AES-256-CBC with PBKDF2-SHA256 for key and certificates, SHA-256 MAC. Imports on Windows 10 /
        Server 2019 (build 17763) and later only.
      - V(legacy) - 3DES (pbeWithSHAAnd3-KeyTripleDES-CBC) for key and certificates, SHA-1 MAC. Imports on every Windows version.
      - V(auto) - V(modern) when O(target_os_build) is 17763 or later, otherwise V(legacy).
      - A change of profile rewrites the file.
    type: str
    choices: [auto, modern, legacy]
    default: auto
  target_os_build:
    description:
      - Windows build number of the machine that will import the PKCS#12, for O(pkcs12_profile=auto); for example the
        build part of the C(ansible_distribution_version) fact of a Windows host (C(10.0.17763.0) is build 17763).
    type: int
  purpose:
    description:
      - When set, fail unless the certificate is valid for this purpose (extended key usage clientAuth or codeSigning, or
        CA basic constraints for V(ca)).
    type: str
    choices: [client_auth, code_signing, ca]
  force:
    description:
      - Rewrite the PKCS#12 even when its contents match.
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
    details:
      - When an input file (O(certificate_path), O(privatekey_path), O(pkcs12_src) or a O(chain_paths) entry) does not
        exist yet, as for a new robot whose cert_generate task also ran in check mode, check mode reports V(changed=true)
        with the reason and a warning "would export once <path> exists" instead of failing; certificate details are then
        V(null). Outside check mode a missing input is an error.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff shows thumbprints, friendly name and encryption profile, never key material or passphrases.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run reports no change.
    support: partial
    details: With O(force=true) the PKCS#12 is rewritten on every run.
notes:
  - Windows Server 2016 and older reject the V(modern) (AES-256) encryption with the misleading message "The specified
    network password is not correct"; V(auto) without O(target_os_build) therefore writes V(legacy).
  - Unlike community.crypto's C(encryption_level), the encryption profile is part of the idempotency check, so switching a
    fleet from V(legacy) to V(modern) needs no O(force).
  - Non-ASCII passphrases are handled exactly as OpenSSL handles them (OpenSSL and this module open each other's files).
    Java's C(keytool) on the test machines opened neither OpenSSL's nor our files with a non-ASCII passphrase, so prefer
    ASCII passphrases where Java tools must read the file; Windows import with non-ASCII passphrases is not verified.
  - The RC2-encrypted and unencrypted PKCS#12 files that older tools write are accepted as O(pkcs12_src); what is written
    is always V(modern) or V(legacy).
seealso:
  - module: snowrpa.robot_certs.cert_generate
"""

EXAMPLES = r"""
---
- name: Export the robot's client certificate for ServiceNow and Windows
  snowrpa.robot_certs.cert_export:
    certificate_path: "/etc/robot-pki/{{ inventory_hostname }}/client.pem"
    privatekey_path: "/etc/robot-pki/{{ inventory_hostname }}/client.key"
    chain_paths:
      - /etc/robot-pki/ca.pem
    purpose: client_auth
    pem_path: "/etc/robot-pki/{{ inventory_hostname }}/client-chain.pem"
    pkcs12_path: "/etc/robot-pki/{{ inventory_hostname }}/client.p12"
    pkcs12_passphrase: "{{ robot_pfx_passphrase }}"
    pkcs12_profile: auto
    target_os_build: 17763

- name: Re-package an AD CS export as a legacy PKCS#12 for Windows Server 2016
  snowrpa.robot_certs.cert_export:
    pkcs12_src: /srv/adcs/robot07.pfx
    pkcs12_src_passphrase: "{{ adcs_export_passphrase }}"
    pkcs12_path: /srv/robots/robot07.p12
    pkcs12_passphrase: "{{ robot_pfx_passphrase }}"
    pkcs12_profile: legacy
    pem_path: /srv/robots/robot07-chain.pem
"""

RETURN = r"""
thumbprint:
  description:
    - Windows thumbprint of the leaf certificate (SHA-1 of the DER, 40 upper-case hex digits).
    - This and the other certificate details are V(null) in check mode when an input file does not exist yet.
  returned: always
  type: str
  sample: 13C9B75C59421526CE262A67F1C42518E4E6F986
sha256_fingerprint:
  description: SHA-256 fingerprint of the leaf certificate.
  returned: always
  type: str
chain_thumbprints:
  description: Thumbprints of the chain certificates, from the leaf's issuer up to the root.
  returned: always
  type: list
  elements: str
pkcs12_profile:
  description: The encryption profile used for O(pkcs12_path) (V(modern) or V(legacy)); V(null) without O(pkcs12_path).
  returned: always
  type: str
  sample: legacy
friendly_name:
  description: Friendly name stored in the PKCS#12; V(null) without O(pkcs12_path).
  returned: always
  type: str
pem_path:
  description: The PEM chain file, as given.
  returned: always
  type: str
pkcs12_path:
  description: The PKCS#12 file, as given.
  returned: always
  type: str
subject:
  description: Subject of the leaf certificate (RFC 4514).
  returned: always
  type: str
issuer:
  description: Issuer of the leaf certificate (RFC 4514).
  returned: always
  type: str
serial_number:
  description: Serial number of the leaf certificate.
  returned: always
  type: int
not_before:
  description: Start of validity of the leaf, ISO 8601 UTC.
  returned: always
  type: str
not_after:
  description: End of validity of the leaf, ISO 8601 UTC.
  returned: always
  type: str
reasons:
  description: Why a file was written (in check mode, would be written); empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: ["encryption profile is legacy, not modern"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _cert_export,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._module_runner import (
    require_cryptography,
    run_module,
    spec_constraints,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=_cert_export.ARGUMENT_SPEC,
        supports_check_mode=True,
        **spec_constraints(_cert_export),
    )
    require_cryptography(module)
    run_module(
        module,
        lambda: _cert_export.run(module.params, check_mode=module.check_mode),
    )


if __name__ == "__main__":
    main()
