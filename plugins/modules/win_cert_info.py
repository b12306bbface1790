# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_cert_info.ps1.

DOCUMENTATION = r"""
---
module: win_cert_info
short_description: Report the certificates of a Windows store, their keys and key ACLs
version_added: 0.1.0
description:
  - Read-only facts for audits of robot machines, one entry per certificate of a store, filtered by thumbprint,
    friendly name, subject or purpose.
  - Each entry says when the certificate expires, whether its private key really opens (proved by signing), which
    provider holds it, whether it is a machine or a user key, and who may use it.
options:
  store_location:
    description:
      - Store location to read.
    type: str
    default: LocalMachine
    choices: [LocalMachine, CurrentUser]
  store_name:
    description:
      - Store to read.
    type: str
    default: My
  thumbprint:
    description:
      - Only the certificate with this SHA-1 thumbprint (spaces and colons allowed).
    type: str
  friendly_name:
    description:
      - Only certificates with exactly this friendly name.
    type: str
  subject:
    description:
      - Only certificates whose subject (as Windows shows it, for example C(CN=robot-01, O=Example)) contains this text.
    type: str
  purpose:
    description:
      - Only certificates whose extended key usage contains the EKU of this purpose.
    type: str
    choices: [client_auth, code_signing]
  include_acl:
    description:
      - Whether to read each private key's access entries.
    type: bool
    default: true
attributes:
  check_mode:
    description: Can run in check mode and predict whether it would change the target without changing it.
    support: full
    details: The module never changes anything.
  diff_mode:
    description: Returns what changed, or would change in check mode, when run in diff mode.
    support: none
  idempotent:
    description: A second run with the same arguments, outside check mode, reports no change.
    support: full
  platform:
    description: The target operating systems.
    support: full
    platforms: windows
notes:
  - A CurrentUser store is read as the connecting user; use C(become) to read the robot user's store.
  - Runs in Windows PowerShell 5.1 (.NET Framework 4.x).
seealso:
  - module: snowrpa.robot_certs.win_cert_import
  - module: snowrpa.robot_certs.win_key_acl
author:
  - snowrpa.robot_certs contributors (@snowrpa)
"""

EXAMPLES = r"""
---
- name: Read the robot's client-authentication certificates
  snowrpa.robot_certs.win_cert_info:
    store_location: LocalMachine
    purpose: client_auth
  register: robot_certs

- name: Fail when a robot certificate expires within 30 days
  ansible.builtin.assert:
    that:
      - robot_certs.certificates | selectattr('days_remaining', 'lt', 30) | list | length == 0
    fail_msg: A robot client certificate expires within 30 days
"""

RETURN = r"""
store:
  description: The store read.
  returned: always
  type: str
  sample: LocalMachine\My
exists:
  description: Whether the store exists.
  returned: always
  type: bool
certificates:
  description: The matching certificates.
  returned: always
  type: list
  elements: dict
  contains:
    thumbprint:
      description: SHA-1 thumbprint.
      type: str
    subject:
      description: Subject as Windows formats it.
      type: str
    issuer:
      description: Issuer as Windows formats it.
      type: str
    serial_number:
      description: Serial number in hexadecimal.
      type: str
    friendly_name:
      description: Friendly name.
      type: str
    not_before:
      description: Start of validity (UTC).
      type: str
    not_after:
      description: End of validity (UTC).
      type: str
    expired:
      description: Whether the certificate has expired.
      type: bool
    days_remaining:
      description: Whole days until expiry (negative once expired).
      type: int
    ekus:
      description: Extended key usage OIDs.
      type: list
      elements: str
    purposes:
      description: The purposes (V(client_auth), V(code_signing)) the EKUs allow.
      type: list
      elements: str
    has_private_key:
      description: Whether a private key property exists.
      type: bool
    key_usable:
      description: Whether the private key opened and signed.
      type: bool
    key_algorithm:
      description: V(RSA) or V(ECDSA).
      type: str
    exportable:
      description: Whether the key may be exported.
      type: bool
    key_provider:
      description: CAPI provider or CNG key storage provider.
      type: str
    key_name:
      description: Key container or CNG key name.
      type: str
    key_storage:
      description: V(CAPI) or V(CNG).
      type: str
    machine_key:
      description: Whether the key is in the machine keyset.
      type: bool
    key_acl:
      description: The key's access entries (sid, account, type, rights, mask, inherited); null without O(include_acl).
      type: list
      elements: dict
    key_error:
      description: Why the key could not be opened or read (key missing, access denied), if it could not.
      type: str
"""
