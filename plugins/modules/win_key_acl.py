# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_key_acl.ps1.

DOCUMENTATION = r"""
---
module: win_key_acl
short_description: Grant or remove access to a certificate's private key on Windows
version_added: 0.1.0
description:
  - Sets the access control list of a certificate's private key as certlm.msc's B(Manage Private Keys) does, through
    the key provider's security descriptor, so CAPI and CNG keys, RSA and ECDSA alike, work without guessing key file
    paths.
  - Idempotent by SID with normalised access masks; group membership does not count as access.
options:
  thumbprint:
    description:
      - SHA-1 thumbprint of the certificate, 40 hexadecimal digits (spaces and colons allowed).
    type: str
    required: true
  store_location:
    description:
      - Store location of the certificate.
    type: str
    default: LocalMachine
    choices: [LocalMachine, CurrentUser]
  store_name:
    description:
      - Store of the certificate.
    type: str
    default: My
  users:
    description:
      - Accounts (C(DOMAIN\user), C(.\user), C(NT SERVICE\name)) or SIDs to change.
    type: list
    elements: str
    required: true
  rights:
    description:
      - V(read) is certlm's Read (mask C(0x80120089)); V(full_control) is its Full control (mask C(0xD01F01FF)).
      - With O(state=absent), V(read) removes all access of the O(users) and V(full_control) removes only what goes
        beyond Read.
    type: str
    default: read
    choices: [read, full_control]
  state:
    description:
      - Whether the O(users) should have O(rights).
    type: str
    default: present
    choices: [present, absent]
  exact:
    description:
      - With O(rights=read), also remove Full control from the O(users), leaving them Read only. This is the
        "Read on, Full control off" step of the manual procedure.
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check mode and predict whether it would change the target without changing it.
    support: full
  diff_mode:
    description: Returns what changed, or would change in check mode, when run in diff mode.
    support: full
  idempotent:
    description: A second run with the same arguments, outside check mode, reports no change.
    support: full
  platform:
    description: The target operating systems.
    support: full
    platforms: windows
notes:
  - The rights of SYSTEM and Administrators are never lowered; naming them in a change that would lower them fails.
  - A missing key and a key the connecting identity may not open fail with different messages (C(key missing),
    C(access denied)).
  - Deny entries are left alone and reported as a warning, since they override a grant.
  - The CNG security descriptor is written with C(DACL_SECURITY_INFORMATION), C(NCRYPT_SILENT_FLAG) and
    C(NCRYPT_PERSIST_FLAG) [infer]; not yet run on a real host by this project.
  - Runs in Windows PowerShell 5.1 (.NET Framework 4.x).
seealso:
  - module: snowrpa.robot_certs.win_cert_import
  - module: snowrpa.robot_certs.win_cert_info
author:
  - snowrpa.robot_certs contributors (@snowrpa)
"""

EXAMPLES = r"""
---
- name: Let the robot service read the client certificate's key, without Full control
  snowrpa.robot_certs.win_key_acl:
    thumbprint: "{{ robot_client_thumbprint }}"
    users:
      - NT SERVICE\SNRobotService
    rights: read
    exact: true

- name: Remove a former robot account's access
  snowrpa.robot_certs.win_key_acl:
    thumbprint: "{{ robot_client_thumbprint }}"
    users:
      - EXAMPLE\old-robot
    state: absent
"""

RETURN = r"""
thumbprint:
  description: The certificate's thumbprint.
  returned: always
  type: str
store:
  description: The certificate's store.
  returned: always
  type: str
  sample: LocalMachine\My
key_provider:
  description: CAPI provider or CNG key storage provider holding the key.
  returned: success
  type: str
  sample: Microsoft Enhanced RSA and AES Cryptographic Provider
key_name:
  description: Key container (CAPI) or key name (CNG).
  returned: success
  type: str
key_storage:
  description: V(CAPI) or V(CNG).
  returned: success
  type: str
machine_key:
  description: Whether the key is in the machine keyset.
  returned: success
  type: bool
before:
  description: The key's access entries before the change (sid, account, type, rights, mask, inherited).
  returned: success
  type: list
  elements: dict
after:
  description: The key's access entries after the change (in check mode, as they would be).
  returned: success
  type: list
  elements: dict
"""
